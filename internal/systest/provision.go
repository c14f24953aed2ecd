//go:build unix

package systest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/push"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// provisioning adds an app host the way the runbook's "Add an app host"
// procedure says, on the running stack: the stack gains the host the
// procedure proposes, is rendered again, the new machine comes up (from
// its cloud-init, or on DigitalOcean from a bare image, its packages and
// a push of its files alone), and a push of the whole stack brings the
// balancers the new backend. The new host must then answer through the
// stack's front doors. A push over SSH to the hosts booted from their
// cloud-init must first find nothing to change.
func (e *env) provisioning(ctx context.Context, sr *ScenarioReport) {
	s := e.s
	if len(e.instances) > 0 {
		e.scaleOut(ctx, sr)
		return
	}
	h := s.NextHost("app")
	if h == nil {
		sr.Note = "the stack has no app host to copy"
		return
	}
	if e.st.Set == nil {
		sr.check("the stack renders again with a new app host", false, "no generator set: the caller gave none")
		return
	}
	key, err := e.sshAccess(ctx)
	if !sr.check("push reaches every host over SSH with a key and known host keys", err == nil, "%v", err) {
		return
	}
	// What push records as pushed is what the hosts booted from: the
	// first push over them writes nothing.
	orig := &compile.Rendered{Stack: s, Files: e.st.Files, Set: *e.st.Set}
	sum, err := e.push(ctx, orig, key, nil)
	changed := pushSummary(sum, func(r push.HostResult) bool { return r.Status != push.StatusUnchanged })
	sr.check("a push over the hosts as booted changes nothing", err == nil && changed == "", "%s", firstNonEmpty(errText(err), changed))

	c := s.Clone()
	c.Hosts[h.Name] = h
	c.Reindex()
	// With several apps listing their hosts, the new host runs what the
	// host it copies runs (the last app host, as NextHost takes it).
	if hs := s.HostsWithRole("app"); len(hs) > 0 {
		c.RunLike(h.Name, hs[len(hs)-1].Name)
	}
	r, err := e.st.render(c)
	if !sr.check(fmt.Sprintf("the stack renders with %s (%s) added", h.Name, h.Address), err == nil, "%v", err) {
		return
	}
	st := &Stack{Stack: c, Files: r.Files, UserData: map[string][]byte{}, Set: e.st.Set, Alter: e.st.Alter}
	for name, ud := range e.st.UserData {
		st.UserData[name] = ud
	}
	for _, f := range r.Files {
		if f.Host == "" && f.Path == "cloud-init/"+h.Name+".yaml" {
			st.UserData[h.Name] = f.Content
		}
	}
	if _, ok := st.UserData[h.Name]; !ok {
		sr.check(h.Name+": has cloud-init user data", false, "no cloud-init/%s.yaml in the render", h.Name)
		return
	}
	bare := s.Provider == "digitalocean"
	e.mu.Lock()
	e.s, e.st = c, st
	e.addrs[h.Name] = mustAddr(h.Address)
	e.mu.Unlock()
	ud := st.UserData[h.Name]
	if bare {
		// The runbook creates the Droplet from a plain image and installs
		// the packages the host's cloud-init names; its files come by
		// push. The Droplet's SSH key comes from DigitalOcean.
		st.UserData[h.Name] = []byte("#cloud-config\nhostname: " + h.Name + "\n")
	}
	m, err := e.startHost(e.img, h.Name)
	if m != nil {
		e.mu.Lock()
		e.hosts[h.Name] = m
		e.mu.Unlock()
	}
	st.UserData[h.Name] = ud
	if !sr.check(h.Name+": boots", err == nil, "%v", err) {
		return
	}
	if bare {
		out, _ := m.Exec(ctx, "cloud-init", "status", "--wait", "--long")
		sys, _ := m.Exec(ctx, "systemctl", "is-system-running", "--wait")
		if !sr.check(h.Name+": the bare machine finished booting", strings.Contains(out, "status: done"), "%s; system: %s", cloudErrors(out), strings.TrimSpace(sys)) {
			return
		}
		if err := e.authorize(ctx, h.Name, key); !sr.check(h.Name+": accepts the operator's SSH key", err == nil, "%v", err) {
			return
		}
		// The runbook's commands: the host's user data as system
		// configuration, its host keys kept, every stage run again.
		if err := m.Write(strings.TrimPrefix(cloudinit.ConfigDropIn, "/"), ud, 0o600); err != nil {
			sr.check(h.Name+": its cloud-init copied to "+cloudinit.ConfigDropIn, false, "%v", err)
			return
		}
		if err := m.Write(strings.TrimPrefix(cloudinit.KeepHostKeysDropIn, "/"), []byte(cloudinit.KeepHostKeys), 0o644); err != nil {
			sr.check(h.Name+": "+cloudinit.KeepHostKeysDropIn, false, "%v", err)
			return
		}
		out, err = m.Sh(ctx, cloudinit.Rerun)
		sr.check(h.Name+": "+cloudinit.Rerun, err == nil, "%s", lastLines(out, 4))
		e.hostsUp(ctx, sr, []string{h.Name}, true)
		sum, err := e.push(ctx, r, key, []string{h.Name})
		unchanged := pushSummary(sum, func(r push.HostResult) bool { return r.Status != push.StatusUnchanged })
		sr.check(fmt.Sprintf("push --hosts %s finds its files as rendered", h.Name), err == nil && unchanged == "", "%s", firstNonEmpty(errText(err), unchanged))
	} else {
		e.hostsUp(ctx, sr, []string{h.Name}, true)
		if err := e.authorize(ctx, h.Name, key); !sr.check(h.Name+": accepts the operator's SSH key", err == nil, "%v", err) {
			return
		}
	}
	units := e.services(h.Name)
	out, err := m.Exec(ctx, append([]string{"systemctl", "is-enabled"}, units...)...)
	var off []string
	for i, st := range strings.Fields(out) {
		if st != "enabled" && st != "static" && st != "alias" && i < len(units) {
			off = append(off, units[i]+" "+st)
		}
	}
	sr.check(h.Name+": its services start again after a reboot (enabled)", err == nil && len(off) == 0, "%s", strings.Join(off, ", "))

	// The rest of the stack: the balancers learn the new backend, one at
	// a time, each passing its health check.
	sum, err = e.push(ctx, r, key, nil)
	sr.check("push of the whole stack succeeds", err == nil, "%s", firstNonEmpty(errText(err), pushSummary(sum, nil)))
	if err == nil {
		e.deadman(ctx, sr, key, h.Name, r)
	}
	if s.Balancer.Kind == "cloud" && e.clb == nil {
		sr.check(h.Name+": answers its health path", e.answers(ctx, h.Name), "")
		sr.Note = "the provider's load balancer is not stood in for: that it sends the new host traffic is not judged"
		return
	}
	if e.clb != nil {
		// The Droplet is tagged: the provider's balancer adds it.
		if err := e.clb.reload(e); !sr.check(h.Name+": tagged, the load balancer (stand-in) includes it", err == nil, "%v", err) {
			return
		}
	}
	for _, en := range e.entries() {
		if e.clb != nil && !en.cloud {
			continue
		}
		seen, err := e.reaches(ctx, en, h.Name)
		sr.check(fmt.Sprintf("%s: sends requests to %s", en.host, h.Name), seen, "%s", errText(err))
	}
	if len(e.hostsWith("lb")) > 0 {
		e.drain(ctx, sr, key, h.Name)
	}
}

// drain is the runbook's "Drain a host" on the host just added, under
// load: the stack marks it drain: true, is rendered again and pushed to
// the balancers one at a time. Requests in flight on the host (slow ones
// among them) finish, none fails, and once the push is done no new
// request reaches it.
func (e *env) drain(ctx context.Context, sr *ScenarioReport, key, victim string) {
	c := e.s.Clone()
	h := *c.Hosts[victim]
	h.Drain = true
	c.Hosts[victim] = &h
	c.Reindex()
	r, err := e.st.render(c)
	if !sr.check(fmt.Sprintf("drain %s: the stack renders with it drained", victim), err == nil, "%v", err) {
		return
	}
	orig := &compile.Rendered{Stack: e.s, Files: e.st.Files, Set: *e.st.Set}
	var m drainRun
	again := ""
	for attempt := 1; ; attempt++ {
		m = e.drainOnce(ctx, r, key, victim)
		if m.pushErr != nil || m.inFlight > 0 || m.st.Failed > 0 || m.after > 0 || attempt == 2 || ctx.Err() != nil {
			break
		}
		// No slow request happened to be on the host while the push
		// ran, so this run shows nothing of requests in flight: put
		// the host back in rotation and drain it once more.
		if _, err := e.push(ctx, orig, key, e.hostsWith("lb")); err != nil {
			break
		}
		again = " (second drain: no slow request was on it during the first)"
	}
	if !sr.check(fmt.Sprintf("drain %s: push to the balancers, one at a time", victim), m.pushErr == nil, "%s", firstNonEmpty(errText(m.pushErr), pushSummary(m.sum, nil))) {
		return
	}
	sr.Phases = append(sr.Phases, &Phase{Name: "drain " + victim, Stats: m.st, DetectS: -1, RecoverS: -1, FailWindowS: failWindow(m.all)})
	sr.check(fmt.Sprintf("drain %s: no request fails, and its slow requests in flight finish", victim), m.st.Failed == 0 && m.inFlight > 0,
		"%d of %d failed; %d slow requests were on %s while the push ran%s%s%s", m.st.Failed, m.st.Requests, m.inFlight, victim, failSample(m.failed), m.when, again)
	sr.check(fmt.Sprintf("drain %s: no new request reaches it once the push is done", victim), m.after == 0, "%d did%s", m.after, m.late)
	// The stack is now as pushed.
	e.mu.Lock()
	e.s = c
	e.st = &Stack{Stack: c, Files: r.Files, UserData: e.st.UserData, Set: e.st.Set, Alter: e.st.Alter}
	e.mu.Unlock()
}

// drainRun is what one drain under load showed.
type drainRun struct {
	sum      *push.Summary
	pushErr  error
	all      []Sample
	st       Stats
	failed   []Sample
	inFlight int    // slow requests on the host while the push ran
	after    int    // requests that reached it after the push
	late     string // when the first of those started
	when     string // when failures began and ended, against the push
}

// drainOnce pushes r (the stack with victim drained) to the balancers
// under a fast load and a slow one (2 s requests), once the host is
// seen serving a slow request.
func (e *env) drainOnce(ctx context.Context, r *compile.Rendered, key, victim string) drainRun {
	door, _ := e.frontDoor()
	// The loads run until 5 s after the push (stop, below): the checks
	// look at requests in flight while it runs and after it. hold only
	// bounds them; a fixed 40 s ended them before a push slowed by a
	// busy machine was done, and the drain saw no slow request in flight.
	const hold = 5 * time.Minute
	fast, err := e.newLoadFor(door, hold, e.appOn(victim))
	if err != nil {
		return drainRun{pushErr: fmt.Errorf("load generator: %w", err)}
	}
	slow, _ := e.newLoadFor(door, hold, e.appOn(victim))
	slow.URL += "slow"
	slow.Workers = e.slowLoad(victim)
	slow.Sources, slow.Pace = nil, 0
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, l := range []*Load{fast, slow} {
		wg.Add(1)
		go func() { defer wg.Done(); l.Run(lctx) }()
	}
	stop := func() { cancel(); wg.Wait() }
	// The host serves before it is drained.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, ok := firstFrom(slow.Samples(), victim, 0); ok {
			break
		}
	}
	var m drainRun
	pushAt := time.Now()
	m.sum, m.pushErr = e.push(ctx, r, key, e.hostsWith("lb"))
	doneAt := time.Now()
	time.Sleep(5 * time.Second)
	stop()
	if m.pushErr != nil {
		return m
	}
	// The loads have stopped: each one's samples are taken once.
	loads := []struct {
		l       *Load
		samples []Sample
	}{{fast, fast.Samples()}, {slow, slow.Samples()}}
	m.all = append(slices.Clone(loads[0].samples), loads[1].samples...)
	m.st = summarize(m.all)
	// In flight: slow requests the host was serving while the push ran
	// (the balancers reload somewhere inside it, one after another).
	tPush, tEnd := pushAt.Sub(slow.begin), doneAt.Sub(slow.begin)
	for _, x := range loads[1].samples {
		if x.Backend == victim && x.OK() && x.Start < tEnd && x.Start+x.Latency > tPush {
			m.inFlight++
		}
	}
	// After: requests that reached the host once the push was done;
	// failed: every failed request, and when against the push.
	first, last := time.Duration(-1), time.Duration(0)
	for _, ld := range loads {
		tDone := doneAt.Sub(ld.l.begin)
		for _, x := range ld.samples {
			if x.Backend == victim && x.Start > tDone+time.Second {
				if m.after++; m.late == "" {
					m.late = fmt.Sprintf("; first %.1f s after the push", (x.Start - tDone).Seconds())
				}
			}
			if x.OK() {
				continue
			}
			m.failed = append(m.failed, x)
			at := ld.l.begin.Add(x.Start).Sub(pushAt)
			if first < 0 || at < first {
				first = at
			}
			last = max(last, at)
		}
	}
	if first >= 0 {
		m.when = fmt.Sprintf("; failures from %+.1f s to %+.1f s of the push's start (it took %.1f s)", first.Seconds(), last.Seconds(), doneAt.Sub(pushAt).Seconds())
	}
	return m
}

// slowLoad is how many slow requests a drain of victim keeps running:
// two per host of the victim's app, the victim counted, so that some
// are on it as it is drained (fewer left it none while a push ran: with
// four over three Starman hosts, do-perl-ha's drain saw none on the
// victim in either of its tries); and no more than the app's other
// hosts can serve at once with a worker each to spare, since once the
// victim is out they carry every slow request and their health checks
// and the fast load need that worker. Counted over the stack's app
// hosts rather than the app's, a drain of one of multi-app's three
// legacy hosts (Starman, 4 workers) sent 10 slow requests to the 2
// left: every worker held, their health checks timed out, the
// balancers marked both down and answered 503 (the app's capacity, not
// the drain, failing). Now it sends 6: 3 on each, 1 worker free.
func (e *env) slowLoad(victim string) int {
	a := e.appOn(victim)
	if a == nil {
		a = &e.s.App
	}
	per, _ := rules.PerWorker(*a)
	hosts := e.s.AppHosts(a)
	spare := 0
	for _, h := range hosts {
		if h.Name != victim && !h.Drain {
			spare += a.Workers.For(h)*max(per, 1) - 1
		}
	}
	return max(min(2*len(hosts), spare), 1)
}

// sshAccess gives the test an operator's SSH key, installed for the
// stack's SSH user on every running host, and a known_hosts file with
// the hosts' own keys. It returns the key's file.
func (e *env) sshAccess(ctx context.Context) (string, error) {
	dir := filepath.Join(e.opt.WorkDir, e.s.Name, "operator")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	block, err := ssh.MarshalPrivateKey(priv, "hacompile test operator")
	if err != nil {
		return "", err
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		return "", err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return "", err
	}
	e.operatorKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	for _, name := range e.s.HostNames() {
		if err := e.authorize(ctx, name, key); err != nil {
			return "", err
		}
	}
	return key, nil
}

// authorize installs the operator key on a host for its SSH user, starts
// sshd and adds the host's key to the operator's known_hosts.
func (e *env) authorize(ctx context.Context, host, key string) error {
	h := e.s.Hosts[host]
	m := e.hosts[host]
	home := "/root"
	if h.SSH.User != "root" {
		home = "/home/" + h.SSH.User
	}
	script := fmt.Sprintf(`set -e
id -u %[1]s >/dev/null 2>&1 || useradd -m -s /bin/bash %[1]s
install -d -m 700 -o %[1]s %[2]s/.ssh
printf '%%s\n' '%[3]s' >> %[2]s/.ssh/authorized_keys
chown %[1]s %[2]s/.ssh/authorized_keys; chmod 600 %[2]s/.ssh/authorized_keys
systemctl start ssh.service
cat /etc/ssh/ssh_host_ed25519_key.pub`, h.SSH.User, home, e.operatorKey)
	out, err := m.Sh(ctx, script)
	if err != nil {
		return fmt.Errorf("%s: %v: %s", host, err, lastLines(out, 3))
	}
	f := strings.Fields(lastLines(out, 1))
	if len(f) < 2 {
		return fmt.Errorf("%s: no ed25519 host key: %q", host, out)
	}
	name := e.addr(host)
	if h.SSH.Port != 22 && h.SSH.Port != 0 {
		name = fmt.Sprintf("[%s]:%d", name, h.SSH.Port)
	}
	kh, err := os.OpenFile(filepath.Join(filepath.Dir(key), "known_hosts"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer kh.Close()
	_, err = fmt.Fprintf(kh, "%s %s %s\n", name, f[0], f[1])
	return err
}

// deadman pushes a change of the kernel parameters to the new host with
// push's dead-man timer armed: systemd on the host runs the transient
// timer, push confirms over a new connection, and when the timer fires
// the change stays. Then the host gets the stack's own files back.
func (e *env) deadman(ctx context.Context, sr *ScenarioReport, key, host string, orig *compile.Rendered) {
	c := e.s.Clone()
	const key1 = "net.ipv4.tcp_fin_timeout"
	sysctl := map[string]schema.Scalar{}
	for k, v := range c.Tuning.Sysctl {
		sysctl[k] = v
	}
	val := schema.Scalar("37")
	if sysctl[key1] == val {
		val = "38"
	}
	sysctl[key1] = val
	c.Tuning.Sysctl = sysctl
	r, err := e.st.render(c)
	if !sr.check("dead-man timer: the stack renders with "+key1+" = "+string(val), err == nil, "%v", err) {
		return
	}
	const window = 20 * time.Second
	sum, err := e.pushWith(ctx, r, key, []string{host}, func(o *push.Options) { o.ConfirmTimeout = window })
	var unit string
	confirmed := false
	if sum != nil && len(sum.Hosts) == 1 {
		for _, n := range sum.Hosts[0].Notes {
			if rest, ok := strings.CutPrefix(n, "armed the dead-man timer "); ok {
				unit, _, _ = strings.Cut(rest, ":")
			}
			confirmed = confirmed || strings.HasPrefix(n, "confirmed over a new connection")
		}
	}
	if !sr.check(fmt.Sprintf("dead-man timer: push of %s to %s arms it and confirms over a new connection", key1, host),
		err == nil && unit != "" && confirmed, "%s", firstNonEmpty(errText(err), pushSummary(sum, nil))) {
		return
	}
	m := e.hosts[host]
	out, err := m.Exec(ctx, "systemctl", "list-timers", "--all", "--no-legend", unit+".timer")
	sr.check("dead-man timer: systemd runs "+unit+".timer", err == nil && strings.Contains(out, unit), "%s %v", strings.TrimSpace(out), err)
	fired := false
	for deadline := time.Now().Add(window + 30*time.Second); time.Now().Before(deadline); time.Sleep(time.Second) {
		// An elapsed timer stays loaded with its last trigger time, or
		// is unloaded once done.
		out, _ := m.Exec(ctx, "systemctl", "show", "-p", "LoadState,LastTriggerUSecMonotonic", unit+".timer")
		if strings.Contains(out, "LoadState=not-found") || (strings.Contains(out, "LastTriggerUSecMonotonic=") && !strings.Contains(out, "LastTriggerUSecMonotonic=0\n")) {
			fired = true
			break
		}
	}
	now, _ := m.Exec(ctx, "cat", "/proc/sys/net/ipv4/tcp_fin_timeout")
	sr.check(fmt.Sprintf("dead-man timer: fired after the confirmation and left %s = %s", key1, val),
		fired && strings.TrimSpace(now) == string(val), "timer gone: %v, %s = %s", fired, key1, strings.TrimSpace(now))
	sum, err = e.push(ctx, orig, key, []string{host})
	sr.check(host+": gets the stack's own kernel parameters back", err == nil, "%s", firstNonEmpty(errText(err), pushSummary(sum, nil)))
}

// push runs hacompile's push of a rendered stack from the client
// namespace, as an operator's machine would, to hosts (all when nil).
func (e *env) push(ctx context.Context, r *compile.Rendered, key string, hosts []string) (*push.Summary, error) {
	return e.pushWith(ctx, r, key, hosts, nil)
}

// pushWith is push with options changed by opt.
func (e *env) pushWith(ctx context.Context, r *compile.Rendered, key string, hosts []string, opt func(*push.Options)) (*push.Summary, error) {
	ns, err := e.clientNS()
	if err != nil {
		return nil, err
	}
	targets, err := push.Targets(r, push.TargetOptions{Hosts: hosts})
	if err != nil {
		return nil, err
	}
	// Hosts that pull apply what the registry has: the operator of a
	// stack both pushed and pulled publishes what is pushed, or the
	// hosts' timers put the published files back.
	if e.reg != nil {
		if _, err := e.publish(ctx, r, e.reg.key, nil); err != nil {
			return nil, fmt.Errorf("publishing what is pushed (the hosts pull): %w", err)
		}
	}
	d := &nsDialer{ns: ns}
	o := push.Options{
		Stack: r.Stack.Name, SourceSHA256: r.Stack.SourceDigest, Hosts: targets,
		Auth:    push.Auth{KnownHosts: []string{filepath.Join(filepath.Dir(key), "known_hosts")}, Identity: key},
		Timeout: 20 * time.Second, CommandTimeout: time.Minute, HealthTimeout: 30 * time.Second, LockTimeout: 15 * time.Minute,
		Batch: "25%", Keep: 10, By: "hacompile-test", PID: os.Getpid(),
		Dial: d.DialContext,
	}
	if opt != nil {
		opt(&o)
	}
	return push.Run(ctx, o)
}

// pushSummary lists the hosts of a push (those keep selects, all when
// nil) with what push did there.
func pushSummary(sum *push.Summary, keep func(push.HostResult) bool) string {
	if sum == nil {
		return ""
	}
	var out []string
	for _, r := range sum.Hosts {
		if keep != nil && !keep(r) {
			continue
		}
		l := fmt.Sprintf("%s %s (+%d ~%d -%d)", r.Host, r.Status, r.Created, r.Updated, r.Removed)
		if r.Plan != nil {
			var paths []string
			for _, c := range r.Plan.Changes {
				paths = append(paths, c.Action+" "+c.Path)
			}
			if len(paths) > 0 {
				l += ": " + strings.Join(paths, ", ")
			}
		}
		if r.Error != "" {
			l += ": " + r.Error
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// answers: the host's own nginx answers the health path.
func (e *env) answers(ctx context.Context, host string) bool {
	hp := cmpOr(e.s.Balancer.Health.Path, "/")
	port, name := e.appPort(), e.s.Domain
	if a := e.appOn(host); a != nil {
		port, name = a.HTTPPort, e.s.AppDomains(a)[0]
	}
	code, _, _, err := e.getUntil(ctx, fmt.Sprintf("%s:%d", e.addr(host), port), "http://"+name+hp, 20*time.Second, func(c int, _ http.Header) bool { return c == 200 })
	return err == nil && code == 200
}

// reaches asks a front door for / until the stand-in app on host
// answers (it answers with its host name), within the time a balancer
// takes to see a new backend healthy.
func (e *env) reaches(ctx context.Context, en entry, host string) (bool, error) {
	scheme, port := "http", "80"
	if en.https {
		scheme, port = "https", "443"
	}
	if len(e.hostsWith("lb")) == 0 && !en.cloud {
		port = fmt.Sprint(e.appPort())
	}
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		url := scheme + "://" + e.s.Domain + "/"
		if a := e.appOn(host); a != nil && e.s.MultiApp() {
			url = e.appURLs(a)[0] // an app the host runs
		}
		_, body, _, err := e.get(ctx, en.addr+":"+port, url)
		if err == nil && strings.Contains(body, host) {
			return true, nil
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	if last == nil {
		last = fmt.Errorf("no answer from %s within 30 s", host)
	}
	return false, last
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func mustAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

// scaleOut is provisioning for an Auto Scaling group, as the runbook's
// "Add an app host" does it: the desired capacity grows by one, a new
// instance boots from the launch template's user data alone (its code
// from the image, its secrets from their parameters), the target group
// registers it, and once its health check passes the load balancer sends
// it requests.
func (e *env) scaleOut(ctx context.Context, sr *ScenarioReport) {
	t := e.s.ScalingTemplateHost()
	base := strings.TrimSuffix(e.instances[0], "-1")
	name := fmt.Sprintf("%s-%d", base, len(e.instances)+1)
	addr, err := e.freeAddr()
	if !sr.check("an address for the new instance", err == nil, "%v", err) {
		return
	}
	c := e.s.Clone()
	h := *t
	h.Name = name
	c.Hosts[name] = &h
	c.Reindex()
	st := &Stack{Stack: c, Files: slices.Clone(e.st.Files), UserData: maps.Clone(e.st.UserData), Set: e.st.Set, Alter: e.st.Alter}
	st.addInstance(e.st, t.Name, name)
	e.mu.Lock()
	e.s, e.st = c, st
	e.addrs[name] = addr
	e.instances = append(e.instances, name)
	e.mu.Unlock()
	m, err := e.startHost(e.img, name)
	if m != nil {
		e.mu.Lock()
		e.hosts[name] = m
		e.mu.Unlock()
	}
	if !sr.check(fmt.Sprintf("%s: a new instance boots from the launch template's user data", name), err == nil, "%v", err) {
		return
	}
	e.hostsUp(ctx, sr, []string{name}, true)
	if e.clb == nil {
		sr.check(name+": answers its health path", e.answers(ctx, name), "")
		return
	}
	// The group registers its new instance with the target group.
	if err := e.clb.reload(e); !sr.check(name+": registered, the load balancer (stand-in) includes it", err == nil, "%v", err) {
		return
	}
	for _, en := range e.entries() {
		if !en.cloud {
			continue
		}
		seen, err := e.reaches(ctx, en, name)
		sr.check(fmt.Sprintf("%s: sends requests to %s", en.host, name), seen, "%s", errText(err))
	}
}
