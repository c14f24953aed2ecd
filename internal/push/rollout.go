package push

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// DefaultParallel is how many hosts push talks to at once when
// Options.Parallel is 0: each such host has one SSH connection open.
const DefaultParallel = 20

// DefaultCanary is the canary batch size push uses when none is given:
// one host when more than two non-balancer hosts are pushed (with two
// or fewer the batches already go one or two at a time), else none.
func DefaultCanary(hosts []Host) int {
	n := 0
	for _, h := range hosts {
		if !h.has("lb") {
			n++
		}
	}
	if n > 2 {
		return 1
	}
	return 0
}

// Run pushes each host's files in two phases.
//
// Preflight: every host is connected to, locked and planned (at most
// Parallel at once). A host that fails that (unreachable, unknown or
// changed host key, drift, a lock held, a symlink at a target, …) is
// reported and left out; it counts against MaxFail. When more hosts
// failed than MaxFail tolerates, or any failed under RequireAll, nothing
// is written anywhere.
//
// Rollout: the hosts that planned go in batches (see Batches): a canary
// batch first when Canary > 0, whose failure stops the rollout whatever
// MaxFail says; the hosts of a batch in parallel (at most Parallel at
// once), each validated, reloaded and health-checked before the next
// batch starts. Once more than MaxFail hosts have failed, no further
// host is started. A host whose reload or health check fails gets its
// previous files back, reloaded (unless NoAutoRevert).
//
// A host's SSH connection is closed as soon as its part is done; when
// there are more hosts than Parallel, each host is connected to twice
// (preflight, then its batch, where it is locked and planned again).
//
// The error joins the failed hosts' *HostError; the Summary has every
// host's outcome either way.
func Run(ctx context.Context, o Options) (*Summary, error) {
	return run(ctx, o, false)
}

// Rollback undoes, on each host, the newest push generation still in
// effect, restoring the files it replaced byte for byte with their
// modes and owners and removing the files it created. It runs like a
// push: planned first (a file changed since that push is drift), then
// validated, reloaded and health-checked in batches, and recorded as a
// generation of its own. Repeated rollbacks step further back.
func Rollback(ctx context.Context, o Options) (*Summary, error) {
	return run(ctx, o, true)
}

func run(ctx context.Context, o Options, rollback bool) (*Summary, error) {
	if err := validateOptions(&o); err != nil {
		return nil, err
	}
	planned, err := Batches(o.Hosts, o.Batch, o.Canary)
	if err != nil {
		return nil, err
	}
	d, err := newDialer(o.Auth, o.Timeout, o.Dial)
	if err != nil {
		return nil, err
	}
	defer d.close()

	sum := &Summary{Stack: o.Stack, Action: "push", DryRun: o.DryRun}
	if rollback {
		sum.Action = "rollback"
	}
	byName := map[string]*hostRun{}
	var runs []*hostRun
	for i := range o.Hosts {
		h := &o.Hosts[i]
		r := &hostRun{o: &o, h: h, d: d, rollback: rollback,
			res: &HostResult{Host: h.Name, Endpoint: h.SSH.String(), Root: h.Root}}
		byName[h.Name] = r
		runs = append(runs, r)
	}
	defer func() {
		for _, r := range runs {
			r.finish()
		}
	}()
	slots := make(chan struct{}, o.Parallel)
	// With no more hosts than slots, a host keeps its connection and its
	// lock from preflight to its batch: every host is locked before any
	// is written.
	keep := len(runs) <= o.Parallel && !o.DryRun

	// stopping reports whether the rollout starts no more work: Stop
	// closed (the work under way goes on to its end) or ctx ended
	// (everything stops).
	stopping := func() bool {
		select {
		case <-o.Stop:
			return true
		default:
			return ctx.Err() != nil
		}
	}

	// Phase 1: connect, lock and plan every host.
	var wg sync.WaitGroup
	for _, r := range runs {
		if !acquire(ctx, o.Stop, slots) {
			if ctx.Err() != nil {
				r.fail(fmt.Errorf("preflight: %w", ctx.Err()))
			} else {
				r.skip("(interrupted)")
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.preflight(ctx)
			if err != nil {
				r.fail(err)
			}
			if err != nil || !keep {
				r.finish()
				<-slots
				return
			}
			r.slot = true
		}()
	}
	wg.Wait()
	var bad []*hostRun
	for _, r := range runs {
		if r.res.err != nil {
			bad = append(bad, r)
		}
	}
	abort := len(bad) > 0 && (o.RequireAll || len(bad) > o.MaxFail)
	if abort || o.DryRun {
		why := fmt.Sprintf("(%d host(s) failed planning; nothing was written)", len(bad))
		for bi, b := range planned {
			for _, name := range b {
				r := byName[name]
				r.res.Batch = bi + 1
				if r.res.err == nil && r.res.Status != StatusSkipped {
					r.res.Status = StatusPlanned
					if abort {
						r.res.Status = StatusAborted
						r.progress(PhaseSkipped, why)
					}
				}
				r.finish()
				r.freeSlot(slots)
				sum.Hosts = append(sum.Hosts, *r.res)
			}
		}
		return sum.ended()
	}

	// Phase 2: the hosts that planned, batch by batch.
	var good []Host
	for _, r := range runs {
		if r.res.err == nil {
			good = append(good, *r.h) // or skipped, interrupted before its preflight
		} else {
			if stopping() {
				r.note("not written: it failed its preflight")
			} else {
				r.note("not written: it failed its preflight, and the other hosts went ahead")
			}
			sum.Hosts = append(sum.Hosts, *r.res)
		}
	}
	batches, err := Batches(good, o.Batch, o.Canary)
	if err != nil {
		return nil, err
	}
	canary := -1
	if o.Canary > 0 {
		canary = slices.IndexFunc(batches, func(b []string) bool { return !byName[b[0]].h.has("lb") })
	}
	var mu sync.Mutex
	failures, canaryFailed := len(bad), false
	stopped := func() string {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case stopping():
			return "(interrupted)"
		case canaryFailed:
			return "(the canary batch failed; the rollout stopped)"
		case failures > o.MaxFail:
			return fmt.Sprintf("(the rollout stopped after %d failed host(s))", failures)
		}
		return ""
	}
	for bi, b := range batches {
		var wg sync.WaitGroup
		for _, name := range b {
			r := byName[name]
			r.res.Batch = bi + 1
			if r.res.Status == StatusSkipped {
				continue // interrupted before its preflight: said so
			}
			if !r.slot && !acquire(ctx, o.Stop, slots) {
				r.skip("(interrupted)")
				continue
			}
			r.slot = true
			if why := stopped(); why != "" {
				r.skip(why)
				r.finish()
				r.freeSlot(slots)
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := r.connect(ctx)
				if err == nil && stopping() {
					// Interrupted while it connected, locked and
					// planned again (a host that did not keep its
					// preflight's connection): nothing is written yet,
					// so it is left so, like a host only planned.
					r.skip("(interrupted)")
					r.finish()
					r.freeSlot(slots)
					return
				}
				if err == nil {
					err = r.apply(ctx)
				}
				if err != nil {
					r.fail(err)
				}
				r.finish()
				r.freeSlot(slots)
				if err != nil {
					mu.Lock()
					failures++
					if bi == canary {
						canaryFailed = true
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for _, name := range b {
			sum.Hosts = append(sum.Hosts, *byName[name].res)
		}
	}
	return sum.ended()
}

// ended is the summary of a rollout over, OK when no host failed or was
// skipped, and its hosts' errors.
func (s *Summary) ended() (*Summary, error) {
	s.OK = !slices.ContainsFunc(s.Hosts, func(h HostResult) bool {
		return h.err != nil || h.Status == StatusSkipped
	})
	return s, s.Err()
}

// acquire takes a slot, or reports false when ctx ends or stop closes
// first.
func acquire(ctx context.Context, stop <-chan struct{}, slots chan struct{}) bool {
	select {
	case <-stop:
		return false
	default:
		if ctx.Err() != nil {
			return false
		}
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return false
	case <-stop:
		return false
	}
	// A slot freed as stop closed may have been taken first: no work
	// begins after stop.
	select {
	case <-stop:
		<-slots
		return false
	default:
		if ctx.Err() != nil {
			<-slots
			return false
		}
	}
	return true
}

func (r *hostRun) freeSlot(slots chan struct{}) {
	if r.slot {
		r.slot = false
		<-slots
	}
}

func (r *hostRun) skip(why string) {
	r.res.Status = StatusSkipped
	r.progress(PhaseSkipped, why)
}

func (r *hostRun) fail(err error) {
	he := &HostError{Host: r.h.Name, Err: err}
	r.res.err = he
	r.res.Error = err.Error()
	if r.res.Status == "" || r.res.Status == StatusPlanned {
		r.res.Status = StatusFailed
	}
	if r.res.Status == StatusReverted {
		return // already reported as restored
	}
	r.progress(PhaseFailed, err.Error())
}

// release gives up the host's lock, keeping the connection.
func (r *hostRun) release() {
	if r.lk != nil {
		if err := r.lk.release(); err != nil {
			r.note("releasing the lock: " + err.Error())
		}
		r.lk = nil
	}
}

// finish releases the lock and closes the connection.
func (r *hostRun) finish() {
	r.release()
	if r.c != nil {
		r.c.close()
		r.c = nil
	}
}
