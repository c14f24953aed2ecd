//go:build unix

package systest

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/hacompile/hacompile/internal/proc"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/pull"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/oci"
	"github.com/hacompile/hacompile/internal/push"
	"github.com/hacompile/hacompile/schema"
)

// registry is the stack's OCI registry (delivery.pull), stood in for by
// Debian's docker-registry (the CNCF distribution registry) in a
// namespace of its own at the address delivery.pull.registry gives, on
// the test network: the hosts reach it as they would the registry on
// their private network. The test publishes with publish --oci's code,
// signing with a key it made; the hosts verify with its public key.
type registry struct {
	ns     string
	addr   string // host:port, delivery.pull.registry
	dir    string
	cmd    *exec.Cmd
	once   sync.Once
	key    *ecdsa.PrivateKey // the publishers' key, its public half in every host's image
	other  *ecdsa.PrivateKey // a key the hosts do not trust
	pub    []byte            // the public key, PEM
	agent  []byte            // the hacompile binary, the agent in every host's image
	client *http.Transport
}

// registryAddr is a pull stack's registry address, when it is an IPv4
// address the test network can hold.
func registryAddr(s *schema.Stack) (netip.AddrPort, bool) {
	if !s.PullEnabled() {
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(s.Delivery.Pull.Registry)
	if err != nil {
		a, err := netip.ParseAddr(s.Delivery.Pull.Registry)
		if err != nil || !a.Is4() {
			return netip.AddrPort{}, false
		}
		ap = netip.AddrPortFrom(a, 443)
	}
	return ap, ap.Addr().Is4()
}

// pullStandIns says what a stack that pulls needs the test to stand in
// for, or why the test cannot.
func pullStandIns(s *schema.Stack, agent string) error {
	p := s.Delivery.Pull
	var why []string
	if _, ok := registryAddr(s); !ok {
		why = append(why, fmt.Sprintf("delivery.pull.registry %q is not an IPv4 address[:port]: the test runs the registry at that address on its own network (a registry on the hosts' private network)", p.Registry))
	}
	if !p.PlainHTTP {
		why = append(why, "delivery.pull.plain_http is false: the test's registry speaks HTTP on the private network, it has no certificate the hosts would trust")
	}
	if p.PublicKey != "" {
		why = append(why, "delivery.pull.public_key is set: the hosts would trust only the operator's key, which the test cannot sign with (leave it out and provision the key at public_key_path in the image)")
	}
	if p.Agent.URL != "" {
		why = append(why, "delivery.pull.agent.url is set: the hosts would download the agent from the internet, which the test network does not reach (leave it out: the image carries the agent)")
	}
	if agent == "" {
		why = append(why, "no hacompile binary to put in the hosts' image as the agent")
	}
	if len(why) > 0 {
		return fmt.Errorf("%s pulls (delivery.pull) and the system test cannot stand in for it: %s", s.Name, strings.Join(why, "; "))
	}
	return nil
}

// startRegistry runs the registry, makes the keys and publishes the
// stack as rendered, before any host boots: a host's first boot applies
// what is published.
func (e *env) startRegistry(ctx context.Context) error {
	if err := pullStandIns(e.s, e.opt.Agent); err != nil {
		return err
	}
	bin, err := execLookPath("docker-registry")
	if err != nil {
		return errors.New("a stack that pulls is tested against Debian's docker-registry: apt-get install docker-registry")
	}
	ap, _ := registryAddr(e.s)
	if !e.fab.network.Contains(ap.Addr()) {
		return fmt.Errorf("delivery.pull.registry %s is outside the stack's network %s", ap, e.fab.network)
	}
	r := &registry{addr: ap.String(), dir: filepath.Join(e.opt.WorkDir, e.s.Name, "registry")}
	if r.agent, err = os.ReadFile(e.opt.Agent); err != nil {
		return fmt.Errorf("the agent: %w", err)
	}
	if err := os.MkdirAll(r.dir, 0o700); err != nil {
		return err
	}
	// The keys, as hacompile keygen writes them.
	for i, k := range []**ecdsa.PrivateKey{&r.key, &r.other} {
		priv, pub, err := oci.GenerateKey()
		if err != nil {
			return err
		}
		f := filepath.Join(r.dir, fmt.Sprintf("sign-%d.key", i))
		if err := os.WriteFile(f, priv, 0o600); err != nil {
			return err
		}
		if *k, err = oci.LoadPrivateKey(f); err != nil {
			return err
		}
		if i == 0 {
			r.pub = pub
		}
	}
	r.ns, _, err = e.fab.Attach("registry", ap.Addr())
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(r.dir, "storage"), r.addr)
	if err := os.WriteFile(filepath.Join(r.dir, "config.yml"), []byte(cfg), 0o600); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(r.dir, "registry.log"))
	if err != nil {
		return err
	}
	r.cmd = exec.Command("ip", "netns", "exec", r.ns, bin, "serve", filepath.Join(r.dir, "config.yml"))
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	proc.DieWithParent(r.cmd)
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return err
	}
	e.closers = append(e.closers, func() {
		r.once.Do(func() {
			_ = syscall.Kill(r.cmd.Process.Pid, syscall.SIGKILL)
			_ = r.cmd.Wait()
			logf.Close()
		})
	})
	// The publisher reaches the registry on the test network (from the
	// registry's own namespace: nothing leaves it).
	d := &nsDialer{ns: r.ns, d: net.Dialer{Timeout: 5 * time.Second}}
	r.client = &http.Transport{DialContext: d.DialContext}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := waitTCP(wctx, r.ns, r.addr); err != nil {
		b, _ := os.ReadFile(filepath.Join(r.dir, "registry.log"))
		return fmt.Errorf("docker-registry did not listen on %s: %v\n%s", r.addr, err, lastLines(string(b), 5))
	}
	e.reg = r
	e.deviate(fmt.Sprintf("delivery.pull: the registry at %s is Debian's docker-registry on the test network; the hosts' image is stood in for: the test puts the hacompile binary it runs at %s and the public key of a signing key it made at %s in each host before it boots, and publishes the stack as publish --oci does with that key",
		r.addr, e.s.Delivery.Pull.Agent.Path, e.s.Delivery.Pull.PublicKeyPath))
	_, err = e.publish(ctx, e.rendered(), r.key, nil)
	return err
}

// pullImage puts what the hosts' image carries for pull delivery into
// a host's root before it boots: the agent and the publishers' public
// key.
func (e *env) pullImage(m *Machine) error {
	if e.reg == nil {
		return nil
	}
	p := e.s.Delivery.Pull
	if err := m.Write(strings.TrimPrefix(p.Agent.Path, "/"), e.reg.agent, 0o755); err != nil {
		return err
	}
	return m.Write(strings.TrimPrefix(p.PublicKeyPath, "/"), e.reg.pub, 0o644)
}

// rendered is the stack as the hosts booted it.
func (e *env) rendered() *compile.Rendered {
	r := &compile.Rendered{Stack: e.s, Files: e.st.Files}
	if e.st.Set != nil {
		r.Set = *e.st.Set
	}
	return r
}

// publish pushes the hosts' artifacts of r (all hosts when nil), each
// to its channel's tag, signed with key, and returns each host's
// artifact digest.
func (e *env) publish(ctx context.Context, r *compile.Rendered, key *ecdsa.PrivateKey, hosts []string) (map[string]string, error) {
	reg := e.reg
	// The source commit publish --oci records; the test has none, and
	// the same files must give the same digests.
	const rev = "hacompile-test"
	packs, err := oci.PackStack(r, rev, hosts)
	if err != nil {
		return nil, err
	}
	byTag := map[string][]*oci.Packed{}
	for _, p := range packs {
		ch := pull.Channel(r.Stack, p.Host)
		byTag[ch] = append(byTag[ch], p)
	}
	p := r.Stack.Delivery.Pull
	out := map[string]string{}
	for _, tag := range slices.Sorted(mapKeys(byTag)) {
		ref := oci.Ref{Registry: p.Registry, Repository: p.Repository, Tag: tag}
		repo, err := oci.Open(ref, oci.RepoOptions{PlainHTTP: true, Transport: reg.client, DockerConfig: filepath.Join(reg.dir, "no-credentials.json"), Timeout: time.Minute})
		if err != nil {
			return nil, err
		}
		if _, err := oci.Publish(ctx, repo, ref, byTag[tag], key, 0); err != nil {
			return nil, fmt.Errorf("publish --oci %s: %w", ref, err)
		}
		for _, pk := range byTag[tag] {
			t, _ := oci.HostTag(tag, r.Stack.Name, pk.Host)
			d, err := repo.Resolve(ctx, t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", t, err)
			}
			out[pk.Host] = d.Digest.String()
		}
	}
	return out, nil
}

// applyState is what a host's textfile metrics say of its applies.
type applyState struct {
	present     bool
	generation  int
	digest      string
	failures    int
	consecutive int
	lastSuccess int    // Unix seconds, 0 for never
	lastError   string // the last failure's reason, while failing
}

var appliedInfoRe = regexp.MustCompile(`(?m)^hacompile_applied_info\{digest="([^"]+)"`)

// applyStateOf reads a host's pull metrics (the node_exporter textfile
// apply writes).
func (e *env) applyStateOf(ctx context.Context, host string) (applyState, string) {
	out, err := e.hosts[host].Exec(ctx, "cat", pull.MetricsFile(e.s))
	if err != nil {
		return applyState{}, strings.TrimSpace(out)
	}
	st := applyState{present: true}
	num := func(name string) int {
		m := regexp.MustCompile(`(?m)^` + name + ` (\d+)$`).FindStringSubmatch(out)
		if m == nil {
			st.present = false
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	st.generation = num("hacompile_applied_generation")
	st.failures = num("hacompile_apply_failures_total")
	st.consecutive = num("hacompile_apply_consecutive_failures")
	st.lastSuccess = num("hacompile_apply_last_success_timestamp_seconds")
	if m := appliedInfoRe.FindStringSubmatch(out); m != nil {
		st.digest = m[1]
	}
	if st.consecutive > 0 {
		// Why, as the host's record of its applies says.
		if b, err := e.hosts[host].Exec(ctx, "cat", oci.PullStatePath(e.s.Name)); err == nil {
			var ps oci.PullState
			if json.Unmarshal([]byte(b), &ps) == nil {
				st.lastError = ps.LastError
			}
		}
	}
	return st, out
}

func (a applyState) String() string {
	if !a.present {
		return "no hacompile metrics"
	}
	ok := "never succeeded"
	if a.lastSuccess > 0 {
		ok = "succeeded at " + time.Unix(int64(a.lastSuccess), 0).UTC().Format(time.TimeOnly)
	}
	s := fmt.Sprintf("generation %d, digest %s, %s, %d failures (%d in a row)", a.generation, oci.ShortDigest(a.digest), ok, a.failures, a.consecutive)
	if a.lastError != "" {
		s += ": " + a.lastError
	}
	return s
}

// sameFiles compares a host's files with its artifact in r: content,
// mode and owner of every file. It returns the differences.
func (e *env) sameFiles(ctx context.Context, r *compile.Rendered, host string) (string, error) {
	targets, err := push.Targets(r, push.TargetOptions{Hosts: []string{host}})
	if err != nil {
		return "", err
	}
	var script strings.Builder
	want := map[string]string{}
	for _, f := range targets[0].Files {
		fmt.Fprintf(&script, "printf '%%s %%s ' \"$(stat -c '%%a %%U:%%G' %[1]s 2>&1)\" \"$(sha256sum < %[1]s 2>&1 | cut -d' ' -f1)\"; echo %[1]s\n", artifact.ShellQuote(f.Path))
		want[f.Path] = fmt.Sprintf("%o %s %s", f.Mode.Perm(), f.Owner, sha256Hex(f.Content))
	}
	out, err := e.hosts[host].Sh(ctx, script.String())
	if err != nil {
		return "", fmt.Errorf("%v: %s", err, lastLines(out, 3))
	}
	var diff []string
	seen := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 {
			diff = append(diff, l)
			continue
		}
		seen++
		if got := strings.Join(f[:3], " "); got != want[f[3]] {
			diff = append(diff, f[3]+": "+got+", want "+want[f[3]])
		}
	}
	if seen != len(want) {
		diff = append(diff, fmt.Sprintf("%d of %d files read", seen, len(want)))
	}
	return strings.Join(diff, "; "), nil
}

// waitApplied waits until every host's metrics name its digest in want
// (or, with failed, until a host's failures exceed before's), up to d.
func (e *env) waitApplied(ctx context.Context, hosts []string, d time.Duration, done func(h string, a applyState) bool) map[string]applyState {
	got := map[string]applyState{}
	for deadline := time.Now().Add(d); ; time.Sleep(2 * time.Second) {
		all := true
		for _, h := range hosts {
			a, _ := e.applyStateOf(ctx, h)
			got[h] = a
			all = all && done(h, a)
		}
		if all || time.Now().After(deadline) || ctx.Err() != nil {
			return got
		}
	}
}

// pullDelivery is the pull scenario, for a stack with delivery.pull:
// every host applied the stack's published artifact by itself on first
// boot (cloud-init's first apply), its files are the artifact's, and
// its pull timer is enabled and waiting (a host whose timer is not
// would never follow a change: the scenario stops there); a
// change published afterwards reaches every host through its timer
// alone (delivery.pull.interval_minutes) and takes effect; an artifact
// signed with a key the hosts do not trust writes nothing and shows in
// the host's metrics; the stack's own artifacts published again bring
// every host back. The timer shown to fire, those last two run the pull
// service at once (pullNow) rather than wait for the timer again.
func (e *env) pullDelivery(ctx context.Context, sr *ScenarioReport) {
	if e.reg == nil {
		sr.Note = "the stack does not pull (delivery.pull)"
		return
	}
	p := e.s.Delivery.Pull
	hosts := e.s.HostNames()
	orig := e.rendered()
	// The digests the hosts follow, as the registry has them now.
	want, err := e.publish(ctx, orig, e.reg.key, nil)
	if !sr.check("the stack's artifacts are in the registry at "+e.reg.addr, err == nil, "%v", err) {
		return
	}
	applied := true
	bootGen := map[string]int{}
	for _, h := range hosts {
		m := e.hosts[h]
		cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
		out, _ := m.Exec(cctx, "cloud-init", "status", "--wait")
		cancel()
		// First boot: cloud-init's boot script ran the first apply.
		a, raw := e.applyStateOf(ctx, h)
		bootGen[h] = a.generation
		applied = sr.check(h+": applied its artifact by itself on first boot", a.present && a.lastSuccess > 0 && a.digest == want[h] && a.consecutive == 0,
			"%s; want digest %s; cloud-init %s%s", a, oci.ShortDigest(want[h]), strings.TrimLeft(strings.TrimSpace(out), "."), errDetail(ctx, m, pull.Unit(e.s), a, raw)) && applied
		diff, err := e.sameFiles(ctx, orig, h)
		sr.check(fmt.Sprintf("%s: its files are out/%s/hosts/%s/ (content, mode, owner)", h, e.s.Name, h), err == nil && diff == "", "%s", firstNonEmpty(errText(err), diff))
		// Its timer is what follows a change: enabled (it comes back
		// after a reboot) and waiting for its next run (or running it:
		// the first is due a minute after boot).
		timer := pull.Unit(e.s) + ".timer"
		show, err := m.Exec(ctx, "systemctl", "show", "-p", "UnitFileState", "-p", "ActiveState", "-p", "SubState", timer)
		props := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(show), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				props[k] = v
			}
		}
		applied = sr.check(h+": "+timer+" is enabled and waiting for its next run",
			err == nil && props["UnitFileState"] == "enabled" && props["ActiveState"] == "active" && (props["SubState"] == "waiting" || props["SubState"] == "running"),
			"%s", firstNonEmpty(errText(err), strings.ReplaceAll(strings.TrimSpace(show), "\n", ", "))) && applied
	}
	if !applied {
		// A host that does not apply by itself, or whose timer is not
		// waiting, will not follow a change.
		return
	}
	// An apply that changes files checks the host's health after: the
	// hosts serve once their secrets are there (the boot scenario
	// provisions them; run alone, this one does).
	for _, h := range hosts {
		if e.provisioned[h] || slices.Contains(e.instances, h) {
			continue
		}
		if err := e.provisionSecrets(ctx, h); !sr.check(h+": secrets provisioned", err == nil, "%v", err) {
			return
		}
		e.provisioned[h] = true
	}
	// A change: a kernel parameter, published, reaches every host by its
	// timer and takes effect (apply reloads).
	const param = "net.ipv4.tcp_fin_timeout"
	changed := func(v string) (*compile.Rendered, error) {
		c := e.s.Clone()
		sysctl := map[string]schema.Scalar{}
		for k, x := range c.Tuning.Sysctl {
			sysctl[k] = x
		}
		sysctl[param] = schema.Scalar(v)
		c.Tuning.Sysctl = sysctl
		return e.st.Set.Render(c, artifact.Options{})
	}
	if e.st.Set == nil {
		sr.check("the stack renders again with a change", false, "no generator set: the caller gave none")
		return
	}
	r2, err := changed("37")
	if !sr.check("the stack renders with "+param+" = 37", err == nil, "%v", err) {
		return
	}
	d2, err := e.publish(ctx, r2, e.reg.key, nil)
	if !sr.check("the change is published", err == nil, "%v", err) {
		return
	}
	// Each host applies within an interval and its delay, plus the
	// apply's own time.
	period := time.Duration(p.IntervalMinutes+p.RandomizedDelayMinutes)*time.Minute + 90*time.Second
	began := time.Now()
	got := e.waitApplied(ctx, hosts, period, func(h string, a applyState) bool { return a.digest == d2[h] })
	took := time.Since(began)
	// The hosts whose timer this showed to fire: the steps after run
	// their pull service at once rather than wait for it again.
	timed := map[string]bool{}
	for _, h := range hosts {
		a := got[h]
		diff, err := e.sameFiles(ctx, r2, h)
		now, _ := e.hosts[h].Exec(ctx, "cat", "/proc/sys/net/ipv4/tcp_fin_timeout")
		timed[h] = sr.check(fmt.Sprintf("%s: applies the published change by its timer (every %d min + up to %d), and %s = 37 is in effect", h, p.IntervalMinutes, p.RandomizedDelayMinutes, param),
			a.digest == d2[h] && a.consecutive == 0 && a.generation > bootGen[h] && err == nil && diff == "" && strings.TrimSpace(now) == "37",
			"%s (want %s, a generation above %d) after %.0f s; %s = %s; %s", a, oci.ShortDigest(d2[h]), bootGen[h], took.Seconds(), param, strings.TrimSpace(now), firstNonEmpty(errText(err), diff))
	}
	// An artifact signed with another key, for one host: the host
	// refuses it, writes nothing and says so in its metrics.
	victim := hosts[0]
	before := got[victim]
	r3, err := changed("39")
	if err == nil {
		_, err = e.publish(ctx, r3, e.reg.other, []string{victim})
	}
	if !sr.check(victim+": an artifact signed with a key it does not trust is published for it", err == nil, "%v", err) {
		return
	}
	got, how := e.pullNow(ctx, []string{victim}, timed, period, func(_ string, a applyState) bool { return a.failures > before.failures })
	a := got[victim]
	diff, err := e.sameFiles(ctx, r2, victim)
	now, _ := e.hosts[victim].Exec(ctx, "cat", "/proc/sys/net/ipv4/tcp_fin_timeout")
	status, _ := e.hosts[victim].Exec(ctx, "systemctl", "show", "-p", "Result", pull.Unit(e.s)+".service")
	sr.check(victim+": refuses it when its pull service runs, writes nothing, and its metrics count the failure",
		a.failures > before.failures && a.consecutive >= 1 && a.digest == d2[victim] && err == nil && diff == "" && strings.TrimSpace(now) == "37",
		"%s; %s = %s; %s; %s; %s", a, param, strings.TrimSpace(now), strings.TrimSpace(status), firstNonEmpty(errText(err), firstNonEmpty(diff, "its files unchanged")), how[victim])
	// The stack's own artifacts again: every host goes back (a write:
	// its generation rises).
	gen := map[string]int{}
	for _, h := range hosts {
		a, _ := e.applyStateOf(ctx, h)
		gen[h] = a.generation
	}
	d4, err := e.publish(ctx, orig, e.reg.key, nil)
	if !sr.check("the stack as rendered is published again", err == nil, "%v", err) {
		return
	}
	back := func(h string, a applyState) bool {
		return a.digest == d4[h] && a.consecutive == 0 && a.generation > gen[h]
	}
	got, how = e.pullNow(ctx, hosts, timed, period, back)
	for _, h := range hosts {
		a := got[h]
		diff, err := e.sameFiles(ctx, orig, h)
		sr.check(fmt.Sprintf("%s: back to out/%s/hosts/%s/ when its pull service runs", h, e.s.Name, h), back(h, a) && err == nil && diff == "",
			"%s (want %s, a generation above %d); %s; %s", a, oci.ShortDigest(d4[h]), gen[h], firstNonEmpty(errText(err), firstNonEmpty(diff, "its files are the artifact's")), how[h])
	}
}

// pullNow runs the pull service at once on each of hosts whose timer
// the scenario has shown to fire (timed), rather than wait up to an
// interval for the timer again, then waits for done, up to 90 s. A host
// whose timer was not shown to fire is not started: it is left to its
// timer, up to period, as a host that does not pull by itself still
// fails and is not passed by a start of the test's. how says, for each
// host, which it was.
func (e *env) pullNow(ctx context.Context, hosts []string, timed map[string]bool, period time.Duration, done func(h string, a applyState) bool) (map[string]applyState, map[string]string) {
	how := map[string]string{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	wait := 90 * time.Second
	for _, h := range hosts {
		if !timed[h] {
			mu.Lock()
			how[h] = "its pull service not started: its timer was not shown to fire, so left to the timer"
			mu.Unlock()
			wait = period
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// systemctl start of a oneshot returns once it has run; with
			// a run of the timer's under way it waits for that one,
			// which may have read the registry before the publication:
			// then it starts a run of its own.
			note := e.startPull(ctx, h)
			if a, _ := e.applyStateOf(ctx, h); !done(h, a) {
				note += "; again: " + e.startPull(ctx, h)
			}
			mu.Lock()
			how[h] = "its pull service started at once: " + note
			mu.Unlock()
		}()
	}
	wg.Wait()
	return e.waitApplied(ctx, hosts, wait, done), how
}

// startPull runs host h's pull service (systemctl start, which returns
// when the oneshot is done) and says how it ended.
func (e *env) startPull(ctx context.Context, h string) string {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := e.hosts[h].Exec(cctx, "systemctl", "start", pull.Unit(e.s)+".service")
	if err != nil {
		return fmt.Sprintf("%v: %s", err, lastLines(strings.TrimSpace(out), 2))
	}
	return "ran"
}

// errDetail is the apply's own account when a host has not applied.
func errDetail(ctx context.Context, m *Machine, unit string, a applyState, raw string) string {
	if a.present && a.consecutive == 0 {
		return ""
	}
	j, _ := m.Exec(ctx, "journalctl", "-b", "--no-pager", "-n", "5", "-o", "cat", "-u", unit+".service")
	return "\n" + strings.TrimSpace(raw) + "\n" + strings.TrimSpace(j)
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
