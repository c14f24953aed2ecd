//go:build unix

package systest

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	neturl "net/url"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/celery"
	"github.com/hacompile/hacompile/generators/monitoring"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/generators/redisexporter"
	"github.com/hacompile/hacompile/internal/rules"
)

var execLookPath = exec.LookPath

// clientNS attaches (once) the namespace the test's clients run in, on
// the highest free address of the stack's network.
func (e *env) clientNS() (string, error) {
	if e.client != "" {
		return e.client, nil
	}
	used := map[netip.Addr]bool{}
	for _, a := range e.addrs {
		used[a] = true
	}
	for _, a := range extraAddrs(e.s) {
		used[a] = true
	}
	if a, err := netip.ParseAddr(monitoringAddress(e.s)); err == nil {
		used[a] = true
	}
	// The clients' addresses: the highest free ones of the network, up
	// to clientAddrs (clients behind a rate limit each use their own).
	p := e.fab.network
	var free []netip.Addr
	for a := lastAddr(p).Prev(); p.Contains(a) && len(free) < clientAddrs; a = a.Prev() {
		if !used[a] && a != p.Masked().Addr() {
			free = append(free, a)
		}
	}
	if len(free) == 0 {
		return "", fmt.Errorf("no free address for the test client in %s", p)
	}
	ns, _, err := e.fab.Attach("client", free...)
	if err != nil {
		return "", err
	}
	if e.rip != nil {
		if err := e.rip.route(e, ns); err != nil {
			return "", err
		}
	}
	e.client, e.clientSources = ns, free
	return ns, nil
}

// clientAddrs is how many addresses the test's clients have.
const clientAddrs = 64

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// getUntil repeats get until ok accepts the answer or d passes: a
// service just (re)started, or an address just moved, gets a moment.
func (e *env) getUntil(ctx context.Context, addr, url string, d time.Duration, ok func(int, http.Header) bool) (int, string, http.Header, error) {
	deadline := time.Now().Add(d)
	for {
		code, body, hdr, err := e.get(ctx, addr, url)
		if (err == nil && ok(code, hdr)) || time.Now().After(deadline) || ctx.Err() != nil {
			return code, body, hdr, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// get makes one request from the client namespace to addr (host:port)
// for url, whose host name is only the Host header and SNI.
func (e *env) get(ctx context.Context, addr, url string) (int, string, http.Header, error) {
	ns, err := e.clientNS()
	if err != nil {
		return 0, "", nil, err
	}
	d := &nsDialer{ns: ns, d: net.Dialer{Timeout: 3 * time.Second}}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the test's own certificate
	}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), resp.Header, nil
}

// boot is scenario 1: every host comes up from its cloud-init, its
// units run once the secrets the runbook names are provisioned, and
// every health path answers through every balancer.
func (e *env) boot(ctx context.Context, sr *ScenarioReport) {
	e.hostsUp(ctx, sr, e.s.HostNames(), true)
	if _, err := e.cloudBalancer(); err != nil {
		sr.check("the provider's load balancer is stood in for", false, "%v", err)
	}
	e.healthChecks(ctx, sr)
	e.routing(ctx, sr)
	e.dataServices(ctx, sr)
}

// hostsUp checks that hosts booted: cloud-init finished, (on a first
// boot from the host's own cloud-init) every unit was started, and once
// secrets are provisioned every service of the stack is active and none
// failed.
func (e *env) hostsUp(ctx context.Context, sr *ScenarioReport, names []string, firstBoot bool) {
	type hostState struct {
		system, cloud string
		cloudOK       bool
	}
	states := make([]hostState, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := e.hosts[name]
			cctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
			defer cancel()
			// cloud-init's final stage is the boot script; wait for it,
			// then for systemd's view of the whole boot.
			var out string
			var err error
			for cctx.Err() == nil {
				out, err = m.Exec(cctx, "cloud-init", "status", "--wait", "--long")
				if !strings.Contains(out, "not running") && !strings.Contains(out, "Failed to connect") {
					break
				}
				time.Sleep(time.Second)
			}
			states[i].cloud = strings.TrimSpace(out)
			states[i].cloudOK = err == nil && strings.Contains(out, "status: done")
			sys, _ := m.Exec(cctx, "systemctl", "is-system-running", "--wait")
			states[i].system = strings.TrimSpace(sys)
		}()
	}
	wg.Wait()
	for i, name := range names {
		st := states[i]
		detail := "status: done"
		if !st.cloudOK {
			detail = cloudErrors(st.cloud)
			if log, _ := e.hosts[name].Sh(ctx, "grep -E 'WARNING|ERROR|Traceback|Failed' /var/log/cloud-init-output.log | tail -5"); log != "" {
				detail += "\n" + strings.TrimSpace(log)
			}
		}
		sr.check(name+": cloud-init finished its boot script", st.cloudOK, "%s", detail)
	}
	// First boot must have started every unit, or tried to: one that
	// waits for a secret may have failed, but one never started would
	// not serve until someone starts it by hand.
	for _, name := range names {
		if !firstBoot {
			break
		}
		units := e.services(name)
		out, _ := e.hosts[name].Exec(ctx, append([]string{"systemctl", "show", "--property=Id,ActiveState,ExecMainStartTimestampMonotonic", "--"}, units...)...)
		var never []string
		for _, block := range strings.Split(strings.TrimSpace(out), "\n\n") {
			props := map[string]string{}
			for _, l := range strings.Split(block, "\n") {
				k, v, _ := strings.Cut(l, "=")
				props[k] = v
			}
			if props["ActiveState"] == "inactive" && props["ExecMainStartTimestampMonotonic"] == "0" {
				never = append(never, props["Id"])
			}
		}
		sr.check(name+": first boot started every unit", len(never) == 0, "never started: %s", strings.Join(never, ", "))
	}
	// Secrets, as the runbook says to provision them, then the units
	// that read them are (re)started. Nobody provisions an instance of
	// an Auto Scaling group: it fetches its own.
	for _, name := range names {
		if slices.Contains(e.instances, name) {
			continue
		}
		if err := e.provisionSecrets(ctx, name); err != nil {
			sr.check(name+": secrets provisioned", false, "%v", err)
		} else {
			e.mu.Lock()
			e.provisioned[name] = true
			e.mu.Unlock()
		}
	}
	for i, name := range names {
		m := e.hosts[name]
		units := e.services(name)
		out, err := m.Exec(ctx, append([]string{"systemctl", "is-active"}, units...)...)
		var down []string
		for j, st := range strings.Fields(out) {
			if st != "active" && j < len(units) {
				down = append(down, units[j]+" "+st)
			}
		}
		detail := strings.Join(units, ", ")
		if err != nil || len(down) > 0 {
			detail = "not active: " + strings.Join(down, ", ")
			for _, d := range down {
				u, _, _ := strings.Cut(d, " ")
				if j, _ := m.Exec(ctx, "journalctl", "-b", "--no-pager", "-n", "4", "-o", "cat", "_SYSTEMD_UNIT="+u); j != "" {
					detail += "\n" + strings.TrimSpace(j)
				}
			}
		}
		sr.check(name+": its services are active", err == nil && len(down) == 0, "%s", detail)
		// A unit the stack owns must not fail; one it does not own (a
		// distribution unit a container cannot run) is listed, not held
		// against the stack.
		out, _ = m.Exec(ctx, "systemctl", "list-units", "--failed", "--plain", "--no-legend", "--no-pager")
		var owned, other []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) == 0 {
				continue
			}
			if slices.Contains(units, f[0]) || strings.HasPrefix(f[0], "cloud-") {
				owned = append(owned, f[0])
			} else {
				other = append(other, f[0])
			}
		}
		e.mu.Lock()
		e.foreignFailed[name] = other
		e.mu.Unlock()
		detail = "system: " + states[i].system
		if len(other) > 0 {
			detail += "; failed, not the stack's: " + strings.Join(other, ", ")
		}
		if len(owned) > 0 {
			detail = "failed: " + strings.Join(owned, ", ") + "; " + detail
		}
		sr.check(name+": no unit of the stack failed", len(owned) == 0, "%s", detail)
		e.reservedPorts(ctx, sr, name)
	}
}

// reservedPorts checks that every TCP port a service listens on inside
// the host's ephemeral range is in net.ipv4.ip_local_reserved_ports, as
// the kernel has them: otherwise an outgoing connection may take the
// port while its service restarts, which then cannot bind it.
func (e *env) reservedPorts(ctx context.Context, sr *ScenarioReport, name string) {
	out, err := e.hosts[name].Sh(ctx, "cat /proc/sys/net/ipv4/ip_local_port_range /proc/sys/net/ipv4/ip_local_reserved_ports; ss -Htlnp")
	lines := strings.Split(out, "\n")
	if err != nil || len(lines) < 2 {
		sr.check(name+": every listening port is reserved from the ephemeral range", false, "%v %s", err, out)
		return
	}
	var lo, hi int
	fmt.Sscan(lines[0], &lo, &hi)
	reserved := map[int]bool{}
	for r := range strings.SplitSeq(strings.TrimSpace(lines[1]), ",") {
		a, b, isRange := strings.Cut(r, "-")
		x, _ := strconv.Atoi(a)
		y := x
		if isRange {
			y, _ = strconv.Atoi(b)
		}
		for p := x; p > 0 && p <= y; p++ {
			reserved[p] = true
		}
	}
	var bad []string
	n := 0
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		if len(f) < 4 {
			continue
		}
		i := strings.LastIndexByte(f[3], ':')
		p, err := strconv.Atoi(f[3][i+1:])
		if err != nil || p < lo || p > hi {
			continue
		}
		if e.rip != nil && f[3] == "127.0.0.1:"+standInAPIPort || len(e.instances) > 0 && f[3] == "127.0.0.1:"+awsAPIPort {
			continue // the test's own stand-in of the provider's API
		}
		n++
		if !reserved[p] {
			bad = append(bad, f[3]+" "+strings.Join(f[5:], " "))
		}
	}
	sr.check(name+": every listening port is reserved from the ephemeral range", len(bad) == 0,
		"%s", firstNonEmpty(strings.Join(bad, "; "), fmt.Sprintf("%d listening port(s) in %d-%d, reserved: %s", n, lo, hi, strings.TrimSpace(lines[1]))))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// cloudErrors keeps the lines of cloud-init status --long that say
// what went wrong.
func cloudErrors(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, "status:") || strings.Contains(l, "rror") || strings.Contains(l, "detail") || strings.HasPrefix(strings.TrimSpace(l), "-") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) > 12 {
		keep = keep[:12]
	}
	return strings.Join(keep, "\n")
}

var (
	envFileRe  = regexp.MustCompile(`(?m)^EnvironmentFile=-?(/\S+)$`)
	envVarRe   = regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)\}`)
	pwdFileRe  = regexp.MustCompile(`(?m)^[A-Z0-9_]*(?:PASSWORD|TOKEN)_FILE=(/\S+)$`)
	aclFileRe  = regexp.MustCompile(`(?m)^aclfile (/\S+)$`)
	secretTrue = "hacompile-test-"
)

// provisionSecrets writes throwaway secrets where the rendered files
// expect them and the runbook tells an operator to put them: the
// environment files units require (with every ${VAR} the host's files
// reference) and the password files the settings name, then restarts
// the units that read them.
func (e *env) provisionSecrets(ctx context.Context, host string) error {
	m := e.hosts[host]
	envFiles := map[string]bool{}
	pwFiles := map[string]bool{}
	// The app whose settings name a password file owns it.
	owners := map[string]string{}
	for _, f := range e.hostFiles(host, "") {
		if strings.HasPrefix(f.Path, "etc/systemd/") {
			for _, mm := range envFileRe.FindAllSubmatch(f.Content, -1) {
				if _, rendered := e.file(host, string(mm[1])); !rendered {
					envFiles[string(mm[1])] = true
				}
			}
		}
		// Password and token files the settings or scripts name: the
		// app's own readable by the app's user, others by root.
		for _, mm := range pwdFileRe.FindAllSubmatch(f.Content, -1) {
			pwFiles[string(mm[1])] = pwFiles[string(mm[1])] || strings.HasSuffix(f.Path, ".env")
			for _, a := range e.s.Apps {
				if f.Path == appenv.Path(a) {
					owners[string(mm[1])] = a.User
				}
			}
		}
	}
	var script strings.Builder
	for _, p := range slices.Sorted(mapKeys(envFiles)) {
		fmt.Fprintf(&script, "[ -s %s ] || { mkdir -p \"$(dirname %s)\"; printf '%%s' '%s' > %s; chmod 600 %s; }\n", p, p, e.envFileBody(host), p, p)
	}
	// Redis reads its users from an ACL file the runbook has the
	// operator write, with the password the app's file holds.
	for _, f := range e.hostFiles(host, "etc/redis/") {
		if mm := aclFileRe.FindSubmatch(f.Content); mm != nil {
			sum := sha256.Sum256([]byte(e.secret()))
			fmt.Fprintf(&script, "[ -s %s ] || { printf 'user default on #%x ~* &* +@all\\n' | install -m 0640 -o root -g redis /dev/stdin %s; }\n", mm[1], sum, mm[1])
		}
	}
	// redis_exporter reads its password from a JSON map of Redis
	// address to password, as its file's comment tells the operator.
	if len(e.hostFiles(host, strings.TrimPrefix(redisexporter.ArgsPath, "/"))) > 0 {
		pw := redisexporter.PasswordFile
		fmt.Fprintf(&script, "[ -s %s ] || { printf '{\"redis://127.0.0.1:6379\":\"%s\"}\\n' | install -D -m 0640 -o root -g prometheus /dev/stdin %s; }\n", pw, e.secret(), pw)
	}
	for _, p := range slices.Sorted(mapKeys(pwFiles)) {
		owner := "root"
		if pwFiles[p] {
			owner = cmp.Or(owners[p], e.s.App.User)
		}
		fmt.Fprintf(&script, "[ -s %s ] || { printf '%%s\\n' %s | install -D -m 0600 -o %s -g root /dev/stdin %s; }\n", p, e.secret(), owner, p)
	}
	// PgBouncer's auth file, from the app's password file, with the
	// command pgbouncer.ini gives (Debian ships the file empty).
	if len(e.hostFiles(host, pgbouncer.IniPath)) > 0 {
		fmt.Fprintf(&script, "[ -s %s ] || { %s; }\n", pgbouncer.UserlistPath, pgbouncer.ProvisionCommand(e.s, e.s.Hosts[host]))
	}
	if script.Len() == 0 {
		return nil
	}
	if out, err := m.Sh(ctx, script.String()); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	// The units were started (or refused to start) before the secrets
	// existed: start them now, as the runbook's provisioning step does.
	units := e.services(host)
	m.Exec(ctx, append([]string{"systemctl", "reset-failed"}, units...)...)
	if out, err := m.Exec(ctx, append([]string{"systemctl", "restart"}, units...)...); err != nil {
		return fmt.Errorf("systemctl restart %s: %v: %s", strings.Join(units, " "), err, out)
	}
	return nil
}

// envFileBody is what the test provisions in an environment file a
// host's unit requires: every ${VAR} the host's files reference, each
// the run's secret.
func (e *env) envFileBody(host string) string {
	var vars []string
	for _, f := range e.hostFiles(host, "") {
		for _, mm := range envVarRe.FindAllSubmatch(f.Content, -1) {
			vars = append(vars, string(mm[1]))
		}
	}
	slices.Sort(vars)
	vars = slices.Compact(vars)
	var body strings.Builder
	body.WriteString("# hacompile test: throwaway secrets\n")
	for _, v := range vars {
		fmt.Fprintf(&body, "%s=%s\n", v, e.secret())
	}
	return body.String()
}

// secret is the run's one throwaway secret: every password of the
// stack is this, so the app's copy of a password matches the server's.
func (e *env) secret() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.pw == "" {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		e.pw = secretTrue + hex.EncodeToString(b)
	}
	return e.pw
}

// services are the units a host runs for the stack: its rendered
// services and those its boot script enables (the daemons its
// configuration belongs to), timers standing for the services they start.
func (e *env) services(host string) []string {
	units := e.units(host)
	for _, mm := range enableRe.FindAllSubmatch(e.st.UserData[host], -1) {
		u := string(mm[1])
		if !strings.Contains(u, ".") {
			u += ".service"
		}
		units = append(units, u)
	}
	slices.Sort(units)
	units = slices.Compact(units)
	return slices.DeleteFunc(units, func(u string) bool {
		t := strings.TrimSuffix(u, ".service") + ".timer"
		return t != u && slices.Contains(units, t)
	})
}

var enableRe = regexp.MustCompile(`systemctl enable (?:--now )?([A-Za-z0-9@._-]+)`)

// entry is how clients reach the stack: an address and port for HTTPS
// and for HTTP, and whether TLS is spoken there.
type entry struct {
	host  string // the host behind it, or "" for a shared address
	addr  string // IP
	https bool
	cloud bool // the stand-in for the provider's balancer
	// httpsOnly: the balancer's listener ends TLS and has no HTTP
	// listener the stack renders (an ALB's listeners are the operator's).
	httpsOnly bool
}

// entries are the stack's front doors: each balancer host, or each app
// host where a provider's balancer (not a host of the stack) is in
// front.
func (e *env) entries() []entry {
	var out []entry
	if vip, ok := virtualAddr(e.s); ok {
		tlsOn := e.s.TLS.Mode != "" && e.s.TLS.Mode != "none"
		out = append(out, entry{host: "virtual address " + vip.String(), addr: vip.String(), https: tlsOn})
	}
	lbs := e.hostsWith("lb")
	tlsOn := e.s.TLS.Mode != "" && e.s.TLS.Mode != "none"
	if len(lbs) > 0 {
		for _, h := range lbs {
			out = append(out, entry{host: h, addr: e.addr(h), https: tlsOn})
		}
		return out
	}
	if e.clb != nil {
		out = append(out, entry{host: "load balancer (stand-in)", addr: e.clb.addr.String(), https: tlsOn && (e.s.TLS.Terminate == "app" || e.clb.terminates()), cloud: true, httpsOnly: e.clb.terminates()})
		if e.s.ProxyProtocol() {
			// The app hosts' listeners take the balancer's connections
			// only (each begins with its PROXY header).
			return out
		}
	}
	for _, h := range e.hostsWith("app") {
		out = append(out, entry{host: h, addr: e.addr(h), https: tlsOn && e.s.TLS.Terminate == "app"})
	}
	return out
}

func (e *env) appPort() int {
	if e.s.App.HTTPPort > 0 {
		return e.s.App.HTTPPort
	}
	return 80
}

// healthChecks: the health path through every front door, the redirect
// to HTTPS, and the ACME path served rather than redirected.
func (e *env) healthChecks(ctx context.Context, sr *ScenarioReport) {
	hp := e.s.Balancer.Health.Path
	if hp == "" {
		hp = "/"
	}
	for _, en := range e.entries() {
		port := e.appPort()
		if len(e.hostsWith("lb")) > 0 || en.cloud {
			port = 80
		}
		httpAddr := net.JoinHostPort(en.addr, strconv.Itoa(port))
		if en.https {
			url := "https://" + e.s.Domain + hp
			code, body, _, err := e.getUntil(ctx, net.JoinHostPort(en.addr, "443"), url, 15*time.Second, func(c int, _ http.Header) bool { return c == 200 })
			sr.check(fmt.Sprintf("%s: GET %s answers 200", en.host, url), err == nil && code == 200, "%s", describe(code, body, err))
			if en.httpsOnly {
				continue
			}
			code, _, hdr, err := e.getUntil(ctx, httpAddr, "http://"+e.s.Domain+"/", 5*time.Second, func(c int, _ http.Header) bool { return c == 301 || c == 308 })
			loc := ""
			if hdr != nil {
				loc = hdr.Get("Location")
			}
			sr.check(fmt.Sprintf("%s: http:// redirects to https://", en.host), err == nil && (code == 301 || code == 308) && strings.HasPrefix(loc, "https://"), "%s → %s", describe(code, "", err), loc)
			code, _, _, err = e.get(ctx, httpAddr, "http://"+e.s.Domain+"/.well-known/acme-challenge/hacompile-test")
			sr.check(fmt.Sprintf("%s: the ACME challenge path is served over HTTP", en.host), err == nil && code != 301 && code != 308 && code != 0, "%s", describe(code, "", err))
		} else {
			url := "http://" + e.s.Domain + hp
			code, body, _, err := e.getUntil(ctx, httpAddr, url, 15*time.Second, func(c int, _ http.Header) bool { return c == 200 })
			sr.check(fmt.Sprintf("%s: GET %s answers 200", en.host, url), err == nil && code == 200, "%s", describe(code, body, err))
		}
	}
}

func describe(code int, body string, err error) string {
	if err != nil {
		return err.Error()
	}
	if len(body) > 80 {
		body = body[:80] + "…"
	}
	if body != "" {
		return fmt.Sprintf("%d %s", code, body)
	}
	return strconv.Itoa(code)
}

// brokerConsumed checks, when the stack runs its own broker, that the
// Celery workers consume from it with the app's settings: every worker
// answers a ping sent through the broker, and a task sent from a worker
// host as the app's user is run by a worker.
func (e *env) brokerConsumed(ctx context.Context, sr *ScenarioReport) {
	w, q := e.s.Workers, e.s.Queue
	workers := e.hostsWith("worker")
	if w == nil || q == nil || q.Managed || len(workers) == 0 {
		return
	}
	a := e.s.App
	send := e.taskSender()
	// Workers reconnect with a backoff after the broker's restart at
	// provisioning: wait until the broker counts a consumer per worker on
	// the default queue.
	e.waitConsumers(ctx, len(workers), 60*time.Second)
	// Batches of eight tasks: the broker hands them to the workers in
	// turn, so each worker runs some.
	const n = 8
	var ids []string
	ranBy := map[string]string{} // task id → worker host
	idleWorkers := func() []string {
		var idle []string
		for _, h := range workers {
			if !slices.Contains(slices.Collect(maps.Values(ranBy)), h) {
				idle = append(idle, h)
			}
		}
		return idle
	}
	var out string
	var err error
	for batch := 0; batch < 4 && err == nil && (batch == 0 || len(idleWorkers()) > 0); batch++ {
		out, err = e.hosts[workers[0]].Sh(ctx, send(n))
		sent := strings.Fields(out)
		ids = append(ids, sent...)
		for end := time.Now().Add(30 * time.Second); err == nil && len(ranBy) < len(ids) && time.Now().Before(end); time.Sleep(time.Second) {
			for _, h := range workers {
				j, _ := e.hosts[h].Exec(ctx, "journalctl", "--no-pager", "-o", "cat", "-u", celery.WorkerUnit(&a))
				succeeded(j, ids, ranBy, h)
			}
		}
	}
	idle := idleWorkers()
	sr.check(fmt.Sprintf("every Celery worker runs tasks sent as the app's user through the %s broker at %s", q.Engine, e.s.QueueEndpoint()),
		err == nil && len(ids) > 0 && len(ranBy) == len(ids) && len(idle) == 0,
		"%d of %d tasks run; workers that ran none: %v; %v %s", len(ranBy), len(ids), idle, err, lastLines(strings.TrimSpace(out), 3))
	// The runbook's first check of a queue that grows (the alerts'
	// celery inspect, run as the worker unit runs celery): every
	// worker answers it.
	argv := monitoring.CeleryInspect(e.s)
	out, err = e.hosts[workers[0]].Exec(ctx, argv...)
	// Its last line counts the workers that answered: "2 nodes online."
	online := fmt.Sprintf("%d nodes online.", len(workers))
	if len(workers) == 1 {
		online = "1 node online."
	}
	sr.check(fmt.Sprintf("the runbook's celery inspect active (%s) answers from every worker", strings.Join(argv[:2], " ")+" … "+strings.Join(argv[len(argv)-4:], " ")),
		err == nil && slices.Contains(strings.Split(strings.TrimSpace(out), "\n"), online),
		"%v %s", err, lastLines(strings.TrimSpace(out), 4))
}

// taskSender is the command that sends n of the stand-in app's ping
// tasks as the app's user with its settings, from a worker host, and
// prints their ids.
func (e *env) taskSender() func(n int) string {
	a, w := e.s.App, e.s.Workers
	py := "python3"
	if a.Virtualenv != "" {
		py = path.Join(a.Virtualenv, "bin/python3")
	}
	mod, _, _ := strings.Cut(w.App, ":")
	prefix := fmt.Sprintf("set -a; . /%s; set +a; cd %s && exec runuser -u %s -- %s ", appenv.Path(&a), a.WorkingDir, a.User, py)
	return func(n int) string {
		return prefix + "-c 'import " + mod + ".celery as c\nfor _ in range(" + strconv.Itoa(n) + "): print(c.ping.delay().id)'"
	}
}

// standInQueue is the queue the stand-in app's tasks go to: Celery's
// default.
const standInQueue = "celery"

// waitConsumers waits up to d until the stack's own RabbitMQ counts at
// least n consumers of the queue the stand-in app's tasks go to, and
// reports whether it did (true at once without such a broker).
func (e *env) waitConsumers(ctx context.Context, n int, d time.Duration) bool {
	q, qh := e.s.Queue, e.s.QueueHosts()
	if q == nil || q.Engine != "rabbitmq" || len(qh) == 0 {
		return true
	}
	for end := time.Now().Add(d); ; time.Sleep(time.Second) {
		if got, ok := e.queueStats(ctx, "consumers"); ok && got[0] >= n {
			return true
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return false
		}
	}
}

// queueStats reads the columns cols (rabbitmqctl list_queues' names:
// consumers, messages_unacknowledged, …) of the queue the stand-in app's
// tasks go to on the stack's own RabbitMQ; ok is false when the queue
// is not listed or a value is not a number.
func (e *env) queueStats(ctx context.Context, cols ...string) (vals []int, ok bool) {
	out, _ := e.hosts[e.s.QueueHosts()[0].Name].Exec(ctx, append([]string{"rabbitmqctl", "-q", "list_queues", "-p", e.s.Queue.VHost, "name"}, cols...)...)
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 1+len(cols) || f[0] != standInQueue {
			continue
		}
		for _, v := range f[1:] {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, false
			}
			vals = append(vals, n)
		}
		return vals, true
	}
	return nil, false
}

// succeeded records in into, as run on host, each of ids that host's
// worker journal j says succeeded.
func succeeded(j string, ids []string, into map[string]string, host string) {
	for _, id := range ids {
		if strings.Contains(j, "["+id+"] succeeded") {
			into[id] = host
		}
	}
}

// redisURLRe finds the Redis URLs an app's settings name, with the
// variable that holds their password file.
var redisURLRe = regexp.MustCompile(`(?m)^([A-Z]+)_URL=(rediss?://[^\s]+)$`)

// dataServices checks that the data services the stack runs itself
// accept the app's own connection settings: on every host with the
// app's settings, as the app's user, each Redis URL whose host is a host
// of the stack answers PING with the password from its file.
func (e *env) dataServices(ctx context.Context, sr *ScenarioReport) {
	e.brokerConsumed(ctx, sr)
	hosts := map[string]bool{}
	for _, a := range e.addrs {
		hosts[a.String()] = true
	}
	for _, name := range e.s.HostNames() {
		for _, f := range e.hostFiles(name, "") {
			if !strings.HasSuffix(f.Path, "settings.env") {
				continue
			}
			for _, mm := range redisURLRe.FindAllSubmatch(f.Content, -1) {
				prefix, url := string(mm[1]), string(mm[2])
				u, err := neturl.Parse(url)
				if err != nil || !hosts[u.Hostname()] {
					continue // a managed service, outside the stack
				}
				script := fmt.Sprintf(`set -a; . /%s; set +a
exec runuser -u %s -- python3 -c '
import os, redis
pw_file = os.environ.get("%s_PASSWORD_FILE")
pw = open(pw_file).read().strip() if pw_file else None
print(redis.Redis.from_url(os.environ["%s_URL"], password=pw, socket_timeout=5).ping())'`, f.Path, e.s.App.User, prefix, prefix)
				out, err := e.hosts[name].Sh(ctx, script)
				ok := err == nil && strings.TrimSpace(out) == "True"
				sr.check(fmt.Sprintf("%s: %s_URL (%s) answers the app's user with its password", name, prefix, u.Host), ok, "%s", lastLines(strings.TrimSpace(out), 3))
			}
		}
		// The host's PgBouncer takes the app's settings and password
		// (its auth file provisioned as the ini says). The primary is
		// outside the stack, so what is asked is PgBouncer's own view:
		// the app's database, at the primary.
		// With several apps, each app's pool on the host, by its own
		// settings and user.
		if len(e.hostFiles(name, pgbouncer.IniPath)) > 0 {
			for _, pl := range rules.PoolerPools(e.s, e.s.Hosts[name]) {
				script := fmt.Sprintf(`set -a; . /%s; set +a
exec runuser -u %s -- sh -c 'PGPASSWORD="$(cat "$DATABASE_PASSWORD_FILE")" exec psql -X -At -d "host=$DATABASE_HOST port=$DATABASE_PORT user=$DATABASE_USER dbname=pgbouncer sslmode=$DATABASE_SSLMODE connect_timeout=5" -c "SHOW DATABASES"'`,
					appenv.Path(pl.App), pl.App.User)
				out, err := e.hosts[name].Sh(ctx, script)
				db := e.s.Database
				ok := err == nil && strings.Contains("\n"+out, fmt.Sprintf("\n%s|%s|%d|%s|", pl.Alias, db.Host, db.Port, db.Name))
				sr.check(fmt.Sprintf("%s: PgBouncer at DATABASE_HOST:DATABASE_PORT (%s:%d) takes %s's user with its password and serves %s from %s:%d as %s", name, pgbouncer.Address, db.Pooler.Port, pl.App.Name, db.Name, db.Host, db.Port, pl.Alias), ok,
					"%s", lastLines(strings.TrimSpace(out), 3))
				if pl.ReplicaAlias == "" {
					continue
				}
				// The read pool: the database the app's
				// DATABASE_REPLICA_URLS names, served from the replicas.
				script = fmt.Sprintf(`set -a; . /%s; set +a; printf '%%s\n' "$DATABASE_REPLICA_URLS"`, appenv.Path(pl.App))
				urls, uerr := e.hosts[name].Sh(ctx, script)
				replicas := strings.Join(db.Replicas, ",")
				ok = err == nil && uerr == nil && strings.Contains("\n"+out, fmt.Sprintf("\n%s|%s|%d|%s|", pl.ReplicaAlias, replicas, db.Port, db.Name)) &&
					strings.HasPrefix(strings.TrimSpace(urls), fmt.Sprintf("postgresql://%s@%s:%d/%s?", db.User, pgbouncer.Address, db.Pooler.Port, pl.ReplicaAlias))
				sr.check(fmt.Sprintf("%s: %s's DATABASE_REPLICA_URLS names PgBouncer's read pool %s, served from the replicas %s:%d", name, pl.App.Name, pl.ReplicaAlias, replicas, db.Port), ok,
					"%s", lastLines(strings.TrimSpace(urls+"\n"+out), 4))
			}
		}
	}
}
