package push

import (
	"context"
	"fmt"
	"slices"
	"sync"
)

// preflightParallel bounds how many hosts are connected and planned at
// once.
const preflightParallel = 16

// Run pushes each host's files. Every host is connected to, locked and
// planned first; if any host fails that (unknown or changed host key,
// drift, a lock held, a symlink at a target, …) nothing is written
// anywhere. Then the hosts go in batches (see Batches): the hosts of a
// batch in parallel, each validated, reloaded and health-checked before
// the next batch starts; once more than MaxFail hosts have failed, the
// later batches are skipped and left untouched.
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
	batches, err := Batches(o.Hosts, o.Batch)
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
	byName := map[string]*Host{}
	for i := range o.Hosts {
		byName[o.Hosts[i].Name] = &o.Hosts[i]
	}
	var runs []*hostRun
	var order [][]*hostRun
	for bi, b := range batches {
		var batch []*hostRun
		for _, name := range b {
			h := byName[name]
			sum.Hosts = append(sum.Hosts, HostResult{Host: name, Endpoint: h.SSH.String(), Root: h.Root, Batch: bi + 1})
			batch = append(batch, &hostRun{o: &o, h: h, d: d, rollback: rollback})
		}
		order = append(order, batch)
		runs = append(runs, batch...)
	}
	for i, r := range runs {
		r.res = &sum.Hosts[i]
	}
	defer func() {
		for _, r := range runs {
			r.finish()
		}
	}()

	// Phase 1: connect, lock and plan every host.
	failed := false
	sem := make(chan struct{}, preflightParallel)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, r := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := r.preflight(ctx); err != nil {
				r.fail(err)
				mu.Lock()
				failed = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failed || o.DryRun {
		for _, r := range runs {
			if r.res.err == nil {
				r.res.Status = StatusPlanned
				if failed {
					r.res.Status = StatusAborted
					r.progress(PhaseSkipped, "(another host failed planning; nothing was written)")
				}
			}
			r.release()
		}
		sum.OK = !failed
		return sum, sum.Err()
	}

	// Phase 2: batch by batch.
	failures := 0
	for _, batch := range order {
		if failures > o.MaxFail || ctx.Err() != nil {
			for _, r := range batch {
				r.res.Status = StatusSkipped
				why := fmt.Sprintf("(the rollout stopped after %d failed host(s))", failures)
				if ctx.Err() != nil {
					why = "(interrupted)"
				}
				r.progress(PhaseSkipped, why)
				r.release()
			}
			continue
		}
		var wg sync.WaitGroup
		for _, r := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := r.apply(ctx); err != nil {
					r.fail(err)
				}
				r.release()
			}()
		}
		wg.Wait()
		for _, r := range batch {
			if r.res.err != nil {
				failures++
			}
		}
	}
	sum.OK = failures == 0 && !slices.ContainsFunc(sum.Hosts, func(h HostResult) bool { return h.Status == StatusSkipped })
	return sum, sum.Err()
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

// release gives up the host's lock, keeping the connection for finish.
func (r *hostRun) release() {
	if r.lk != nil {
		if err := r.lk.release(); err != nil {
			r.note("releasing the lock: " + err.Error())
		}
		r.lk = nil
	}
}

func (r *hostRun) finish() {
	r.release()
	if r.c != nil {
		r.c.close()
		r.c = nil
	}
}
