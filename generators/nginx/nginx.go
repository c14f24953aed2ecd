// Package nginx renders nginx for every host that runs it: the app hosts,
// where nginx fronts the local app server (gunicorn or Starman), serves
// static files and error pages and, when TLS terminates there, HTTPS; and
// the lb hosts of an nginx balancer, which spread requests over the app
// hosts and terminate TLS for them.
//
// hacompile owns nginx.conf outright and loads sites from conf.d only, so
// the distribution's sites-enabled/default never shadows the stack's
// server. TLS follows the stack's Mozilla profile from one snippet file
// that every TLS server includes. In certbot mode every port-80 server
// answers ACME HTTP-01 challenges from tls.acme_root ahead of its HTTPS
// redirect, and relays a token it lacks to its siblings once: behind a
// balancer, a reserved IP or DNS, the challenge for one host's
// certificate may reach another.
//
// Absolute paths in the files go through Options.P; listen addresses do
// not (tests run nginx -t in a private network namespace).
package nginx

import (
	"bytes"
	"fmt"
	"html"
	"maps"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/generators/tlsprofile"
	"github.com/hacompile/hacompile/schema"
)

// Paths of the rendered files on a host.
const (
	ConfPath           = "etc/nginx/nginx.conf"
	TLSSnippetPath     = "etc/nginx/snippets/hacompile-tls.conf"
	HeadersSnippetPath = "etc/nginx/snippets/hacompile-security-headers.conf"
)

// ACMEConfPath is the nginx configuration an app host that terminates
// TLS with certbot runs for its first certificate only (cloud-init
// starts it with nginx -c and stops it once certbot is done): its
// port-80 servers, from ACMESitePath's files, serving the ACME webroot
// and relaying the challenges it lacks, and nothing else. nginx.conf
// cannot start before the certificate exists; certbot's standalone
// listener could, but it reads no PROXY protocol header and is not on
// the port the siblings relay challenges to.
const ACMEConfPath = "etc/nginx/hacompile-acme.conf"

// ACMEPIDPath is where the first-certificate nginx keeps its PID, apart
// from nginx.service's.
const ACMEPIDPath = "/run/nginx-hacompile-acme.pid"

// ACMESitePath is an app's port-80 server for ACMEConfPath.
func ACMESitePath(s *schema.Stack) string {
	return "etc/nginx/hacompile-acme.d/" + s.App.Name + ".conf"
}

// AppSitePath is the app hosts' site.
func AppSitePath(s *schema.Stack) string { return "etc/nginx/conf.d/" + s.App.Name + ".conf" }

// LBSitePath is the nginx balancer's site on the lb hosts: named after
// the app, or after the stack when it routes to several.
func LBSitePath(s *schema.Stack) string {
	if s.MultiApp() {
		return "etc/nginx/conf.d/" + s.Name + "-lb.conf"
	}
	return "etc/nginx/conf.d/" + s.App.Name + "-lb.conf"
}

// validate checks the configuration this generator wrote: under a
// sandbox root (push --root, tests) that is the tree's nginx.conf, not
// the system's.
func (g *gen) validate() artifact.Action {
	if g.opt.Root == "" {
		return artifact.Run("nginx", "-t")
	}
	return artifact.Run("nginx", "-t", "-c", g.opt.P("/etc/nginx/nginx.conf"))
}

const (
	// acmePrefix is where HTTP-01 challenges are fetched; certbot's
	// webroot plugin writes the tokens below <acme_root>/.well-known/.
	acmePrefix = "/.well-known/acme-challenge/"
)

// Gen is the nginx generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "nginx" }

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	g := &gen{s: s, opt: opt, appHosts: s.HostsWithRole("app"), reload: artifact.ReloadUnit("nginx")}
	g.valid = g.validate()
	if s.Balancer.Kind == "nginx" {
		g.lbHosts = s.HostsWithRole("lb")
	}
	if err := g.check(); err != nil {
		return nil, err
	}
	names := s.HostNames()
	// Each host's files are appended in place: an nginx host (app or
	// balancer) has the error pages and up to five configuration files.
	files := make([]artifact.File, 0, (len(g.appHosts)+len(g.lbHosts))*(len(errorStatuses)+5))
	for _, name := range names {
		if !opt.Renders(name) {
			continue
		}
		var err error
		if files, err = g.host(files, s.Hosts[name]); err != nil {
			return nil, artifact.InHost(name, err)
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	return slices.Clip(files), nil
}

// gen holds what every file of one stack's render shares.
type gen struct {
	s        *schema.Stack
	opt      artifact.Options
	prof     profile
	rel      osrelease.Release
	appHosts []*schema.Host
	lbHosts  []*schema.Host // empty unless the balancer is nginx
	// same holds the files every nginx host of the stack gets alike
	// (nginx.conf, the snippets, the error pages) by path, rendered for
	// the first host and shared by the others: a fleet holds one copy
	// of their bytes, not one per host.
	same map[string]sameFile
	// buf is the buffer the next writer writes into, given back when
	// its file is copied out: a fleet's files are rendered in a few
	// buffers, not one each.
	buf []byte
	// valid and reload are every configuration file's actions.
	valid, reload artifact.Action
}

// sameFile is a rendered file every host shares, or why it failed.
type sameFile struct {
	content []byte
	err     error
}

// once renders the file at p with render for the first host that
// needs it and gives every later host the same bytes (capped: nothing
// can append to them) or the same error.
func (g *gen) once(p string, render func() ([]byte, error)) func() ([]byte, error) {
	return func() ([]byte, error) {
		f, ok := g.same[p]
		if !ok {
			b, err := render()
			f = sameFile{b[:len(b):len(b)], err}
			if g.same == nil {
				g.same = map[string]sameFile{}
			}
			g.same[p] = f
		}
		return f.content, f.err
	}
}

// check refuses stacks nginx cannot serve as described; these are
// mistakes nginx -t would not catch, or would catch only on the host.
func (g *gen) check() error {
	s := g.s
	rel, err := osrelease.Lookup(s.OS)
	if err != nil {
		return artifact.Errorf("os", "%v", err)
	}
	g.rel = rel
	if s.TLS.Enabled() {
		p, err := tlsprofile.For(s.TLS.Profile, rel)
		if err != nil {
			return artifact.Errorf("tls.profile", "%v", err)
		}
		g.prof = p
		// In "cloud" mode the provider's balancer holds the certificate.
		if s.TLS.Mode != "cloud" && (s.TLS.Certificate == "" || s.TLS.Key == "") {
			return artifact.Errorf("tls", "mode %q needs tls.certificate and tls.key", s.TLS.Mode)
		}
		if s.Balancer.Kind == "nginx" && s.TLS.Terminate == "app" {
			return artifact.Errorf("tls.terminate", `"app" cannot work with an nginx balancer, which proxies HTTP and so must terminate TLS itself (want tls.terminate: "balancer")`)
		}
	}
	if len(g.lbHosts) > 0 && len(g.appHosts) == 0 {
		return artifact.Errorf("hosts", `the nginx balancer needs at least one host with role "app" to send requests to`)
	}
	if s.Tuning.NginxWorkerConnections > s.Tuning.Nofile {
		return artifact.Errorf("tuning.nginx_worker_connections", "%d connections per worker exceed tuning.nofile (%d open files per process)",
			s.Tuning.NginxWorkerConnections, s.Tuning.Nofile)
	}
	seen := map[string]bool{}
	for i, st := range s.App.Static {
		switch {
		case st.URL == "/":
			return artifact.Errorf(schema.IndexPath("app.static", i)+".url", "\"/\" would serve every request from %s and never reach the app", st.Dir)
		case seen[st.URL]:
			return artifact.Errorf(schema.IndexPath("app.static", i)+".url", "%s is listed twice", st.URL)
		}
		seen[st.URL] = true
	}
	if rl := s.RateLimit; rl != nil {
		for i, l := range rl.Locations {
			switch {
			case l.Path == "/":
				return artifact.Errorf(schema.IndexPath("rate_limit.locations", i)+".path", "\"/\" is every request; set rate_limit.rate instead")
			case seen[l.Path]:
				return artifact.Errorf(schema.IndexPath("rate_limit.locations", i)+".path", "%s is also a static location or listed twice", l.Path)
			}
			seen[l.Path] = true
		}
	}
	return nil
}

// tlsOnApp reports whether the app hosts' nginx terminates TLS.
func (g *gen) tlsOnApp() bool { return g.s.TLS.Enabled() && g.s.TLS.Terminate == "app" }

// tlsOnLB reports whether the nginx balancer terminates TLS.
func (g *gen) tlsOnLB() bool { return g.s.TLS.Enabled() && g.s.TLS.Terminate == "balancer" }

// host appends one host's files to dst, sorted by path.
func (g *gen) host(dst []artifact.File, h *schema.Host) ([]artifact.File, error) {
	isApp := h.Has("app")
	isLB := h.Has("lb") && g.s.Balancer.Kind == "nginx"
	if !isApp && !isLB {
		return dst, nil
	}
	type render func() ([]byte, error)
	parts := map[string]render{ConfPath: g.once(ConfPath, g.mainConf)}
	tls := false
	if isApp {
		if g.tlsOnApp() && g.s.App.HTTPPort == 443 {
			return nil, artifact.Errorf("app.http_port", "443 is the port the app hosts serve HTTPS on; choose another port for plain HTTP")
		}
		parts[AppSitePath(g.s)] = func() ([]byte, error) { return g.appSite(h) }
		parts[HeadersSnippetPath] = g.once(HeadersSnippetPath, g.headersSnippet)
		tls = tls || g.tlsOnApp()
		if g.tlsOnApp() && g.s.TLS.Mode == "certbot" {
			parts[ACMEConfPath] = g.once(ACMEConfPath, g.acmeConf)
			parts[ACMESitePath(g.s)] = func() ([]byte, error) { return g.acmeSite(h) }
		}
	}
	if isLB {
		if isApp && slices.Contains(g.lbPorts(), g.s.App.HTTPPort) {
			return nil, artifact.Errorf("hosts."+h.Name+".roles", `"app" and "lb" on one host need app.http_port (%d) to differ from the balancer's ports %v`,
				g.s.App.HTTPPort, g.lbPorts())
		}
		switch whole := g.s.Whole(); {
		case !whole.MultiApp():
			parts[LBSitePath(g.s)] = func() ([]byte, error) { return g.lbSite(h) }
		case g.s.App.Name == whole.Apps[0].Name:
			// One site routes to every app: the first app's view
			// renders it from the whole stack.
			wg := g.viewOf(whole)
			parts[LBSitePath(whole)] = func() ([]byte, error) { return wg.lbSiteApps(h) }
		}
		tls = tls || g.tlsOnLB()
	}
	if tls {
		parts[TLSSnippetPath] = g.once(TLSSnippetPath, g.tlsSnippet)
	}
	start := len(dst)
	files := g.errorPageFiles(dst, h)
	for _, p := range slices.Sorted(maps.Keys(parts)) {
		content, err := parts[p]()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		f := artifact.File{
			Host: h.Name, Path: p, Content: content, Mode: 0o644, Owner: "root:root",
			Validate: g.valid, Reload: g.reload,
		}
		if p == ACMEConfPath || strings.HasPrefix(p, "etc/nginx/hacompile-acme.d/") {
			// Read by the first-certificate nginx only: checked as that
			// configuration, and nothing running reads it again.
			f.Validate, f.Reload = artifact.Run("nginx", "-t", "-c", g.opt.P("/"+ACMEConfPath)), artifact.Action{}
		}
		files = append(files, f)
	}
	slices.SortFunc(files[start:], func(a, b artifact.File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// lbPorts are the ports the nginx balancer listens on.
func (g *gen) lbPorts() []int {
	if g.tlsOnLB() {
		return []int{80, 443}
	}
	return []int{80}
}

// gzipTypes are compressed besides text/html, which nginx always
// compresses (listing it draws a duplicate-type warning). The seed's
// "application/xml+rss" is no registered type; RSS is application/rss+xml.
var gzipTypes = []string{
	"text/plain", "text/css", "application/json", "application/javascript",
	"text/xml", "application/xml", "application/rss+xml", "text/javascript", "image/svg+xml",
}

// tempPaths are Debian's compiled-in temporary directories. They are
// written out so that every path nginx creates appears in the file.
var tempPaths = []struct{ directive, path string }{
	{"client_body_temp_path", "/var/lib/nginx/body"},
	{"proxy_temp_path", "/var/lib/nginx/proxy"},
	{"fastcgi_temp_path", "/var/lib/nginx/fastcgi"},
	{"uwsgi_temp_path", "/var/lib/nginx/uwsgi"},
	{"scgi_temp_path", "/var/lib/nginx/scgi"},
}

// mainConf renders nginx.conf, the same on every nginx host of a stack.
func (g *gen) mainConf() ([]byte, error) {
	s := g.s
	w := g.newWriter()
	w.comment("For nginx " + g.rel.NginxVersionMM() + " on " + g.rel.Pretty + ", the stack's os \"" + g.rel.Name + "\".")
	w.comment("hacompile owns this file. Sites load from conf.d only: Debian's sites-enabled/default",
		"is never included, so it cannot answer in place of the stack's servers.")
	w.d("user", "www-data")
	w.d("worker_processes", "auto")
	w.comment("Open files per worker: client and upstream connections, logs, static files.")
	w.d("worker_rlimit_nofile", strconv.Itoa(s.Tuning.Nofile))
	w.d("pid", w.path("/run/nginx.pid"))
	w.d("error_log", w.path("/var/log/nginx/error.log"))
	w.blank()
	w.open("events")
	w.d("worker_connections", strconv.Itoa(s.Tuning.NginxWorkerConnections))
	w.close()
	w.blank()
	w.open("http")
	w.d("include", w.path("/etc/nginx/mime.types"))
	w.d("default_type", "application/octet-stream")
	w.comment("Large enough for the longest server name of the stack, should a second server",
		"ever share a listen address (nginx then hashes the names, and refuses names that do not fit).")
	w.d("server_names_hash_bucket_size", strconv.Itoa(g.namesBucketSize()))
	w.blank()
	w.d("sendfile", "on")
	w.d("tcp_nopush", "on")
	w.d("tcp_nodelay", "on")
	w.d("keepalive_timeout", "65s")
	w.d("server_tokens", "off")
	w.blank()
	w.comment("Debian's compiled-in temporary directories, named so every path nginx creates is in this file.")
	for _, t := range tempPaths {
		w.d(t.directive, w.path(t.path))
	}
	w.blank()
	w.comment("The combined format plus where the time went: request, upstream connect and response.")
	w.d("log_format", "hacompile",
		`'$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '`+"\n"+w.indent(1)+
			`'"$http_referer" "$http_user_agent" rt=$request_time uct=$upstream_connect_time '`+"\n"+w.indent(1)+
			`'urt=$upstream_response_time ua=$upstream_addr'`)
	w.d("access_log", w.path("/var/log/nginx/access.log"), "hacompile")
	w.blank()
	w.d("gzip", "on")
	w.d("gzip_vary", "on")
	w.d("gzip_proxied", "any")
	w.d("gzip_comp_level", "6")
	w.d("gzip_min_length", "256")
	w.d("gzip_types", strings.Join(gzipTypes, " "))
	w.blank()
	w.d("include", w.path("/etc/nginx/conf.d/*.conf"))
	w.close()
	return w.result()
}

// namesBucketSize is server_names_hash_bucket_size for the stack's
// names (every app's, so each app's view renders the same nginx.conf): nginx needs two pointers plus the name and two bytes, aligned,
// per bucket (ngx_hash_init), and refuses to start when a name does not
// fit. The default, 64 on x86-64, holds names up to 46 characters.
func (g *gen) namesBucketSize() int {
	longest := 0
	for _, n := range g.s.Whole().AllDomains() {
		longest = max(longest, len(n))
	}
	need := 8 + (longest+2+7)/8*8 + 8
	size := 64
	for size < need {
		size *= 2
	}
	return size
}

// serverNames are the names the stack's servers answer to.
func (g *gen) serverNames() []string {
	return append([]string{g.s.Domain}, g.s.Aliases...)
}

// headersSnippet renders the security headers of the app hosts'
// servers. add_header is inherited only by locations that set no header
// of their own, so locations that do include this file again.
func (g *gen) headersSnippet() ([]byte, error) {
	w := g.newWriter()
	w.comment("Security headers on every response of the app's servers, error responses included.",
		"Strict-Transport-Security is not here: it belongs to HTTPS servers only.")
	for _, h := range securityHeaders {
		w.d("add_header", h[0], w.quote(h[1]), "always")
	}
	return w.result()
}

var securityHeaders = [][2]string{
	{"X-Content-Type-Options", "nosniff"},
	{"X-Frame-Options", "SAMEORIGIN"},
	{"Referrer-Policy", "strict-origin-when-cross-origin"},
}

// hsts writes the HSTS header for a TLS server or one of its locations.
func (g *gen) hsts(w *writer) {
	if g.s.TLS.HSTS {
		w.d("add_header", "Strict-Transport-Security", w.quote("max-age="+strconv.Itoa(g.s.TLS.HSTSMaxAge)), "always")
	}
}

// trustedProxies are the addresses whose X-Forwarded-For and
// X-Forwarded-Proto the app hosts believe: the lb hosts of an nginx or
// HAProxy balancer, and balancer.trusted_proxies.
func (g *gen) trustedProxies() ([]string, error) {
	var out []string
	if k := g.s.Balancer.Kind; k == "nginx" || k == "haproxy" {
		for _, h := range g.s.HostsWithRole("lb") {
			out = append(out, h.Address)
		}
	}
	out = append(out, g.s.Balancer.TrustedProxies...)
	for _, a := range out {
		if _, err := netip.ParseAddr(a); err != nil {
			if _, err := netip.ParsePrefix(a); err != nil {
				return nil, artifact.Errorf("balancer.trusted_proxies", "%q is neither an address nor a CIDR range", a)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// appUpstream is the name of the app server upstream on an app host.
func (g *gen) appUpstream() string { return g.s.App.Name + "_local" }

// lbUpstream is the name of the app host pool on the nginx balancer.
func (g *gen) lbUpstream() string { return g.s.App.Name + "_app_hosts" }

// appSite renders the app hosts' site.
func (g *gen) appSite(h *schema.Host) ([]byte, error) {
	s := g.s
	w := g.newWriter()
	server := "gunicorn"
	if s.App.Runtime == "perl" {
		server = "Starman"
	}
	w.comment(fmt.Sprintf("The %s app on this host: nginx in front of %s.", s.App.Name, server))
	if s.App.Runtime == "perl" {
		w.comment("Starman is an HTTP server, so nginx proxies HTTP to it (not FastCGI).")
	}
	w.open("upstream", g.appUpstream())
	local := "127.0.0.1:" + strconv.Itoa(s.App.Bind.Port)
	if b := s.App.Bind; b.Socket != "" {
		local = "unix:" + w.path(b.Socket)
	}
	// A worker recycled after max_requests (or timed out) drops the
	// connections it had accepted and not yet answered: nginx sees a
	// reset and, with one server, answers 502 (hacompile test counted
	// hundreds under load on two app hosts). The same server again as a
	// backup gives nginx a second try on a new connection, for the
	// requests it retries at all (proxy_next_upstream: not POST and the
	// like). max_fails=0: one dropped connection does not take the app
	// server out of its own host for fail_timeout.
	w.comment("A worker recycled after max_requests drops the connections it accepted and had not",
		"answered. The same server again, as a backup, gives such a request a second try on a",
		"new connection (idempotent requests only, as proxy_next_upstream retries).",
		"max_fails=0: the app server is never taken out of its own host.")
	w.d("server", local, "max_fails=0")
	w.d("server", local, "max_fails=0", "backup")
	// No idle connections kept to the app server: it closes them itself
	// (keepalive timeout, recycled workers), and a request sent on one as
	// it closes fails. A new connection on this host costs microseconds.
	w.comment("No idle connections are kept: the app server closes them itself (keepalive timeout,",
		"recycled workers). A new local connection costs microseconds.")
	w.close()
	if g.rateLimitOnApp() {
		g.rateLimitZones(w)
	}

	trusted, err := g.trustedProxies()
	if err != nil {
		return nil, err
	}
	if g.tlsOnApp() {
		var fromPROXY []string
		if s.ProxyProtocol() {
			fromPROXY = trusted
		}
		g.appRedirectServer(w, h, fromPROXY)
		g.appServer(w, h, fromPROXY)
	} else {
		if len(trusted) > 0 && s.TLS.Enabled() {
			w.blank()
			w.comment("TLS ends at the balancer: believe its X-Forwarded-Proto, and only from a trusted proxy.")
			w.open("geo", "$realip_remote_addr", "$hacompile_trusted_proxy")
			w.d("default", "0")
			for _, a := range trusted {
				w.d(w.word(a), "1")
			}
			w.close()
			w.open("map", `"$hacompile_trusted_proxy:$http_x_forwarded_proto"`, "$hacompile_forwarded_proto")
			w.d("default", "$scheme")
			w.d(`"1:http"`, "http")
			w.d(`"1:https"`, "https")
			w.close()
		}
		g.appServer(w, h, trusted)
	}
	return w.result()
}

// keepalive writes the idle upstream connections kept per worker;
// keepalive 0 (none) is nginx's default and no valid directive.
func (g *gen) keepalive(w *writer) {
	if n := g.s.Balancer.Keepalive; n > 0 {
		w.d("keepalive", strconv.Itoa(n))
	}
}

// appRedirectServer renders an app host's plain HTTP server when it
// terminates TLS itself: ACME challenges, the balancer's health check,
// and a redirect for everything else.
func (g *gen) appRedirectServer(w *writer, h *schema.Host, trusted []string) {
	s := g.s
	relay := g.openAppHTTPServer(w, h)
	w.blank()
	xff := "$proxy_add_x_forwarded_for"
	if len(trusted) > 0 {
		g.realIPFromPROXY(w, trusted)
		xff = "$remote_addr"
	}
	g.proxyHeaders(w, xff, "$scheme")
	w.blank()
	if s.TLS.Mode == "certbot" {
		g.acmeLocation(w, relay)
	}
	g.healthLocation(w, g.appUpstream())
	g.redirectLocation(w)
	w.close()
}

// openAppHTTPServer writes the upstream of the siblings an app host
// that terminates TLS relays ACME challenges to, then opens its plain
// HTTP server with its listeners and names (appRedirectServer's, and
// acmeSite's for the first certificate), and returns the relay's name
// ("" for none).
func (g *gen) openAppHTTPServer(w *writer, h *schema.Host) string {
	s := g.s
	relayPort := s.App.HTTPPort
	if s.ProxyProtocol() {
		relayPort = ACMERelayPort
	}
	relay := g.acmeRelay(w, h, g.appHosts, relayPort, s.App.Name+"_acme_relay")
	w.blank()
	w.open("server")
	g.appHTTPListen(w, h)
	w.d("server_name", g.names(w))
	return relay
}

// appHTTPListen writes the listeners of an app host's plain HTTP
// server when it terminates TLS itself.
func (g *gen) appHTTPListen(w *writer, h *schema.Host) {
	s := g.s
	if s.ProxyProtocol() {
		w.d("listen", h.Address+":"+strconv.Itoa(s.App.HTTPPort), "proxy_protocol")
		// The siblings relaying ACME challenges speak plain HTTP: nginx
		// cannot send a PROXY header from proxy_pass. On this listener
		// the connection carries none, and the real-IP module leaves
		// the address alone.
		w.comment("Plain HTTP for the other app hosts relaying ACME challenges (proxy_pass sends no PROXY header).")
		w.d("listen", h.Address+":"+strconv.Itoa(ACMERelayPort))
	} else {
		w.d("listen", h.Address+":"+strconv.Itoa(s.App.HTTPPort))
	}
}

// acmeConf renders ACMEConfPath: a whole nginx configuration that loads
// the ACME servers only.
func (g *gen) acmeConf() ([]byte, error) {
	w := g.newWriter()
	w.comment("nginx for the first certificate only. nginx.conf's HTTPS servers cannot start before",
		"the certificate exists, so cloud-init runs this one (nginx -c /"+ACMEConfPath+")",
		"while certbot --webroot obtains it, then stops it and starts nginx.service. Renewals go",
		"through nginx.service's own port-80 server, which serves the same webroot.")
	w.d("user", "www-data")
	w.d("pid", w.path(ACMEPIDPath))
	w.d("error_log", w.path("/var/log/nginx/error.log"))
	w.open("events")
	w.close()
	w.open("http")
	w.d("access_log", w.path("/var/log/nginx/access.log"))
	w.d("include", w.path("/etc/nginx/hacompile-acme.d/*.conf"))
	w.close()
	return w.result()
}

// acmeSite renders an app's server for ACMEConfPath: the listeners,
// names, webroot and relay of its port-80 server (appRedirectServer),
// and 404 for anything else.
func (g *gen) acmeSite(h *schema.Host) ([]byte, error) {
	s := g.s
	w := g.newWriter()
	w.comment(fmt.Sprintf("The %s app's ACME challenges while cloud-init obtains the first certificate (/%s).", s.App.Name, ACMEConfPath))
	g.acmeLocation(w, g.openAppHTTPServer(w, h))
	w.open("location", "/")
	w.d("return", "404")
	w.close()
	w.close()
	return w.result()
}

// appServer renders an app host's main server: HTTPS when TLS ends on
// the app hosts, otherwise plain HTTP for the balancer, with the client
// address taken from the trusted proxies' X-Forwarded-For.
func (g *gen) appServer(w *writer, h *schema.Host, trusted []string) {
	s := g.s
	tls := g.tlsOnApp()
	w.blank()
	w.open("server")
	var pp []string
	if s.ProxyProtocol() {
		pp = []string{"proxy_protocol"}
	}
	if tls {
		g.listenHTTP2(w, h.Address+":443", pp...)
	} else {
		w.d(append([]string{"listen", h.Address + ":" + strconv.Itoa(s.App.HTTPPort)}, pp...)...)
	}
	w.d("server_name", g.names(w))
	if tls {
		w.d("include", w.path("/"+TLSSnippetPath))
		g.siteCert(w)
	}
	w.blank()
	xff, proto := "$proxy_add_x_forwarded_for", "$scheme"
	if s.ProxyProtocol() && len(trusted) > 0 {
		g.realIPFromPROXY(w, trusted)
		// The client's own X-Forwarded-For is not believed: the address
		// the balancer's PROXY header gave is the whole chain.
		xff = "$remote_addr"
		if s.TLS.Enabled() && !tls {
			proto = "$hacompile_forwarded_proto"
		}
	} else if len(trusted) > 0 {
		w.comment("The client's address, from the trusted proxies' X-Forwarded-For, for logs and the app.")
		for _, a := range trusted {
			w.d("set_real_ip_from", w.word(a))
		}
		w.d("real_ip_header", "X-Forwarded-For")
		w.d("real_ip_recursive", "on")
		w.blank()
		// The real-IP module has already checked the chain against the
		// trusted proxies: pass on the one address it settled on.
		xff = "$remote_addr"
		if s.TLS.Enabled() {
			proto = "$hacompile_forwarded_proto"
		}
	}
	w.d("include", w.path("/"+HeadersSnippetPath))
	if tls {
		g.hsts(w)
	}
	w.d("client_max_body_size", s.App.ClientMaxBodySize)
	g.errorPages(w, "")
	w.blank()
	g.proxyHeaders(w, xff, proto)
	w.blank()
	g.proxyLocations(w, g.appUpstream(), g.rateLimitOnApp())
	g.healthLocation(w, g.appUpstream())
	for _, st := range slices.SortedFunc(slices.Values(s.App.Static), func(a, b schema.StaticDir) int { return strings.Compare(a.URL, b.URL) }) {
		w.open("location", w.word(st.URL))
		w.d("alias", w.path(strings.TrimRight(st.Dir, "/")+"/"))
		w.d("expires", st.Expires)
		w.d("access_log", "off")
		w.d("add_header", "Cache-Control", w.quote("public"))
		w.comment("add_header above stops inheritance of the server's headers: repeat them.")
		w.d("include", w.path("/"+HeadersSnippetPath))
		if tls {
			g.hsts(w)
		}
		w.close()
	}
	g.errorLocations(w, g.s.Balancer.Kind == "cloud", "")
	w.close()
}

// lbSite renders the nginx balancer's site.
func (g *gen) lbSite(h *schema.Host) ([]byte, error) {
	s := g.s
	w := g.newWriter()
	w.comment(fmt.Sprintf("Load balancer for the %s app: spreads requests over the app hosts' nginx.", s.App.Name))
	g.lbPoolNote(w)
	g.lbPool(w)
	if g.rateLimitOnLB() {
		g.rateLimitZones(w)
	}

	if g.tlsOnLB() {
		relay := g.acmeRelay(w, h, g.lbHosts, 80, s.App.Name+"_lb_acme_relay")
		g.lbRedirectServer(w, g.names(w), relay)
	}
	w.blank()
	w.open("server")
	g.lbListen(w)
	w.d("server_name", g.names(w))
	g.lbTLS(w)
	w.d("client_max_body_size", s.App.ClientMaxBodySize)
	g.errorPages(w, "")
	w.blank()
	g.proxyHeaders(w, "$proxy_add_x_forwarded_for", "$scheme")
	g.nextUpstreamNote(w)
	g.nextUpstream(w)
	w.blank()
	g.proxyLocations(w, g.lbUpstream(), g.rateLimitOnLB())
	g.errorLocations(w, false, "")
	w.close()
	return w.result()
}

// lbPoolNote says how the nginx balancer judges the app hosts.
func (g *gen) lbPoolNote(w *writer) {
	s := g.s
	w.comment("nginx (open source) has no active health checks; it judges each host by its answers.",
		fmt.Sprintf("max_fails=%d: that many failed attempts (an error, a timeout, or a 502/503/504 listed in",
			s.Balancer.MaxFails),
		"proxy_next_upstream below) within fail_timeout leave the host out for fail_timeout.",
		fmt.Sprintf("fail_timeout=%ds (balancer.fail_timeout, by default health.rise x health.interval):", s.Balancer.FailTimeout),
		"after it, nginx gives the host one live request, and a success puts it back at once,",
		"so a recovered host returns within fail_timeout. A failed probe costs an idempotent",
		"request nothing: it is passed on to the next host.")
}

// lbPool writes the upstream of the app's hosts on the nginx balancer.
func (g *gen) lbPool(w *writer) {
	s := g.s
	w.open("upstream", g.lbUpstream())
	switch s.Balancer.Algorithm {
	case "leastconn":
		w.d("least_conn")
	case "source":
		w.d("ip_hash")
	}
	for _, h := range g.appHosts {
		if h.Drain {
			w.comment("down: "+h.Name+" is draining (hosts."+h.Name+".drain). It gets no new requests; those",
				"running at the reload finish on the old workers.")
			w.d("server", h.Address+":"+strconv.Itoa(s.App.HTTPPort), "down")
			continue
		}
		w.d("server", h.Address+":"+strconv.Itoa(s.App.HTTPPort),
			"max_fails="+strconv.Itoa(s.Balancer.MaxFails), "fail_timeout="+artifact.Seconds(s.Balancer.FailTimeout))
	}
	g.keepalive(w)
	w.close()
}

// lbRedirectServer writes the balancer's port-80 server when it
// terminates TLS: ACME challenges, and a redirect for everything else.
func (g *gen) lbRedirectServer(w *writer, names, relay string) {
	w.blank()
	w.open("server")
	w.d("listen", "80")
	w.d("server_name", names)
	w.blank()
	if g.s.TLS.Mode == "certbot" {
		g.acmeLocation(w, relay)
	}
	g.redirectLocation(w)
	w.close()
}

// lbListen writes the balancer's main server's listeners.
func (g *gen) lbListen(w *writer, params ...string) {
	if g.tlsOnLB() {
		g.listenHTTP2(w, "443", params...)
		return
	}
	w.d(append([]string{"listen", "80"}, params...)...)
}

// lbTLS writes the balancer's main server's TLS settings, for the host
// names of g's stack (or app view).
func (g *gen) lbTLS(w *writer) {
	if !g.tlsOnLB() {
		return
	}
	w.d("include", w.path("/"+TLSSnippetPath))
	g.siteCert(w)
	w.comment("The app hosts add the other security headers; HSTS belongs to the HTTPS edge.")
	g.hsts(w)
}

// nextUpstreamNote says when the balancer passes a request on to
// another app host, and writes the errors that do.
func (g *gen) nextUpstreamNote(w *writer) {
	w.comment("Retry another app host when one cannot answer: a connection error or timeout, or a",
		"502/503/504 from its nginx (a dead or overloaded app). non_idempotent is deliberately not",
		"listed: a POST, PATCH or LOCK that reached a host is never passed on, so none is sent",
		"twice (one whose connection failed was never sent, and is passed on).",
		"Each app host is tried at most once per request, and retries stop once the read timeout",
		"has passed in all, so a slow request is not multiplied.")
	w.d("proxy_next_upstream", "error", "timeout", "http_502", "http_503", "http_504")
}

// nextUpstream bounds the retries of the app's requests: each of its
// hosts once, within its read timeout.
func (g *gen) nextUpstream(w *writer) {
	w.d("proxy_next_upstream_tries", strconv.Itoa(len(g.appHosts)))
	w.d("proxy_next_upstream_timeout", artifact.Seconds(g.s.Balancer.Timeouts.Read))
}

// rateLimitOnLB reports whether the nginx balancer limits request rates:
// it is the first nginx a client meets.
func (g *gen) rateLimitOnLB() bool { return g.s.RateLimit != nil && g.s.Balancer.Kind == "nginx" }

// rateLimitOnApp reports whether the app hosts' nginx limits request
// rates: behind HAProxy or a cloud balancer, where the real-IP module
// has the client's address from the trusted proxy.
func (g *gen) rateLimitOnApp() bool { return g.s.RateLimit != nil && g.s.Balancer.Kind != "nginx" }

// rateZone names the limit_req zone of rate_limit (i < 0) or of
// rate_limit.locations[i].
func (g *gen) rateZone(i int) string {
	if i < 0 {
		return g.s.App.Name + "_rate"
	}
	return g.s.App.Name + "_rate_" + strconv.Itoa(i)
}

// rateLimitZones declares the limit_req zones; a site file is included
// in the http block, where they belong.
func (g *gen) rateLimitZones(w *writer) {
	g.rateLimitNote(w)
	g.rateZoneDecls(w)
}

func (g *gen) rateLimitNote(w *writer) {
	rl := g.s.RateLimit
	w.blank()
	w.comment("Request rate limits per client address (rate_limit): each zone keeps one",
		"state per address ("+rl.ZoneSize+" holds about "+zoneClients(rl.ZoneSize)+").")
}

// rateZoneDecls declares the zones of g's app.
func (g *gen) rateZoneDecls(w *writer) {
	rl := g.s.RateLimit
	w.d("limit_req_zone", "$binary_remote_addr", "zone="+g.rateZone(-1)+":"+rl.ZoneSize, "rate="+rl.Rate)
	for i, l := range rl.Locations {
		w.d("limit_req_zone", "$binary_remote_addr", "zone="+g.rateZone(i)+":"+rl.ZoneSize, "rate="+l.Rate)
	}
}

// zoneClients is how many client states a zone of size holds: one
// state takes 64 bytes on 64-bit platforms (nginx's limit_req docs: 1m
// holds about 16,000).
func zoneClients(size string) string {
	n, _ := strconv.Atoi(size[:len(size)-1])
	if size[len(size)-1] == 'm' {
		n *= 1024
	}
	return strconv.Itoa(n*1024/64) + " addresses"
}

// limitReq writes a limit_req and the status refused requests get.
func (g *gen) limitReq(w *writer, zone string, burst int, nodelay bool) {
	args := []string{"limit_req", "zone=" + zone, "burst=" + strconv.Itoa(burst)}
	if nodelay {
		args = append(args, "nodelay")
	}
	w.d(args...)
	w.d("limit_req_status", strconv.Itoa(g.s.RateLimit.Status))
}

// proxyLocations writes location / and, when rates are limited here,
// the paths with a rate of their own. Only proxied requests count:
// static files, health checks, ACME challenges and error pages are
// other locations and stay unlimited.
func (g *gen) proxyLocations(w *writer, upstream string, limit bool) {
	w.open("location", "/")
	if limit {
		rl := g.s.RateLimit
		g.limitReq(w, g.rateZone(-1), rl.Burst, rl.NoDelay)
	}
	w.d("proxy_pass", "http://"+upstream)
	w.close()
	if !limit {
		return
	}
	for i, l := range g.s.RateLimit.Locations {
		w.open("location", w.word(l.Path))
		g.limitReq(w, g.rateZone(i), l.Burst, l.NoDelay)
		w.d("proxy_pass", "http://"+upstream)
		w.close()
	}
}

// proxyHeaders writes the proxy settings at server level, where every
// proxying location inherits them (none sets its own).
func (g *gen) proxyHeaders(w *writer, xff, proto string) {
	g.proxySetHeaders(w, xff, proto)
	g.proxyTimeouts(w)
}

// proxySetHeaders writes the HTTP version and headers of proxied
// requests.
func (g *gen) proxySetHeaders(w *writer, xff, proto string) {
	w.comment("HTTP/1.1 with the Connection header cleared, so upstream connections are kept alive.")
	w.d("proxy_http_version", "1.1")
	w.d("proxy_set_header", "Connection", `""`)
	w.d("proxy_set_header", "Host", "$host")
	w.d("proxy_set_header", "X-Real-IP", "$remote_addr")
	w.d("proxy_set_header", "X-Forwarded-For", xff)
	w.d("proxy_set_header", "X-Forwarded-Proto", proto)
	w.d("proxy_set_header", "X-Forwarded-Host", "$host")
}

// proxyTimeouts writes the proxy timeouts of g's stack (or app view).
func (g *gen) proxyTimeouts(w *writer) {
	t := g.s.Balancer.Timeouts
	w.d("proxy_connect_timeout", artifact.Seconds(t.Connect))
	w.d("proxy_read_timeout", artifact.Seconds(t.Read))
	w.d("proxy_send_timeout", artifact.Seconds(t.Send))
}

// acmeLocation serves HTTP-01 challenges from the webroot. It must
// precede the redirect: Let's Encrypt fetches the token over plain HTTP.
// Behind a balancer, a reserved IP or DNS, the challenge for one host's
// certificate may arrive at a sibling; a token this host lacks is asked
// of the siblings (relay names their upstream, "" for none), once: a
// relayed request is never relayed again.
func (g *gen) acmeLocation(w *writer, relay string) {
	w.open("location", "^~", acmePrefix)
	w.d("root", w.path(g.s.TLS.ACMERoot))
	w.d("default_type", "text/plain")
	if relay != "" {
		w.d("try_files", "$uri", "@acme_relay")
	}
	w.close()
	if relay == "" {
		return
	}
	w.open("location", "@acme_relay")
	w.open("if", "($http_x_hacompile_acme_relay)")
	w.d("return", "404")
	w.close()
	w.d("proxy_pass", "http://"+relay)
	w.d("proxy_set_header", "Host", "$host")
	w.d("proxy_set_header", "X-Hacompile-ACME-Relay", "1")
	w.d("proxy_connect_timeout", "5s")
	w.d("proxy_next_upstream", "error", "timeout", "http_404")
	w.close()
}

// acmeRelay writes the upstream of a host's siblings' port-80 servers
// and returns its name, or "" when the host has no sibling or the stack
// does not use ACME.
func (g *gen) acmeRelay(w *writer, self *schema.Host, siblings []*schema.Host, port int, name string) string {
	if g.s.TLS.Mode != "certbot" {
		return ""
	}
	var peers []string
	for _, h := range siblings {
		if h.Name != self.Name {
			peers = append(peers, h.Address+":"+strconv.Itoa(port))
		}
	}
	if len(peers) == 0 {
		return ""
	}
	w.blank()
	w.comment("The other hosts that answer ACME challenges for this name, each with its own certbot.")
	w.open("upstream", name)
	for _, p := range peers {
		w.d("server", p, "max_fails=0")
	}
	w.close()
	return name
}

// redirectLocation sends everything else to HTTPS. It is a location,
// not a server-level return, which would run before location matching
// and swallow the ACME challenges too.
func (g *gen) redirectLocation(w *writer) {
	w.open("location", "/")
	w.d("return", "301", "https://$host$request_uri")
	w.close()
}

// healthLocation passes the balancer's health check to the app without
// filling the access log.
func (g *gen) healthLocation(w *writer, upstream string) {
	w.open("location", "=", w.word(g.s.Balancer.Health.Path))
	w.d("proxy_pass", "http://"+upstream)
	w.d("access_log", "off")
	w.close()
}

// errorStatuses are the nginx-generated responses (an app's own error
// responses pass through untouched) answered with the static page.
var errorStatuses = []string{"500", "502", "503", "504"}

// errorPages points each status at its own named location so that the
// status survives: with one shared URI, a missing page file turns a 502
// into a 404 (Debian's nginx ships no 50x.html), hiding the outage from
// clients and monitoring alike.
//
// label tells apart the locations of several apps in one server ("" for
// one app, "web_" for app web's).
func (g *gen) errorPages(w *writer, label string) {
	for _, code := range errorStatuses {
		w.d("error_page", code, "@error_"+label+code)
	}
}

// errorLocations serve the page hacompile renders for the status, or
// nginx's built-in one should the file be missing, with the original
// status either way.
func (g *gen) errorLocations(w *writer, closeConn bool, label string) {
	for i, code := range errorStatuses {
		w.open("location", "@error_"+label+code)
		w.d("root", w.path(g.s.App.ErrorPages))
		w.d("try_files", "/"+code+".html", "="+code)
		if closeConn {
			if i == 0 {
				w.comment("Behind the provider's balancer a client's connection stays with this host until it",
					"closes: once this host's app fails, the error closes it, so the client's next request",
					"comes through the balancer anew and reaches a host its health check still passes.")
			}
			w.d("keepalive_timeout", "0")
		}
		w.close()
	}
}

// ErrorPagePath is the page served for status code, relative to the host
// root.
func ErrorPagePath(s *schema.Stack, code string) string {
	return strings.TrimPrefix(path.Join(s.App.ErrorPages, code+".html"), "/")
}

// errorTitles are the pages' words for each status.
var errorTitles = map[string][2]string{
	"500": {"Internal Server Error", "Something went wrong on our side."},
	"502": {"Bad Gateway", "The service is not answering right now."},
	"503": {"Service Unavailable", "The service is busy or down for maintenance."},
	"504": {"Gateway Timeout", "The service took too long to answer."},
}

// errorPageFiles are the static pages of errorLocations: plain HTML, no
// outside assets (the page is shown when parts of the site are down).
// They take effect on the next request that needs them, with no reload.
func (g *gen) errorPageFiles(files []artifact.File, h *schema.Host) []artifact.File {
	for _, code := range errorStatuses {
		p := ErrorPagePath(g.s, code)
		content, _ := g.once(p, func() ([]byte, error) { return []byte(g.errorPage(code)), nil })()
		files = append(files, artifact.File{Host: h.Name, Path: p, Content: content, Mode: 0o644, Owner: "root:root"})
	}
	return files
}

// errorPage is the page of one status, the same on every host.
func (g *gen) errorPage(code string) string {
	t := errorTitles[code]
	title := html.EscapeString(code + " " + t[0])
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n")
	b.WriteString("<!-- " + strings.TrimSuffix(artifact.Header("", g.s), "\n")[1:] + " -->\n")
	b.WriteString("<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	b.WriteString("<title>" + title + "</title>\n")
	b.WriteString("<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.5rem}</style>\n")
	b.WriteString("</head>\n<body>\n<h1>" + title + "</h1>\n")
	b.WriteString("<p>" + html.EscapeString(t[1]) + " Please try again in a moment.</p>\n</body>\n</html>\n")
	return b.String()
}

// names renders the server_name arguments.
func (g *gen) names(w *writer) string {
	var out []string
	for _, n := range g.serverNames() {
		out = append(out, w.word(n))
	}
	return strings.Join(out, " ")
}

// writer builds one nginx configuration file. Values that come from the
// stack go through word/quote/path, which record the first value that
// cannot be rendered safely instead of writing it.
type writer struct {
	g     *gen // whose buffer b is, given back by result
	b     bytes.Buffer
	depth int
	opt   artifact.Options
	err   error
}

func (g *gen) newWriter() *writer {
	w := &writer{g: g, opt: g.opt}
	buf := g.buf
	if buf == nil {
		buf = make([]byte, 0, 8192) // most files are a few KB; growing by doubling cost more
	}
	g.buf = nil // a writer opened before this one is done keeps it
	w.b = *bytes.NewBuffer(buf[:0])
	w.b.WriteString(artifact.Header("#", g.s))
	return w
}

func (w *writer) indent(extra int) string { return strings.Repeat("    ", w.depth+extra) }

// line writes one indented line: the parts, joined by sep, then end.
// Written piece by piece: a fleet's configs are millions of lines.
func (w *writer) line(sep, end string, parts ...string) {
	for range w.depth {
		w.b.WriteString("    ")
	}
	for i, p := range parts {
		if i > 0 {
			w.b.WriteString(sep)
		}
		w.b.WriteString(p)
	}
	w.b.WriteString(end)
}

// d writes one simple directive.
func (w *writer) d(args ...string) {
	w.line(" ", ";\n", args...)
}

// open starts a block directive; close ends it.
func (w *writer) open(args ...string) {
	w.line(" ", " {\n", args...)
	w.depth++
}

func (w *writer) close() {
	w.depth--
	w.line("", "}\n")
}

func (w *writer) comment(lines ...string) {
	for _, l := range lines {
		w.line("", "\n", "# ", l)
	}
}

func (w *writer) blank() { w.b.WriteString("\n") }

func (w *writer) keep(s string, err error) string {
	if err != nil && w.err == nil {
		w.err = err
	}
	return s
}

func (w *writer) word(s string) string  { return w.keep(word(s)) }
func (w *writer) quote(s string) string { return w.keep(Quote(s)) }

// path renders an absolute host path, seen through the sandbox root.
func (w *writer) path(p string) string { return w.word(w.opt.P(p)) }

// result is the file written, copied out at its length; the writer's
// buffer goes back to its gen for the next file.
func (w *writer) result() ([]byte, error) {
	defer func() { w.g.buf = w.b.Bytes() }()
	if w.err != nil {
		return nil, w.err
	}
	return bytes.Clone(w.b.Bytes()), nil
}

// listenHTTP2 renders an HTTPS listener with HTTP/2 in the syntax of the
// target's nginx: from 1.25.1 "http2 on;" is a server directive and the
// listen parameter is deprecated (nginx -t warns); before, the listen
// parameter is the only way.
func (g *gen) listenHTTP2(w *writer, addr string, params ...string) {
	if g.rel.NginxHTTP2Directive() {
		w.d(append([]string{"listen", addr, "ssl"}, params...)...)
		w.d("http2", "on")
		return
	}
	w.d(append([]string{"listen", addr, "ssl", "http2"}, params...)...)
}

// ACMERelayPort is the plain-HTTP port app hosts relay ACME challenges
// to each other on when their port-80 listener expects the cloud
// balancer's PROXY header.
const ACMERelayPort = 8088

// realIPFromPROXY takes the client's address from the cloud balancer's
// PROXY header, believed only from the balancer's range, so logs, the
// app's X-Forwarded-For and per-client rate limits see the client.
func (g *gen) realIPFromPROXY(w *writer, trusted []string) {
	if len(trusted) == 0 {
		return
	}
	w.comment("The client's address, from the cloud balancer's PROXY protocol header (only from its range).")
	for _, a := range trusted {
		w.d("set_real_ip_from", w.word(a))
	}
	w.d("real_ip_header", "proxy_protocol")
	w.blank()
}

// Reads implements artifact.Scoper: an app host trusts the balancers'
// addresses, and relays ACME challenges to the other app hosts when it
// ends TLS itself with certbot; an nginx balancer lists the app hosts and
// relays ACME challenges to the other balancers.
func (Gen) Reads(s *schema.Stack, h *schema.Host) []string {
	switch {
	case h.Has("lb") && s.Balancer.Kind == "nginx":
		return appAndLB
	case h.Has("app") && s.TLS.Enabled() && s.TLS.Terminate == "app" && s.TLS.Mode == "certbot":
		return appAndLB
	case h.Has("app"):
		return lbOnly
	}
	return nil
}

var (
	appAndLB = []string{"app", "lb"}
	lbOnly   = []string{"lb"}
)

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string {
	return []string{"aliases", "app", "balancer", "domain", "name", "os", "provider", "rate_limit", "tls", "tuning"}
}
