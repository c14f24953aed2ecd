//go:build unix

package systest

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/keepalived"
	"github.com/hacompile/hacompile/schema"
)

// Fault timing: long enough for the balancers' checks to act, short
// enough that every example stack runs in about a minute.
const (
	faultHold = 6 * time.Second
	// afterOut is how long a fault behind a provider's balancer is held
	// once the balancer took the host out.
	afterOut   = 5 * time.Second
	settle     = 2 * time.Second
	loadWorker = 8
	// loadPace is the least time between one client's requests: 8
	// clients send at most 400 requests a second. Unpaced, they took
	// every cycle the machine had (1,100 a second), and the hosts'
	// own health checks and restarts waited for the CPU; paced, a fault
	// still meets thousands of requests.
	loadPace = 20 * time.Millisecond
)

// frontDoor is the address clients use: the balancers' virtual address
// when the stack has one, else the first balancer.
func (e *env) frontDoor() (string, bool) {
	if e.clb != nil {
		return e.clb.addr.String(), true
	}
	if vip, ok := virtualAddr(e.s); ok {
		return vip.String(), true
	}
	lbs := e.hostsWith("lb")
	if len(lbs) == 0 {
		return "", false
	}
	return e.addr(lbs[0]), true
}

func (e *env) newLoad(addr string, d time.Duration) (*Load, error) {
	return e.newLoadFor(addr, d, nil)
}

// newLoadFor is newLoad for the first URL of app a (of several): its
// answers must come from a.
func (e *env) newLoadFor(addr string, d time.Duration, a *schema.App) (*Load, error) {
	ns, err := e.clientNS()
	if err != nil {
		return nil, err
	}
	scheme, port := "http", "80"
	if e.s.TLS.Mode != "" && e.s.TLS.Mode != "none" {
		scheme, port = "https", "443"
	}
	l := &Load{NS: ns, URL: scheme + "://" + e.s.Domain + "/", Addr: net.JoinHostPort(addr, port),
		Workers: loadWorker, Timeout: 15 * time.Second, Duration: d, Pace: loadPace}
	if a != nil && e.s.MultiApp() {
		l.URL, l.WantApp = e.appURLs(a)[0], a.Name
	}
	// Behind a per-client rate limit, one client could not send much:
	// many clients, each at half the limit, as real traffic is.
	if rl := e.s.RateLimit; rl != nil {
		per, err := perRequest(rl.Rate)
		if err != nil {
			return nil, err
		}
		l.Sources = e.clientSources
		l.Pace = 2 * per
	}
	return l, nil
}

// perRequest is the time between requests a rate ("10r/s", "30r/m")
// allows.
func perRequest(rate string) (time.Duration, error) {
	var n int
	var unit string
	if _, err := fmt.Sscanf(strings.Replace(rate, "r/", " ", 1), "%d %s", &n, &unit); err != nil || n <= 0 {
		return 0, fmt.Errorf("rate_limit.rate %q: want N r/s or N r/m", rate)
	}
	switch unit {
	case "s":
		return time.Second / time.Duration(n), nil
	case "m":
		return time.Minute / time.Duration(n), nil
	}
	return 0, fmt.Errorf("rate_limit.rate %q: want N r/s or N r/m", rate)
}

// fault is one backend fault: how to cause it and how to end it.
type fault struct {
	name            string
	inject, recover func(context.Context) error
	// alerts are what the rendered monitoring must raise during it.
	alerts []expectation
	// inFlight: requests already on the faulty host may fail (a frozen
	// host holds them); otherwise no request may fail.
	inFlight bool
	// appOnly: the fault is the victim app's alone (its app server);
	// the host's other apps keep serving there.
	appOnly bool
}

// backendFaults is scenario 2: under load through the front door, one
// app host loses its app server, then its nginx, then freezes; each
// time it must leave the rotation without failed requests (a frozen
// host may fail only what it already held) and come back once well.
func (e *env) backendFaults(ctx context.Context, sr *ScenarioReport) {
	apps := e.hostsWith("app")
	door, ok := e.frontDoor()
	if !ok {
		sr.Note = fmt.Sprintf("no balancer host: the %s load balancer in front is the provider's, and its health checks are not run here", e.s.Provider)
		return
	}
	if len(apps) < 2 {
		sr.check("at least two app hosts", false, "one app host: losing it is an outage")
		return
	}
	victim, victimApp, bystanders := e.victimOf(apps)
	m := e.hosts[victim]
	appUnit := victimApp.Name + ".service"
	// An HAProxy balancer exports each server's state: every fault
	// takes the server down there.
	var lbSees []expectation
	if e.s.Balancer.Kind == "haproxy" {
		lbSees = append(lbSees, expectation{Name: "BackendServerDown", Labels: map[string]string{"server": victim}})
	}
	var faults []fault
	stopped := "app server stopped"
	if e.s.MultiApp() {
		stopped = "app server of " + victimApp.Name + " stopped on " + victim
	}
	faults = append(faults, fault{name: stopped, appOnly: true,
		inject:  func(ctx context.Context) error { return e.sysctl(ctx, m, "stop", appUnit) },
		recover: func(ctx context.Context) error { return e.sysctl(ctx, m, "start", appUnit) },
		alerts:  append([]expectation{{Name: "ServiceDown", Labels: map[string]string{"host": victim, "name": appUnit}}}, lbSees...)})
	if len(e.hostFiles(victim, "etc/nginx/")) > 0 {
		faults = append(faults, fault{name: "nginx stopped",
			inject:  func(ctx context.Context) error { return e.sysctl(ctx, m, "stop", "nginx.service") },
			recover: func(ctx context.Context) error { return e.sysctl(ctx, m, "start", "nginx.service") },
			alerts:  append([]expectation{{Name: "ServiceDown", Labels: map[string]string{"host": victim, "name": "nginx.service"}}}, lbSees...)})
	}
	faults = append(faults, fault{name: "host frozen (SIGSTOP)", inFlight: true,
		inject:  func(context.Context) error { m.Freeze(true); return nil },
		recover: func(context.Context) error { m.Freeze(false); return nil },
		alerts:  append([]expectation{{Name: "HostDown", Labels: map[string]string{"host": victim}}}, lbSees...)})

	// The rendered alerts must see each fault go by.
	watch := e.watchAlerts(ctx, sr)
	defer watch.close()

	h := e.s.Balancer.Health
	recoverBound := time.Duration(max(h.Rise, 1)*max(h.Interval, 1))*time.Second + 3*time.Second
	// A frozen server answers nothing, so the checks find it: the first
	// times out within an interval and its timeout, each further one
	// (fall in all) a timeout and fastinter later. Half a second more for
	// polling the admin socket. No server the checks fail stays up longer.
	checksBound := time.Duration(max(h.Interval, 1))*time.Second +
		time.Duration(max(h.Fall, 1))*time.Duration(max(h.Timeout, 1))*time.Millisecond +
		time.Duration(max(h.Fall-1, 0))*250*time.Millisecond + 500*time.Millisecond
	hold := faultHold
	// A provider's balancer retries nothing: a backend that fails
	// answers fails requests until the health check takes it out,
	// fall checks an interval apart, each waiting up to its timeout.
	var cloudBound time.Duration
	if e.clb != nil {
		hc := e.clb.spec.HealthCheck
		// Each check may take its timeout, and the next comes an
		// interval after it ends; rising, the first may still find the
		// app starting.
		cycle := max(hc.Interval, 1) + max(hc.Timeout, 1)
		cloudBound = time.Duration(max(hc.UnhealthyThreshold, 1)*cycle)*time.Second + time.Second
		hold = cloudBound + 2*time.Second
		recoverBound = time.Duration((max(hc.HealthyThreshold, 1)+1)*cycle)*time.Second + 3*time.Second
		// The balancer's checks see a stopped nginx or a frozen host as
		// they see a dead app server, only later: one fault keeps the
		// run short.
		faults = faults[:1]
	}
	// How long a fault waits for its victim to serve a request (below):
	// a setup wait, not a measure of the stack, so it is generous. On a
	// busy machine a balancer can take a slow victim out before the
	// first fault; checks slower than the stack says (a broken variant's
	// rewritten ones) take longer to bring it back than recoverBound.
	inRotation := max(recoverBound+5*time.Second, time.Minute)
	total := time.Duration(len(faults))*(hold+recoverBound+2*settle+inRotation) + 10*time.Second
	load, err := e.newLoadFor(door, total, victimApp)
	if err != nil {
		sr.check("load generator", false, "%v", err)
		return
	}
	// The other apps on the victim host get load of their own.
	others := make([]*Load, len(bystanders))
	for i, b := range bystanders {
		if others[i], err = e.newLoadFor(door, total, b); err != nil {
			sr.check("load generator", false, "%v", err)
			return
		}
	}
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{}, 1+len(others))
	go func() { load.Run(lctx); done <- struct{}{} }()
	for _, o := range others {
		go func() { o.Run(lctx); done <- struct{}{} }()
	}
	defer func() {
		cancel()
		for range 1 + len(others) {
			<-done
		}
	}()
	time.Sleep(settle)
	if e.clb != nil {
		e.clb.settle(ctx)
	}
	watchDown := func(ctx context.Context, d time.Duration) time.Duration {
		if e.clb != nil {
			return e.clb.watchDown(ctx, victim, d)
		}
		return e.watchDownIn(ctx, e.hostsWith("lb")[0], e.backendOf(victimApp), victim, d)
	}
	for _, f := range faults {
		// The victim must be in rotation when the fault begins: one the
		// balancer had already taken out (its checks timing out on a
		// busy machine, or an app that never started) would pass every
		// check below with the fault never felt. A request it serves
		// says it is in.
		_, served := waitServed(load, victim, load.Now(), inRotation)
		if !sr.check(fmt.Sprintf("%s: %s serves requests when the fault begins", f.name, victim), served,
			"no request served by %s in %s", victim, inRotation) {
			continue
		}
		t0 := load.Now()
		watch.mark()
		if err := f.inject(ctx); err != nil {
			sr.check(f.name, false, "injecting: %v", err)
			continue
		}
		tw := load.Now()
		// With HAProxy in front, the balancer's own view of each other
		// app's server on the victim host is watched through the fault:
		// it must stay up.
		var byDown []chan time.Duration
		if f.appOnly && e.clb == nil && e.s.Balancer.Kind == "haproxy" {
			for _, b := range bystanders {
				c := make(chan time.Duration, 1)
				byDown = append(byDown, c)
				go func() { c <- e.watchDownIn(ctx, e.hostsWith("lb")[0], e.backendOf(b), victim, hold) }()
			}
		}
		detect := watchDown(ctx, hold)
		end := hold
		if e.clb != nil && detect >= 0 {
			// Behind a provider's balancer the fault is held until the
			// health check took the host out (bounded by hold) and a
			// while after, to see that requests stopped failing: not
			// for the whole bound.
			end = min(hold, tw-t0+detect+afterOut)
		}
		time.Sleep(max(0, end-(load.Now()-t0)))
		if err := f.recover(ctx); err != nil {
			sr.check(f.name, false, "recovering: %v", err)
			continue
		}
		// Recovery is timed from when the service is back: systemctl
		// start returns once the unit started (for gunicorn, once it
		// said it is ready), so the balancer's part is measured, not
		// how long the app takes to start on a busy machine.
		t1 := load.Now()
		back := time.Duration(-1)
		if e.clb != nil {
			// Clients keep their connections to the other hosts: the
			// balancer's own view says when it sends new ones here.
			back = e.clb.watchUp(ctx, victim, recoverBound+5*time.Second)
		}
		if back < 0 {
			if at, ok := waitServed(load, victim, t1, recoverBound+5*time.Second); ok {
				back = at - t1
			}
		}
		time.Sleep(settle)
		t2 := load.Now()
		var window []Sample
		for _, s := range load.Samples() {
			if s.Start >= t0 && s.Start < t2 {
				window = append(window, s)
			}
		}
		p := &Phase{Name: f.name, Stats: summarize(window), DetectS: -1, RecoverS: -1, FailWindowS: failWindow(window)}
		if detect >= 0 {
			p.DetectS = secs(detect)
		}
		if back >= 0 {
			p.RecoverS = secs(back)
		}
		sr.Phases = append(sr.Phases, p)
		if e.clb != nil {
			// Failed requests are those the balancer sent before its
			// health check took the server out; after, only a client
			// connection already on the host, once: the error closes it
			// and the client's next connection goes elsewhere.
			var late []Sample
			for _, x := range window {
				if !x.OK() && (detect < 0 || x.Start > tw+detect+500*time.Millisecond) {
					late = append(late, x)
				}
			}
			sr.check(f.name+": once the balancer took the host out, a client fails at most once", detect >= 0 && len(late) <= loadWorker, "%d of %d failed, %d after it was out (%d clients)%s", p.Stats.Failed, p.Stats.Requests, len(late), loadWorker, failSample(late))
			sr.check(fmt.Sprintf("%s: out of rotation within %s (health check: unhealthy threshold × (interval + timeout))", f.name, cloudBound), detect >= 0 && detect <= cloudBound, "%s", durOr(detect, "still in rotation after "+hold.String()))
		} else if f.inFlight {
			sr.check(f.name+": only requests in flight fail", p.Stats.Failed <= loadWorker, "%d of %d failed (%d clients)%s", p.Stats.Failed, p.Stats.Requests, loadWorker, failSample(window))
		} else {
			sr.check(f.name+": no request fails", p.Stats.Failed == 0, "%d of %d failed%s", p.Stats.Failed, p.Stats.Requests, failSample(window))
		}
		if e.s.Balancer.Kind == "haproxy" {
			// A server that refuses or errs is out at once (passive
			// checks); a frozen one by its checks.
			bound := 2 * time.Second
			if f.inFlight {
				bound = checksBound
			}
			sr.check(fmt.Sprintf("%s: out of rotation within %s", f.name, bound), detect >= 0 && detect <= bound, "%s", durOr(detect, "still in rotation after "+faultHold.String()))
		}
		sr.check(fmt.Sprintf("%s: back in rotation within %s", f.name, recoverBound), back >= 0 && back <= recoverBound, "%s", durOr(back, "no request served by "+victim))
		for i, b := range bystanders {
			// From when checks of the other app's server that fail (a
			// check sent to the wrong port, say) would have taken it out
			// too, and at least until the balancer took the victim app's
			// server out, to the victim app's return: a host serving the
			// other app all through that stretch kept it.
			from := tw + checksBound
			if detect >= 0 {
				from = max(from, tw+detect+500*time.Millisecond)
			}
			down := time.Duration(-2)
			if i < len(byDown) {
				down = <-byDown[i]
			}
			bystanderChecks(sr, f, b, others[i], victim, t0, from, t1, down)
		}
		watch.expect(sr, f.name, f.alerts, 0)
	}
}

func (e *env) sysctl(ctx context.Context, m *Machine, verb, unit string) error {
	out, err := m.Exec(ctx, "systemctl", verb, unit)
	if err != nil {
		return fmt.Errorf("systemctl %s %s: %v: %s", verb, unit, err, strings.TrimSpace(out))
	}
	return nil
}

var statsSocketRe = regexp.MustCompile(`(?m)^\s*stats socket (\S+)`)

// watchDown polls the balancer's view of server (HAProxy's admin socket)
// until it is no longer UP, for at most d; -1 when it stays up or the
// balancer cannot say (nginx's checks are passive and unseen).
func (e *env) watchDown(ctx context.Context, lb, server string, d time.Duration) time.Duration {
	return e.watchDownIn(ctx, lb, "", server, d)
}

// watchDownIn is watchDown in one backend ("" for any but acme). The
// polling runs inside the balancer host, every 50 ms, and says when it
// saw the server leave UP by the clock it shares with this process:
// polled from here, each look was an nsenter and a socat, a quarter of
// a second and more on a busy machine, and the time a look returned
// counted that against the balancer (3.9 s for checks that take a
// frozen server out within 3.25 s).
func (e *env) watchDownIn(ctx context.Context, lb, backend, server string, d time.Duration) time.Duration {
	cfg, ok := e.file(lb, "etc/haproxy/haproxy.cfg")
	if !ok {
		return -1
	}
	mm := statsSocketRe.FindSubmatch(cfg)
	if mm == nil {
		return -1
	}
	script := fmt.Sprintf(`end=$(( $(date +%%s) + %d ))
while [ "$(date +%%s)" -le "$end" ]; do
	if echo 'show stat' | socat stdio %s | awk -F, -v s=%s -v b=%s '$2 == s && $1 != "acme" && (b == "" || $1 == b) && $18 !~ /^UP/ { down = 1 } END { exit !down }'; then
		date +%%s.%%N
		exit 0
	fi
	sleep 0.05
done
echo up`, int(d.Seconds()+0.999), mm[1], artifact.ShellQuote(server), artifact.ShellQuote(backend))
	start := time.Now()
	out, err := e.hosts[lb].Sh(ctx, script)
	if err != nil {
		return -1
	}
	at, err := strconv.ParseFloat(strings.TrimSpace(lastLines(out, 1)), 64)
	if err != nil {
		return -1 // "up": it stayed up
	}
	sec, frac := math.Modf(at)
	return max(time.Unix(int64(sec), int64(frac*1e9)).Sub(start), 0)
}

// waitServed waits up to d for backend to answer a request started
// after t (firstFrom), polling the load's samples.
func waitServed(load *Load, backend string, t, d time.Duration) (time.Duration, bool) {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if at, ok := firstFrom(load.Samples(), backend, t); ok {
			return at, true
		}
	}
	return 0, false
}

// firstFrom is when backend first answered a request started after t.
func firstFrom(samples []Sample, backend string, t time.Duration) (time.Duration, bool) {
	for _, s := range samples {
		if s.Start >= t && s.OK() && s.Backend == backend {
			return s.Start + s.Latency, true
		}
	}
	return 0, false
}

func failWindow(samples []Sample) float64 {
	var first, last time.Duration = -1, -1
	for _, s := range samples {
		if !s.OK() {
			if first < 0 {
				first = s.Start
			}
			last = s.Start + s.Latency
		}
	}
	if first < 0 {
		return 0
	}
	return secs(last - first)
}

// failSample says what the failed samples among samples were: each kind
// of failure (an error, or a status with the first words of the body
// that came with it, which tells HAProxy's own 503 from an app's) with
// its count, most frequent first, at most three kinds.
func failSample(samples []Sample) string {
	counts := map[string]int{}
	var kinds []string
	for _, s := range samples {
		if s.OK() {
			continue
		}
		k := failKind(s)
		if counts[k] == 0 {
			kinds = append(kinds, k)
		}
		counts[k]++
	}
	if len(kinds) == 0 {
		return ""
	}
	slices.SortStableFunc(kinds, func(a, b string) int { return cmp.Compare(counts[b], counts[a]) })
	var b strings.Builder
	b.WriteString("; ")
	for i, k := range kinds {
		if i == 3 {
			fmt.Fprintf(&b, ", %d other kind%s", len(kinds)-3, map[bool]string{true: "s"}[len(kinds) > 4])
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d× %s", counts[k], k)
	}
	return b.String()
}

// failKind is one failed sample's kind: its error, or its status and
// the gist of its body (tags dropped, at most 60 bytes).
func failKind(s Sample) string {
	if s.Err != "" {
		return s.Err
	}
	body := strings.Join(strings.Fields(htmlTag.ReplaceAllString(s.Backend, " ")), " ")
	if len(body) > 60 {
		body = strings.ToValidUTF8(body[:60], "") + "…"
	}
	if body == "" {
		return fmt.Sprintf("HTTP %d", s.Status)
	}
	return fmt.Sprintf("HTTP %d (%s)", s.Status, body)
}

var htmlTag = regexp.MustCompile(`<[^>]*>`)

func secs(d time.Duration) float64 { return float64(d.Milliseconds()/100) / 10 }

// durOr says d ("%.1f s", after any prefix) or none when d < 0.
func durOr(d time.Duration, none string, prefix ...string) string {
	if d < 0 {
		return none
	}
	return fmt.Sprintf("%s%.1f s", strings.Join(prefix, ""), d.Seconds())
}

// balancerLoss is scenario 3: the balancer holding the front door is
// lost under load. With failover rendered, failures must stop within
// 3 s; without, the loss is the stack's expected consequence and the
// report says so.
func (e *env) balancerLoss(ctx context.Context, sr *ScenarioReport) {
	lbs := e.hostsWith("lb")
	door, ok := e.frontDoor()
	if !ok || len(lbs) == 0 {
		sr.Note = fmt.Sprintf("no balancer host: the %s load balancer in front is the provider's, highly available by the provider", e.s.Provider)
		return
	}
	failover := e.s.Balancer.Failover
	if len(lbs) < 2 {
		sr.Note = "one balancer host: losing it is an outage"
	}
	victim := e.holder(ctx, door, lbs)
	watch := e.watchAlerts(ctx, sr)
	defer watch.close()
	// Clients give up on a request after 4 s, so one held by the lost
	// balancer counts as failed within the observation.
	const observe = 12 * time.Second
	load, err := e.newLoad(door, observe+2*settle+5*time.Second)
	if err != nil {
		sr.check("load generator", false, "%v", err)
		return
	}
	load.Timeout = 4 * time.Second
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { load.Run(lctx); close(done) }()
	time.Sleep(2 * settle)
	t0 := load.Now()
	m := e.hosts[victim]
	watch.mark()
	_ = e.fab.SetLink(m.Port, false)
	m.Kill()
	time.Sleep(observe)
	cancel()
	<-done
	watch.expect(sr, victim+" lost", []expectation{{Name: "HostDown", Labels: map[string]string{"host": victim}}}, 3*time.Second)
	// Every request not finished when the balancer went: those in
	// flight then, and all started since.
	var after []Sample
	for _, s := range load.Samples() {
		if s.Start+s.Latency >= t0 {
			after = append(after, s)
		}
	}
	p := &Phase{Name: victim + " lost", Stats: summarize(after), DetectS: -1, RecoverS: -1, FailWindowS: failWindow(after)}
	// Recovery: from the loss to the start of the last request that
	// failed; every request started after it succeeded.
	lastFail := time.Duration(-1)
	for _, s := range after {
		if !s.OK() && s.Start > lastFail {
			lastFail = s.Start
		}
	}
	switch {
	case lastFail < 0:
		p.RecoverS = 0
	case lastFail < load.Now()-load.Timeout-time.Second:
		p.RecoverS = secs(max(0, lastFail-t0))
	}
	sr.Phases = append(sr.Phases, p)
	if failover == "none" || len(lbs) < 2 {
		sr.Note = firstNonEmpty(sr.Note, "balancer.failover is \"none\": nothing moves the address, and losing "+victim+" is an outage for the clients that use it")
		sr.check("the loss is seen (expected without failover)", p.Stats.Failed > 0, "%d of %d failed", p.Stats.Failed, p.Stats.Requests)
		return
	}
	sr.check(fmt.Sprintf("failover (%s): requests succeed again within 3 s", failover), p.RecoverS >= 0 && p.RecoverS <= 3,
		"%d of %d failed; %s%s", p.Stats.Failed, p.Stats.Requests, map[bool]string{true: fmt.Sprintf("failures over %.1f s", p.FailWindowS), false: "still failing at the end"}[p.RecoverS >= 0], failSample(after))
	if watch != nil && keepalived.Monitored(e.s) {
		e.vrrpAfterLoss(ctx, watch.mon, victim, sr)
	}
}

// vrrpAfterLoss checks what the surviving balancers publish once the
// master is lost: one new MASTER, not the lost host, holding the address
// (on a reserved IP, the one the provider now routes it to). The
// metrics come from keepalived's notify script at the transition, so
// they follow the failover within a scrape or two.
func (e *env) vrrpAfterLoss(ctx context.Context, mon *monitor, victim string, sr *ScenarioReport) {
	const within = 10 * time.Second
	var masters, holders []string
	var err error
	ok := false
	for end := time.Now().Add(within); ; {
		masters, holders, err = vrrpState(ctx, mon)
		ok = err == nil && len(masters) == 1 && masters[0] != victim && slices.Equal(masters, holders) &&
			(e.rip == nil || masters[0] == e.rip.Holder())
		if ok || time.Now().After(end) || ctx.Err() != nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	detail := fmt.Sprintf("MASTER: %v; holding the address: %v", masters, holders)
	if e.rip != nil {
		detail += "; the provider routes it to " + cmp.Or(e.rip.Holder(), "nobody")
	}
	if err != nil {
		detail = err.Error()
	}
	sr.check(fmt.Sprintf("after %s's loss another balancer publishes VRRP MASTER and holds the address (within %s)", victim, within), ok, "%s", detail)
}

// holder is the balancer that answers for addr now.
func (e *env) holder(ctx context.Context, addr string, lbs []string) string {
	if e.rip != nil {
		if h := e.rip.Holder(); h != "" {
			return h
		}
	}
	for _, lb := range lbs {
		if e.addr(lb) == addr {
			return lb
		}
		if out, _ := e.hosts[lb].Exec(ctx, "ip", "-o", "addr", "show"); strings.Contains(out, " "+addr+"/") {
			return lb
		}
	}
	return lbs[0]
}
