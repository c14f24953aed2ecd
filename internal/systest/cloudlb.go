//go:build unix

package systest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// doLoadBalancer is what the stand-in reads of the rendered DigitalOcean
// load balancer (digitalocean/load-balancer.json).
type doLoadBalancer struct {
	Tag             string           `json:"tag"`
	ForwardingRules []forwardingRule `json:"forwarding_rules"`
	HealthCheck     struct {
		Protocol           string `json:"protocol"`
		Port               int    `json:"port"`
		Path               string `json:"path"`
		Interval           int    `json:"check_interval_seconds"`
		Timeout            int    `json:"response_timeout_seconds"`
		HealthyThreshold   int    `json:"healthy_threshold"`
		UnhealthyThreshold int    `json:"unhealthy_threshold"`
		// ProxyProtocol: whether health checks send the PROXY header
		// too; absent, they follow the balancer's setting.
		ProxyProtocol *bool `json:"proxy_protocol"`
	} `json:"health_check"`
	RedirectHTTPToHTTPS bool `json:"redirect_http_to_https"`
	ProxyProtocol       bool `json:"enable_proxy_protocol"`
}

// forwardingRule is one of the balancer's listeners.
type forwardingRule struct {
	EntryProtocol  string `json:"entry_protocol"`
	EntryPort      int    `json:"entry_port"`
	TargetProtocol string `json:"target_protocol"`
	TargetPort     int    `json:"target_port"`
	TLSPassthrough bool   `json:"tls_passthrough"`
}

// cloudLB stands in for the provider's load balancer in front of the app
// hosts: HAProxy (this machine's) in a namespace of its own on the test
// network, configured from the rendered specification — its forwarding
// rules, health check, thresholds and PROXY protocol — and sending to
// the hosts the balancer would (the Droplets of the stack's tag: its
// app hosts). It retries nothing, as a provider's balancer forwarding a
// request once does.
type cloudLB struct {
	spec    doLoadBalancer
	log     io.Writer
	started time.Time
	port    int // the entry port the clients use
	addr    netip.Addr
	ns      string
	dir     string
	socket  string
	cmd     *exec.Cmd
	done    chan struct{}
	// provider names what is stood in for; cert is the certificate
	// (with its key) of a listener that ends TLS.
	provider string
	cert     string
}

// terminates reports whether a forwarding rule ends TLS at the balancer.
func (lb *cloudLB) terminates() bool {
	return slices.ContainsFunc(lb.spec.ForwardingRules, func(r forwardingRule) bool {
		return r.EntryProtocol == "https" && r.TargetProtocol == "http" && !r.TLSPassthrough
	})
}

// cloudBalancer starts (once) the stand-in for the stack's provider
// balancer; nil when the stack has none that the test can stand in for.
func (e *env) cloudBalancer() (*cloudLB, error) {
	if e.clb != nil || e.s.Balancer.Kind != "cloud" {
		return e.clb, nil
	}
	var do, tg []byte
	for _, f := range e.st.Files {
		switch {
		case f.Host == "" && f.Path == "digitalocean/load-balancer.json":
			do = f.Content
		case f.Host == "" && f.Path == "aws/target-group.json":
			tg = f.Content
		}
	}
	lb := &cloudLB{dir: filepath.Join(e.opt.WorkDir, e.s.Name, "cloud-lb"), log: e.log, port: 80}
	if e.s.TLS.Mode != "" && e.s.TLS.Mode != "none" {
		lb.port = 443
	}
	var deviation string
	switch {
	case do != nil:
		if err := json.Unmarshal(do, &lb.spec); err != nil {
			return nil, fmt.Errorf("digitalocean/load-balancer.json: %w", err)
		}
		lb.provider = "DigitalOcean load balancer"
		deviation = fmt.Sprintf("configured from digitalocean/load-balancer.json (forwarding rules, health check, thresholds, PROXY protocol %v)", lb.spec.ProxyProtocol)
	case tg != nil:
		var g awsTargetGroup
		if err := json.Unmarshal(tg, &g); err != nil {
			return nil, fmt.Errorf("aws/target-group.json: %w", err)
		}
		spec, err := albSpec(e.s, g)
		if err != nil {
			return nil, err
		}
		lb.spec, lb.provider = spec, "Application Load Balancer"
		deviation = "in front of the target group of aws/target-group.json (its port, health check and thresholds), with one HTTPS listener ending TLS on a self-signed certificate for the ACM one"
	default:
		return nil, nil
	}
	haproxy, err := execLookPath("haproxy")
	if err != nil {
		return nil, fmt.Errorf("the stand-in for the %s is HAProxy: apt-get install haproxy", lb.provider)
	}
	if lb.addr, err = e.freeAddr(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(lb.dir, 0o755); err != nil {
		return nil, err
	}
	lb.socket = filepath.Join(lb.dir, "admin.sock")
	if lb.terminates() {
		lb.cert = filepath.Join(lb.dir, "cert.pem")
		key := filepath.Join(lb.dir, "key.pem")
		if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
			"-subj", "/CN="+e.s.Domain, "-addext", "subjectAltName=DNS:"+e.s.Domain, "-keyout", key, "-out", lb.cert+".crt").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("the %s stand-in's certificate: openssl: %v: %s", lb.provider, err, out)
		}
		crt, _ := os.ReadFile(lb.cert + ".crt")
		k, _ := os.ReadFile(key)
		if err := os.WriteFile(lb.cert, append(crt, k...), 0o600); err != nil {
			return nil, err
		}
	}
	cfg := lb.config(e)
	if err := os.WriteFile(filepath.Join(lb.dir, "haproxy.cfg"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	if lb.ns, _, err = e.fab.Attach("cloudlb", lb.addr); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(lb.dir, "haproxy.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", lb.ns, haproxy, "-db", "-f", filepath.Join(lb.dir, "haproxy.cfg"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	lb.cmd, lb.done, lb.started = cmd, make(chan struct{}), time.Now()
	done := lb.done
	go func() { cmd.Wait(); log.Close(); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if len(lb.spec.ForwardingRules) > 0 {
		if err := waitTCP(ctx, lb.ns, net.JoinHostPort(lb.addr.String(), strconv.Itoa(lb.spec.ForwardingRules[0].EntryPort))); err != nil {
			lb.stop()
			b, _ := os.ReadFile(filepath.Join(lb.dir, "haproxy.log"))
			return nil, fmt.Errorf("the load balancer stand-in did not start: %v\n%s", err, lastLines(string(b), 5))
		}
	}
	e.clb = lb
	e.deviate(fmt.Sprintf("the %s is stood in for by HAProxy at %s, %s; it retries no request", lb.provider, lb.addr, deviation))
	return lb, nil
}

// config renders the stand-in's haproxy.cfg.
func (lb *cloudLB) config(e *env) string {
	hc := lb.spec.HealthCheck
	var b strings.Builder
	fmt.Fprintf(&b, "global\n    stats socket %s mode 600 level admin\n    maxconn 4096\n", lb.socket)
	b.WriteString("defaults\n    timeout connect 5s\n    timeout client 60s\n    timeout server 60s\n    retries 0\n")
	server := fmt.Sprintf("check inter %ds fall %d rise %d", max(hc.Interval, 1), max(hc.UnhealthyThreshold, 1), max(hc.HealthyThreshold, 1))
	if hc.Port > 0 {
		server += fmt.Sprintf(" port %d", hc.Port)
	}
	if lb.spec.ProxyProtocol {
		// DigitalOcean sends PROXY protocol v1 on every connection to
		// the Droplets and, unless told otherwise, on its health checks.
		server += " send-proxy"
		if hc.ProxyProtocol == nil || *hc.ProxyProtocol {
			server += " check-send-proxy"
		}
	}
	for i, r := range lb.spec.ForwardingRules {
		mode := "http"
		if r.TLSPassthrough || r.EntryProtocol == "tcp" || r.EntryProtocol == "https" && r.TargetProtocol == "https" {
			mode = "tcp"
		}
		ssl := ""
		if r.EntryProtocol == "https" && r.TargetProtocol == "http" && !r.TLSPassthrough {
			ssl = " ssl crt " + lb.cert
		}
		fmt.Fprintf(&b, "frontend rule%d\n    mode %s\n    bind %s:%d%s\n", i, mode, lb.addr, r.EntryPort, ssl)
		if mode == "http" && r.EntryPort == 80 && lb.spec.RedirectHTTPToHTTPS {
			b.WriteString("    http-request redirect scheme https code 301\n")
		}
		fmt.Fprintf(&b, "    default_backend rule%d\n", i)
		fmt.Fprintf(&b, "backend rule%d\n    mode %s\n    balance roundrobin\n    timeout check %ds\n", i, mode, max(hc.Timeout, 1))
		if hc.Protocol == "http" || hc.Protocol == "https" {
			fmt.Fprintf(&b, "    option httpchk\n    http-check send meth GET uri %s ver HTTP/1.1 hdr Host %s\n    http-check expect status 200\n", cmpOr(hc.Path, "/"), e.s.Domain)
		}
		for _, h := range e.hostsWith("app") {
			fmt.Fprintf(&b, "    server %s %s:%d %s\n", h, e.addr(h), r.TargetPort, server)
		}
	}
	return b.String()
}

// reload rewrites the stand-in's configuration for the stack's app
// hosts now and reloads it (a new Droplet with the tag joins).
func (lb *cloudLB) reload(e *env) error {
	if err := os.WriteFile(filepath.Join(lb.dir, "haproxy.cfg"), []byte(lb.config(e)), 0o644); err != nil {
		return err
	}
	// haproxy -db runs in the foreground; a new process takes over the
	// listeners (-sf) and the old one finishes its connections.
	haproxy, err := execLookPath("haproxy")
	if err != nil {
		return err
	}
	old := lb.cmd
	oldDone := lb.done
	log, err := os.OpenFile(filepath.Join(lb.dir, "haproxy.log"), os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command("ip", "netns", "exec", lb.ns, haproxy, "-db", "-f", filepath.Join(lb.dir, "haproxy.cfg"), "-sf", strconv.Itoa(old.Process.Pid))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	lb.cmd, lb.done = cmd, make(chan struct{})
	done := lb.done
	go func() { cmd.Wait(); log.Close(); close(done) }()
	select {
	case <-oldDone:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-old.Process.Pid, syscall.SIGKILL)
	}
	return nil
}

// settle waits until the stand-in's servers can have reached full
// health: HAProxy starts a server UP but one failed check short of
// down, and only fall − 1 passed checks later (their first check comes
// up to an interval after the start) does it take fall failed ones to go
// down, as on a balancer that has run a while.
func (lb *cloudLB) settle(ctx context.Context) {
	hc := lb.spec.HealthCheck
	ready := lb.started.Add(time.Duration((max(hc.UnhealthyThreshold, 1)+max(hc.HealthyThreshold, 1))*max(hc.Interval, 1))*time.Second + time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(ready)):
	}
}

// backend is the stand-in's backend behind the entry port clients use.
func (lb *cloudLB) backend(port int) string {
	for i, r := range lb.spec.ForwardingRules {
		if r.EntryPort == port {
			return fmt.Sprintf("rule%d", i)
		}
	}
	return ""
}

// state is the stand-in's status of server in the backend clients use
// (the HTTPS rule when TLS is on, else HTTP).
func (lb *cloudLB) state(server string) []string {
	be := lb.backend(lb.port)
	c, err := net.Dial("unix", lb.socket)
	if err != nil {
		return nil
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintln(c, "show stat")
	buf := make([]byte, 64<<10)
	n, _ := readAll(c, buf)
	var out []string
	for _, l := range strings.Split(string(buf[:n]), "\n") {
		f := strings.Split(l, ",")
		if len(f) > 17 && f[1] == server && f[0] == be {
			out = append(out, f[17])
		}
	}
	return out
}

// watchUp is how long until server is UP (in rotation) again,
// for at most d; -1 when it did not come back.
func (lb *cloudLB) watchUp(ctx context.Context, server string, d time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		st := lb.state(server)
		if len(st) > 0 && !slices.ContainsFunc(st, func(s string) bool { return !strings.HasPrefix(s, "UP") }) {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return -1
}

// watchDown is how long the stand-in took to mark server down since it was
// asked, polling its admin socket for at most d; -1 when it did not.
func (lb *cloudLB) watchDown(ctx context.Context, server string, d time.Duration) time.Duration {
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		if slices.ContainsFunc(lb.state(server), func(s string) bool { return !strings.HasPrefix(s, "UP") }) {
			return time.Since(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return -1
}

func readAll(c net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := c.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (lb *cloudLB) stop() {
	if lb == nil || lb.cmd == nil || lb.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-lb.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-lb.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-lb.cmd.Process.Pid, syscall.SIGKILL)
		<-lb.done
	}
}

// freeAddr is the lowest address of the test network no host, client,
// monitoring host or virtual address uses.
func (e *env) freeAddr() (netip.Addr, error) {
	used := map[netip.Addr]bool{}
	for _, a := range e.addrs {
		used[a] = true
	}
	for _, a := range extraAddrs(e.s) {
		used[a] = true
	}
	for _, a := range e.clientSources {
		used[a] = true
	}
	if a, err := e.monitorAddr(); err == nil {
		used[a] = true
	}
	if e.clb != nil {
		used[e.clb.addr] = true
	}
	for a := e.fab.network.Masked().Addr().Next().Next(); e.fab.network.Contains(a); a = a.Next() {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address in %s", e.fab.network)
}
