package haproxy

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/generators/tlsprofile"
	"github.com/hacompile/hacompile/schema"
)

// writer builds an HAProxy configuration: section headers at the left
// margin, keywords indented under them. Values that come from the stack
// go through v, which quotes them and keeps the first error.
type writer struct {
	b   strings.Builder
	err error
}

func (w *writer) raw(s string) { w.b.WriteString(s) }

// top writes comment lines at the left margin.
func (w *writer) top(lines ...string) {
	for _, l := range lines {
		if l == "" {
			w.b.WriteString("#\n")
			continue
		}
		w.b.WriteString("# " + l + "\n")
	}
}

// section starts a section after a blank line.
func (w *writer) section(words ...string) {
	w.b.WriteString("\n" + strings.Join(words, " ") + "\n")
}

// kw writes one indented keyword line.
func (w *writer) kw(words ...string) {
	w.b.WriteString("    " + strings.Join(words, " ") + "\n")
}

// note writes indented comment lines.
func (w *writer) note(lines ...string) {
	for _, l := range lines {
		w.b.WriteString("    # " + l + "\n")
	}
}

// v returns s as one configuration word.
func (w *writer) v(s string) string {
	q, err := word(s)
	if err != nil && w.err == nil {
		w.err = err
	}
	return q
}

func secs(n int) string { return artifact.Seconds(n) }

// millis is a duration as HAProxy reads it: "5s" when whole seconds (as
// before sub-second timeouts existed), else "500ms".
func millis(m schema.Millis) string {
	if n, ok := m.Seconds(); ok {
		return secs(n)
	}
	return strconv.Itoa(int(m)) + "ms"
}

// somaxconn is the stack's net.core.somaxconn, when it sets a number.
func somaxconn(s *schema.Stack) (int, bool) {
	v, ok := s.Tuning.Sysctl["net.core.somaxconn"]
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(string(v))
	return n, err == nil
}

// isLoopback reports whether an IPv4 address is in 127.0.0.0/8.
func isLoopback(addr string) bool { return strings.HasPrefix(addr, "127.") }

// config renders etc/haproxy/haproxy.cfg.
func config(s *schema.Stack, h *schema.Host, opt artifact.Options) ([]byte, error) {
	w := &writer{}
	b := &s.Balancer
	apps := s.HostsWithRole("app")
	var names []string
	for _, h := range apps {
		names = append(names, h.Name)
	}

	w.raw(artifact.Header("#", s))
	rel := osrelease.MustLookup(s.OS)
	// Runs of hosts are listed by their ends (app1..app1000): on a large
	// fleet the list stays one short line, which a host added or removed
	// changes only at an end. In ASCII, as the rest of the file: cloud-init
	// carries a file with other bytes base64-encoded, unreadable in a diff.
	if s.MultiApp() {
		var as []string
		for _, a := range s.Apps {
			as = append(as, a.Name)
		}
		w.top("", fmt.Sprintf("HAProxy %s on %s routing the apps %s over %s.", rel.HAProxyVersionMM(), rel.Pretty, strings.Join(as, ", "), strings.ReplaceAll(artifact.CompactNames(names), "…", "..")))
	} else {
		w.top("", fmt.Sprintf("HAProxy %s on %s balancing %s over %s.", rel.HAProxyVersionMM(), rel.Pretty, s.Domain, strings.ReplaceAll(artifact.CompactNames(names), "…", "..")))
	}
	switch {
	case terminatesTLS(s):
		w.top("HTTPS terminates here; port 80 redirects to it.")
	case passesTLS(s):
		w.top("HTTPS is passed through to the app hosts' nginx, which terminates it.")
	default:
		w.top("Plain HTTP only (tls.mode \"none\").")
	}
	w.top("Debian's haproxy.service checks this file (haproxy -c) on every reload",
		"before it signals the master, so a broken file never replaces a running one.")

	if err := global(w, s, opt); err != nil {
		return nil, err
	}

	w.section("defaults")
	w.kw("mode", "http")
	w.kw("log", "global")
	w.kw("option", "httplog")
	w.kw("option", "dontlognull")
	w.note("X-Forwarded-For: the client's address, for the app hosts' nginx,",
		"which trusts it from the balancer's address.")
	w.kw("option", "forwardfor")
	w.note("The last retry of a failed connection goes to another server.")
	w.kw("option", "redispatch")
	w.kw("retries", fmt.Sprint(b.Retries))
	if n, ok := somaxconn(s); ok && n < b.MaxConn {
		w.note("Connections waiting to be accepted, per frontend: by default maxconn, but the kernel",
			fmt.Sprintf("caps every listen backlog at net.core.somaxconn (%d), so say so. It queues", n),
			"connections not yet accepted, not connections served: maxconn still applies.")
		w.kw("backlog", fmt.Sprint(n))
	}
	timeouts(w, s, true)

	frontendHTTP(w, s)
	if terminatesTLS(s) {
		frontendHTTPS(w, s, opt)
	}
	if s.MultiApp() {
		backendApps(w, s)
	} else {
		backendApp(w, s, apps)
	}
	if acme(s) {
		lbs := s.HostsWithRole("lb")
		w.section("backend", "acme")
		w.note("certbot's standalone server on whichever balancer is asking for or renewing its",
			"certificate: a challenge may arrive at any balancer. No health checks, since",
			"certbot listens only while it runs: a refused connection is retried on the next",
			"balancer at once, and when none listens the path answers 503.")
		w.kw("option", "redispatch", "1")
		w.kw("retries", fmt.Sprint(len(lbs)))
		for _, h := range lbs {
			w.kw("server", w.v(h.Name), w.v(fmt.Sprintf("%s:%d", h.Address, ACMEPort)))
		}
	}
	stats(w, s)
	metricsListen(w, s, h)
	if passesTLS(s) {
		passthrough(w, s, apps)
	}
	if w.err != nil {
		return nil, w.err
	}
	return []byte(w.b.String()), nil
}

// acme reports whether port 80 answers ACME HTTP-01 challenges for
// certbot on this balancer.
func acme(s *schema.Stack) bool { return terminatesTLS(s) && s.TLS.Mode == "certbot" }

func global(w *writer, s *schema.Stack, opt artifact.Options) error {
	w.section("global")
	w.note("Debian's unit starts haproxy -Ws; master-worker says the same in the file, so it",
		"means the same when started by hand: a master that re-executes itself on reload",
		"and starts new workers while the old ones finish their connections.")
	w.kw("master-worker")
	w.kw("log", w.v(opt.P(logSocket)), "local0")
	w.kw("chroot", w.v(opt.P(chrootDir)))
	w.kw("user", "haproxy")
	w.kw("group", "haproxy")
	w.note("Connections at once over all frontends (each frontend's limit too). HAProxy needs",
		"about two open files per connection and refuses to start when it cannot raise its",
		"limit that far: the systemd drop-in's LimitNOFILE= matches this.")
	w.kw("maxconn", fmt.Sprint(s.Balancer.MaxConn))
	if s.MultiApp() {
		// A server is named by its app's backend: a host serving two
		// apps is a server in each.
		var bs []string
		for _, a := range s.Apps {
			bs = append(bs, Backend(s, a))
		}
		w.note("The admin socket: socat stdio "+adminSocket+" (group haproxy), for example",
			"\"set server app_<app>/<host> state drain\" before maintenance, in each backend",
			"("+strings.Join(bs, ", ")+") that has the host. expose-fd listeners lets",
			"the process started by a reload take over the listening sockets: a seamless reload.")
	} else {
		w.note("The admin socket: socat stdio "+adminSocket+" (group haproxy), for example",
			"\"set server app/<host> state drain\" before maintenance. expose-fd listeners lets",
			"the process started by a reload take over the listening sockets: a seamless reload.")
	}
	w.kw("stats", "socket", w.v(opt.P(adminSocket)), "mode", "660", "level", "admin", "expose-fd", "listeners")
	w.kw("stats", "timeout", "30s")
	if !terminatesTLS(s) {
		return nil
	}
	rel := osrelease.MustLookup(s.OS)
	p, err := profileFor(s.TLS.Profile, rel)
	if err != nil {
		return artifact.Errorf("tls.profile", "%v", err)
	}
	w.raw("\n")
	w.note("TLS for every \"bind ... ssl\", HAProxy "+rel.HAProxyVersionMM()+" with OpenSSL "+rel.OpenSSLVersionMM()+":",
		tlsprofile.Comment(s.TLS.Profile)+" (https://ssl-config.mozilla.org/).",
		"prefer-client-ciphers: the profile leaves the choice to the client,",
		"HAProxy would otherwise impose its own order.")
	if n := tlsprofile.CurveNote(rel); n != "" {
		w.note(n)
	}
	if len(p.Ciphers) > 0 {
		w.kw("ssl-default-bind-ciphers", strings.Join(p.Ciphers, ":"))
	}
	w.kw("ssl-default-bind-ciphersuites", strings.Join(p.Ciphersuites, ":"))
	w.kw("ssl-default-bind-curves", strings.Join(p.Curves, ":"))
	w.kw("ssl-default-bind-options", bindOptions(p))
	// No ssl-dh-param-file: the profile has no DHE cipher left to use it.
	w.note("No OCSP stapling: Let's Encrypt certificates no longer name an OCSP responder.")
	return nil
}

func timeouts(w *writer, s *schema.Stack, http bool) {
	t := s.Balancer.Timeouts
	w.kw("timeout", "connect", secs(t.Connect))
	w.note("Inactivity allowed on each side in mid-request or mid-response: balancer.timeouts",
		"read for the client, the longer of read and send for the server.")
	w.kw("timeout", "client", secs(t.Read))
	w.kw("timeout", "server", secs(max(t.Read, t.Send)))
	if http {
		w.note("The whole request head must arrive within this (slow-loris guard), and an idle",
			"keep-alive connection is closed after it.")
		w.kw("timeout", "http-request", secs(min(10, t.Read)))
		w.kw("timeout", "http-keep-alive", secs(min(10, t.Read)))
	}
	w.note("How long a request waits for a free server before a 503.")
	w.kw("timeout", "queue", "30s")
	w.note("A health check must be answered within balancer.health.timeout.")
	w.kw("timeout", "check", millis(s.Balancer.Health.Timeout))
}

func frontendHTTP(w *writer, s *schema.Stack) {
	w.section("frontend", "http")
	w.kw("bind", ":80")
	switch {
	case terminatesTLS(s) && acme(s):
		w.note("ACME HTTP-01 challenges go to certbot, which runs standalone on port "+fmt.Sprint(ACMEPort)+" of",
			"its balancer's address (see /"+DeployHookPath+").",
			"They are the exception to the redirect: the first certificate is asked for",
			"before HTTPS has one to serve.")
		w.kw("acl", "acme", "path_beg", "/.well-known/acme-challenge/")
		w.kw("http-request", "redirect", "scheme", "https", "code", "301", "unless", "acme")
		w.kw("use_backend", "acme", "if", "acme")
	case terminatesTLS(s):
		w.note("Everything on port 80 is redirected to HTTPS; tls.mode \"files\" needs no ACME path.")
		w.kw("http-request", "redirect", "scheme", "https", "code", "301")
	default:
		if passesTLS(s) {
			w.note("The app hosts' nginx redirects to HTTPS and answers ACME challenges itself.")
		}
		w.note("Whatever the client sent, the app hosts learn the request came over plain HTTP.")
		w.kw("http-request", "set-header", "X-Forwarded-Proto", "http")
		if s.MultiApp() {
			routing(w, s)
			return
		}
		w.kw("default_backend", "app")
	}
}

func frontendHTTPS(w *writer, s *schema.Stack, opt artifact.Options) {
	w.section("frontend", "https")
	src := "certbot's " + s.TLS.Certificate + " and " + s.TLS.Key
	if s.TLS.Mode != "certbot" {
		src = s.TLS.Certificate + " and " + s.TLS.Key
	}
	if s.MultiApp() {
		w.note("Every PEM (chain + key) in /"+CertDir+"/, one per set of host names, the one whose",
			"names cover the SNI name served:")
		for _, v := range certViews(s) {
			src := v.TLS.Certificate + " and " + v.TLS.Key
			if s.TLS.Mode == "certbot" {
				src = "certbot's " + src
			}
			w.note("  "+PEMPath(v)+" ("+strings.Join(append([]string{v.Domain}, v.Aliases...), ", ")+"), built from",
				"    "+src+" by /"+certScriptPath(v)+";")
		}
	} else {
		w.note("Every PEM (chain + key) in /"+CertDir+"/, here "+PEMPath(s)+",",
			"built from "+src,
			"by /"+certScriptPath(s)+".")
	}
	w.note(
		"strict-sni: a handshake for a name no certificate covers fails rather than get the",
		"wrong certificate, and HAProxy starts while the directory is still empty (with a",
		"warning), so port 80 can answer the ACME challenge for the first certificate.")
	w.kw("bind", ":443", "ssl", "crt", w.v(opt.P("/"+CertDir)+"/"), "strict-sni", "alpn", "h2,http/1.1")
	w.note("Whatever the client sent, the app hosts learn the request came over HTTPS.")
	w.kw("http-request", "set-header", "X-Forwarded-Proto", "https")
	if s.TLS.HSTS {
		w.kw("http-response", "set-header", "Strict-Transport-Security", w.v(fmt.Sprintf("max-age=%d", s.TLS.HSTSMaxAge)))
	}
	if s.MultiApp() {
		routing(w, s)
		return
	}
	w.kw("default_backend", "app")
}

// algorithm writes the balance line with why it was chosen.
func algorithm(w *writer, s *schema.Stack) {
	switch s.Balancer.Algorithm {
	case "leastconn":
		w.note("leastconn: each request goes to the server with the fewest active connections.")
		w.kw("balance", "leastconn")
	case "source":
		w.note("source: a client address always reaches the same server. Consistent hashing",
			"moves only that server's clients when a server goes down or comes back.")
		w.kw("balance", "source")
		w.kw("hash-type", "consistent")
	default:
		w.note("roundrobin: servers take turns, weighted (slowstart ramps a recovered one up).")
		w.kw("balance", "roundrobin")
	}
}

// FastInter is the check interval while a server is changing state
// (going down after a first failed check, coming back after a first good
// one, or just marked down by on-error): a failure is confirmed, and a
// recovery noticed, within a fraction of the normal interval.
const FastInter = "250ms"

// ErrorLimit is how many consecutive failed responses (observe) mark a
// server down at once, without waiting for its health checks.
const ErrorLimit = 10

// healthCheck writes the active health check of the app hosts, and the
// passive one: observe checks every response from the server as well
// (layer7 in HTTP mode, layer4, the connection alone, in TCP mode).
func healthCheck(w *writer, s *schema.Stack, observe string) {
	h := s.Balancer.Health
	w.note(fmt.Sprintf("Health: GET %s with the site's Host header, expecting 200. The app host's", h.Path),
		"nginx passes this path on to the app server, so a check fails when the app does, not",
		"only when nginx does.")
	w.kw("option", "httpchk")
	w.kw("http-check", "send", "meth", "GET", "uri", w.v(h.Path), "ver", "HTTP/1.1", "hdr", "Host", w.v(s.Domain))
	w.kw("http-check", "expect", "status", "200")
	w.note(fmt.Sprintf("inter %ds: the check interval while a server is steadily up (balancer.health.interval).", h.Interval),
		fmt.Sprintf("fastinter %s: once a check fails (or on-error fires), the next ones come this soon, so", FastInter),
		fmt.Sprintf("fall %d failures in a row take a server out about %ds + %d x %s after it dies, at most",
			h.Fall, h.Interval, h.Fall-1, FastInter),
		"(each check waits up to \"timeout check\" for a hung server).",
		fmt.Sprintf("downinter %ds: a down server is checked as often as an up one, and rise %d good", h.Interval, h.Rise),
		fmt.Sprintf("checks (the later ones at fastinter) bring it back: about %ds + %d x %s after it recovers.",
			h.Interval, h.Rise-1, FastInter))
	ds := []string{"default-server", "inter", secs(h.Interval), "fastinter", FastInter, "downinter", secs(h.Interval),
		"fall", fmt.Sprint(h.Fall), "rise", fmt.Sprint(h.Rise)}
	if observe == "layer7" {
		w.note("observe layer7: every response counts for or against its server, as HAProxy",
			"documents: 100-499, 501 and 505 are good; a 500, 502, 503 or 504 (a dead app behind",
			"a live nginx answers 502), a timeout or a broken response is an error.")
	} else {
		w.note("observe layer4: every connection to the server counts for or against it (a",
			"refused or timed-out connection is an error).")
	}
	w.note(fmt.Sprintf("error-limit %d, on-error mark-down: %d such errors in a row mark the server down at", ErrorLimit, ErrorLimit),
		"once, without waiting for its checks: under load a dead app is out in milliseconds;",
		"its checks bring it back when it answers again. One good response resets the count,",
		"so an endpoint that fails now and then does not take a healthy server out.")
	ds = append(ds, "observe", observe, "error-limit", fmt.Sprint(ErrorLimit), "on-error", "mark-down")
	if s.Balancer.Slowstart > 0 {
		w.note(fmt.Sprintf("slowstart: a server back from a failure ramps up to full weight over %ds.", s.Balancer.Slowstart))
		ds = append(ds, "slowstart", secs(s.Balancer.Slowstart))
	}
	w.kw(ds...)
}

// retries writes how a failed request is retried on another server:
// every idempotent request that failed for a reason that says nothing
// about the request itself, and never a non-idempotent one once sent.
func retries(w *writer, s *schema.Stack) {
	w.note("Retries: the request is buffered and tried again, on another server each time",
		"(redispatch 1 redispatches on every retry, not only the last), up to balancer.retries",
		fmt.Sprintf("(%d) times, when:", s.Balancer.Retries),
		"  conn-failure: the connection failed, nothing was sent (safe for every method);",
		"  empty-response: the server closed the connection without a byte of answer (a crash);",
		"  response-timeout: no answer within \"timeout server\" (a frozen host);",
		"  502, 503: the app host's nginx could not reach its app, or the app is shedding load.",
		"Left out, as HAProxy's documentation advises: junk-response (a broken answer may be the",
		"request's own fault), 500 (an application error repeats on every server) and 504 (the",
		"app host's nginx already waited its full timeout: a retry doubles the load of a slow request).")
	w.kw("retries", fmt.Sprint(s.Balancer.Retries))
	w.kw("option", "redispatch", "1")
	w.kw("retry-on", "conn-failure", "empty-response", "response-timeout", "502", "503")
	w.note("HAProxy does not look at the method before such a retry: only GET, HEAD and OPTIONS",
		"(safe, idempotent) are retried once they reached a server; POST, PUT, PATCH, DELETE",
		"and every other method are retried only when the connection failed, so a",
		"non-idempotent request is never sent twice.")
	w.kw("acl", "retry_safe", "method", "GET", "HEAD", "OPTIONS")
	w.kw("http-request", "disable-l7-retry", "unless", "retry_safe")
}

func backendApp(w *writer, s *schema.Stack, apps []*schema.Host) {
	w.section("backend", "app")
	port := fmt.Sprint(s.App.HTTPPort)
	if passesTLS(s) {
		w.note("Port 80 of the app hosts; each server is up or down as its TLS twin in",
			"backend app_tls is, whose health checks decide.")
		algorithm(w, s)
		for _, h := range apps {
			w.kw(append([]string{"server", w.v(h.Name), w.v(h.Address + ":" + port), "track", w.v("app_tls/" + h.Name)}, drainArgs(h)...)...)
		}
		return
	}
	algorithm(w, s)
	healthCheck(w, s, "layer7")
	retries(w, s)
	w.note("Idle connections to the app hosts are reused for later requests, never for the",
		"first request of a client connection (HAProxy's default, said here).")
	w.kw("http-reuse", "safe")
	drainNote(w, apps)
	for _, h := range apps {
		w.kw(append([]string{"server", w.v(h.Name), w.v(h.Address + ":" + port), "check"}, drainArgs(h)...)...)
	}
}

// drainArgs takes a draining host (hosts.X.drain) out of rotation:
// weight 0 gets it no new connections while its health checks go on,
// and the reload push runs leaves the old process finishing the
// connections it holds (a soft stop). A tracking server takes its
// state from the tracked one but not its weight, so it says it too.
func drainArgs(h *schema.Host) []string {
	if h.Drain {
		return []string{"weight", "0"}
	}
	return nil
}

// drainNote explains weight 0 once, above the servers, when a host drains.
func drainNote(w *writer, apps []*schema.Host) {
	for _, h := range apps {
		if h.Drain {
			w.note("weight 0: a draining host (hosts.<name>.drain) gets no new requests; its health",
				"checks go on, and requests running at the reload finish on the old process.")
			return
		}
	}
}

func stats(w *writer, s *schema.Stack) {
	st := s.Balancer.Stats
	w.section("listen", "stats")
	where := "on loopback (ssh -L " + fmt.Sprintf("%d:%s:%d", st.Port, st.Address, st.Port) + " to reach it)"
	if !isLoopback(st.Address) {
		where = "on " + st.Address + ": Basic auth crosses the network in clear text, so keep it an admin-only network"
	}
	w.note("The statistics page, "+where+".",
		"Read-only: change server states through the admin socket.")
	w.kw("bind", w.v(fmt.Sprintf("%s:%d", st.Address, st.Port)))
	w.kw("stats", "enable")
	w.kw("stats", "uri", w.v(st.URI))
	w.kw("stats", "refresh", "10s")
	w.kw("stats", "hide-version")
	w.note("The password is "+PasswordVar+" from "+s.Balancer.EnvironmentFile+", which systemd",
		"loads (see haproxy.service.d/hacompile.conf); HAProxy expands it inside double",
		"quotes when it reads this file. It is never written here.")
	w.kw("stats", "auth", w.v(st.User+":")+`"${`+PasswordVar+`}"`)
	w.note("HAProxy takes an empty password as a valid one: while the variable is unset or",
		"empty, refuse every request rather than let \""+st.User+"\" in without one.")
	w.kw("http-request", "deny", "deny_status", "503", "unless", "{", "env("+PasswordVar+"),length", "gt", "0", "}")
}

// passthrough writes the TCP relay of port 443 to the app hosts.
func passthrough(w *writer, s *schema.Stack, apps []*schema.Host) {
	w.section("defaults", "tls-passthrough")
	w.note("For the sections below: TLS is relayed as bytes, the app hosts terminate it.")
	w.kw("mode", "tcp")
	w.kw("log", "global")
	w.kw("option", "tcplog")
	w.kw("option", "dontlognull")
	w.kw("option", "redispatch")
	w.kw("retries", fmt.Sprint(s.Balancer.Retries))
	if n, ok := somaxconn(s); ok && n < s.Balancer.MaxConn {
		// A named defaults section starts from nothing: the backlog of
		// the section above does not carry over.
		w.note(fmt.Sprintf("The kernel caps the listen backlog at net.core.somaxconn (%d), as above.", n))
		w.kw("backlog", fmt.Sprint(n))
	}
	timeouts(w, s, false)

	w.section("frontend", "https")
	w.kw("bind", ":443")
	w.kw("default_backend", "app_tls")

	w.section("backend", "app_tls")
	algorithm(w, s)
	healthCheck(w, s, "layer4")
	w.note(fmt.Sprintf("Checks speak TLS to port %d with the site's name (SNI) and do not verify", AppTLSPort),
		"the certificate: the app hosts' nginx owns it, and a check only asks whether it answers.")
	drainNote(w, apps)
	for _, h := range apps {
		w.kw(append([]string{"server", w.v(h.Name), w.v(fmt.Sprintf("%s:%d", h.Address, AppTLSPort)), "check", "check-ssl",
			"check-sni", w.v(s.Domain), "verify", "none"}, drainArgs(h)...)...)
	}
}
