package nginx

import (
	"bytes"
	"maps"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// allStacks are the example stacks and the inline ones.
func allStacks(t *testing.T) []*schema.Stack {
	t.Helper()
	stacks := testtool.LoadStacksFor(t, testtool.HostOS())
	for _, name := range slices.Sorted(maps.Keys(inlineStacks)) {
		stacks = append(stacks, loadInline(t, name))
	}
	return stacks
}

// runsNginx is, independently of the generator, which hosts run nginx.
func runsNginx(s *schema.Stack, h *schema.Host) bool {
	return h.Has("app") || (h.Has("lb") && s.Balancer.Kind == "nginx")
}

// tlsServers counts the HTTPS servers a host should have.
func tlsServers(s *schema.Stack, h *schema.Host) int {
	n := 0
	if s.TLS.Mode != "none" {
		if h.Has("app") && s.TLS.Terminate == "app" {
			n++
		}
		if h.Has("lb") && s.Balancer.Kind == "nginx" && s.TLS.Terminate == "balancer" {
			n++
		}
	}
	return n
}

// TestNginxAcceptsEveryHost renders every nginx host of every stack into
// a sandbox and has the real nginx check it, twice: with a lone
// self-signed certificate, where the one tolerated warning is nginx
// saying it cannot staple OCSP without the issuer (once per HTTPS
// server, naming the sandbox certificate); and with a CA-issued chain
// naming an OCSP responder, where nothing at all may be reported.
func TestNginxAcceptsEveryHost(t *testing.T) {
	nginx := testtool.Require(t, "nginx", "nginx")
	for _, s := range allStacks(t) {
		for _, name := range s.HostNames() {
			h := s.Hosts[name]
			if !runsNginx(s, h) {
				continue
			}
			for _, mode := range []certMode{selfSigned, caChain} {
				t.Run(s.Name+"/"+name+"/"+[]string{"self-signed", "ca-chain"}[mode], func(t *testing.T) {
					root := t.TempDir()
					files, err := Gen{}.Generate(s, optionsFor(root))
					if err != nil {
						t.Fatal(err)
					}
					hf := hostFiles(t, files)[name]
					writeSandbox(t, s, root, hf, mode)
					lines, err := nginxTest(t, nginx, root)
					if err != nil {
						t.Fatalf("nginx -t failed: %v\n%s", err, strings.Join(lines, "\n"))
					}
					// Warnings come as "nginx: [warn] msg" or, once the
					// error log is set up, "2026/01/02 15:04:05 [warn] 12#12: msg".
					var tolerated []string
					if mode == selfSigned && s.TLS.OCSPStapling {
						for range tlsServers(s, h) {
							tolerated = append(tolerated, `[warn] "ssl_stapling" ignored, issuer certificate not found for certificate "`+root+s.TLS.Certificate+`"`)
						}
					}
					conf := root + "/" + ConfPath
					want := map[string]bool{
						"nginx: the configuration file " + conf + " syntax is ok":   true,
						"nginx: configuration file " + conf + " test is successful": true,
					}
					for _, l := range lines {
						switch {
						case want[l]:
							delete(want, l)
						case len(tolerated) > 0 && logMessage(l) == tolerated[0]:
							tolerated = tolerated[1:]
						case os.Geteuid() != 0 && strings.HasPrefix(logMessage(l), `[warn] the "user" directive makes sense only if the master process runs with super-user privileges, ignored in `+conf+":"):
							// Only when the tests do not run as root.
						default:
							t.Errorf("unexpected nginx -t output: %s", l)
						}
					}
					if len(want) > 0 || len(tolerated) > 0 {
						t.Errorf("nginx -t output lacks %v and the expected warnings %v:\n%s", slices.Collect(maps.Keys(want)), tolerated, strings.Join(lines, "\n"))
					}
					if _, ok := hf[ACMEConfPath]; ok {
						// The first certificate's nginx: the same check,
						// before any certificate exists, and nothing to say.
						if err := os.RemoveAll(root + "/etc/letsencrypt"); err != nil {
							t.Fatal(err)
						}
						acme := root + "/" + ACMEConfPath
						lines, err := nginxTestConf(t, nginx, root, ACMEConfPath)
						got := strings.Join(lines, "\n")
						wantOut := "nginx: the configuration file " + acme + " syntax is ok\nnginx: configuration file " + acme + " test is successful"
						if err != nil || got != wantOut {
							t.Errorf("nginx -t -c %s: %v\n%s", ACMEConfPath, err, got)
						}
					}
				})
			}
		}
	}
}

var logPrefix = regexp.MustCompile(`^(nginx: |\d{4}/\d\d/\d\d \d\d:\d\d:\d\d )(\[\w+\] )(\d+#\d+: )?`)

// logMessage reduces an nginx log line to "[level] message".
func logMessage(l string) string {
	m := logPrefix.FindStringSubmatchIndex(l)
	if m == nil {
		return l
	}
	return l[m[4]:m[5]] + l[m[1]:]
}

// TestFilesPerHost proves which hosts get nginx and exactly which files,
// and that every file carries the header, mode, owner and actions.
func TestFilesPerHost(t *testing.T) {
	for _, s := range allStacks(t) {
		files, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		byHost := hostFiles(t, files)
		for _, name := range s.HostNames() {
			h := s.Hosts[name]
			var want []string
			if runsNginx(s, h) {
				want = append(want, "etc/nginx/nginx.conf")
				if h.Has("app") {
					want = append(want, "etc/nginx/conf.d/"+s.App.Name+".conf", "etc/nginx/snippets/hacompile-security-headers.conf")
				}
				if h.Has("lb") && s.Balancer.Kind == "nginx" {
					want = append(want, "etc/nginx/conf.d/"+s.App.Name+"-lb.conf")
				}
				if tlsServers(s, h) > 0 {
					want = append(want, "etc/nginx/snippets/hacompile-tls.conf")
				}
				if h.Has("app") && s.TLS.Mode == "certbot" && s.TLS.Terminate == "app" {
					// The first certificate's nginx and its server.
					want = append(want, "etc/nginx/hacompile-acme.conf", "etc/nginx/hacompile-acme.d/"+s.App.Name+".conf")
				}
				for _, code := range []string{"500", "502", "503", "504"} {
					want = append(want, ErrorPagePath(s, code))
				}
			}
			slices.Sort(want)
			got := slices.Sorted(maps.Keys(byHost[name]))
			if !slices.Equal(got, want) {
				t.Errorf("%s/%s: files %v, want %v", s.Name, name, got, want)
			}
		}
		header := artifact.Header("#", s)
		for i, f := range files {
			where := s.Name + "/" + f.Host + "/" + f.Path
			mustf(t, f.Mode == 0o644 && f.Owner == "root:root", "%s: mode %v owner %q", where, f.Mode, f.Owner)
			if strings.HasPrefix(f.Path, "etc/nginx/hacompile-acme") {
				// Read by the first certificate's nginx only.
				mustf(t, f.Validate.String() == "nginx -t -c /etc/nginx/hacompile-acme.conf" && f.Reload.IsZero(), "%s: validate %q reload %q", where, f.Validate.String(), f.Reload.String())
				mustf(t, strings.HasPrefix(string(f.Content), header), "%s: no generated-by header", where)
			} else if strings.HasSuffix(f.Path, ".html") {
				// A static page: served as it is on the next error.
				mustf(t, f.Validate.IsZero() && f.Reload.IsZero(), "%s: validate %q reload %q", where, f.Validate.String(), f.Reload.String())
				mustf(t, strings.Contains(string(f.Content), strings.TrimSpace(header[1:])), "%s: no generated-by header", where)
			} else {
				mustf(t, f.Validate.String() == "nginx -t" && f.Reload.String() == "systemctl reload nginx", "%s: validate %q reload %q", where, f.Validate.String(), f.Reload.String())
				mustf(t, strings.HasPrefix(string(f.Content), header), "%s: no generated-by header", where)
			}
			mustf(t, artifact.CheckPath(f.Path) == nil, "%s: bad path", where)
			if i > 0 {
				p := files[i-1]
				mustf(t, p.Host < f.Host || (p.Host == f.Host && p.Path < f.Path), "%s: files not sorted by host and path", where)
			}
		}
	}
}

// TestDeterministic renders every stack several times (Go randomises
// map order on each range) and requires identical bytes.
func TestDeterministic(t *testing.T) {
	for _, s := range allStacks(t) {
		first, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			again, err := Gen{}.Generate(s, artifact.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != len(first) {
				t.Fatalf("%s: %d files, then %d", s.Name, len(first), len(again))
			}
			for i := range first {
				if first[i].Host != again[i].Host || first[i].Path != again[i].Path || !bytes.Equal(first[i].Content, again[i].Content) {
					t.Fatalf("%s: %s/%s differs between renders", s.Name, first[i].Host, first[i].Path)
				}
			}
		}
	}
}

// pathArgs are the directives whose arguments are filesystem paths, and
// which argument.
var pathArgs = map[string]int{
	"include": 0, "pid": 0, "error_log": 0, "access_log": 0,
	"ssl_certificate": 0, "ssl_certificate_key": 0, "ssl_dhparam": 0,
	"root": 0, "alias": 0, "client_body_temp_path": 0, "proxy_temp_path": 0,
	"fastcgi_temp_path": 0, "uwsgi_temp_path": 0, "scgi_temp_path": 0,
}

// TestSandboxRootCoversEveryPath proves every filesystem path in the
// output goes through Options.P: a render under a root differs from the
// plain render only by the root in front of paths, and every path
// argument (and unix socket) starts with the root.
func TestSandboxRootCoversEveryPath(t *testing.T) {
	const root = "/SANDBOX"
	for _, s := range allStacks(t) {
		plain, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		boxed, err := Gen{}.Generate(s, artifact.Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		for i := range plain {
			if got := strings.ReplaceAll(string(boxed[i].Content), root, ""); got != string(plain[i].Content) {
				t.Errorf("%s/%s/%s: the rooted render is not the plain one with the root inserted", s.Name, plain[i].Host, plain[i].Path)
			}
		}
		for host, hf := range hostFiles(t, boxed) {
			for p, content := range hf {
				if path.Ext(p) == ".pem" || path.Ext(p) == ".html" {
					continue
				}
				ds, err := parseConf(p, content)
				if err != nil {
					t.Fatal(err)
				}
				walk(ds, func(d *directive) {
					arg := ""
					if i, ok := pathArgs[d.name]; ok && len(d.args) > i && d.args[i] != "off" {
						arg = d.args[i]
					}
					if d.name == "server" && len(d.args) > 0 && strings.HasPrefix(d.args[0], "unix:") {
						arg = strings.TrimPrefix(d.args[0], "unix:")
					}
					if arg != "" && !strings.HasPrefix(arg, root+"/") {
						t.Errorf("%s/%s/%s: %s: path %s is not under the sandbox root", s.Name, host, p, d, arg)
					}
				})
			}
		}
	}
}

// TestStructure reads each host's configuration back as nginx would
// (includes expanded) and checks what matters about it.
func TestStructure(t *testing.T) {
	m := loadMozilla(t)
	const root = "/SANDBOX"
	for _, s := range allStacks(t) {
		files, err := Gen{}.Generate(s, artifact.Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		byHost := hostFiles(t, files)
		for _, name := range s.HostNames() {
			if byHost[name] == nil {
				continue
			}
			t.Run(s.Name+"/"+name, func(t *testing.T) {
				hc, err := loadHostConf(root, byHost[name])
				if err != nil {
					t.Fatal(err)
				}
				checkMain(t, s, hc)
				checkTLSSnippet(t, s, m, byHost[name])
				checkServers(t, s, s.Hosts[name], hc)
			})
		}
	}
}

func checkMain(t *testing.T, s *schema.Stack, hc *hostConf) {
	mustf(t, one(hc.top, "user") != nil && one(hc.top, "user").args[0] == "www-data", "user is not www-data")
	mustf(t, one(hc.top, "worker_rlimit_nofile").args[0] == strconv.Itoa(s.Tuning.Nofile), "worker_rlimit_nofile is not tuning.nofile")
	ev := one(hc.top, "events")
	mustf(t, ev != nil && one(ev.block, "worker_connections").args[0] == strconv.Itoa(s.Tuning.NginxWorkerConnections),
		"worker_connections is not tuning.nginx_worker_connections")
	var includes []string
	walk(hc.top, func(d *directive) {
		if d.name == "include" {
			includes = append(includes, d.args[0])
		}
	})
	// Everything rendered was included; the only include left is mime.types.
	mustf(t, slices.Equal(includes, []string{hc.root + "/etc/nginx/mime.types"}), "unexpanded includes %v", includes)
	raw, _ := parseConf(ConfPath, hc.files[ConfPath])
	walk(raw, func(d *directive) {
		if d.name == "include" && strings.Contains(d.args[0], "sites-") {
			t.Errorf("nginx.conf includes %s: Debian's default site would load", d.args[0])
		}
	})
	http := hc.http()
	gz := one(http, "gzip_types")
	mustf(t, gz != nil && !slices.Contains(gz.args, "text/html") && slices.Contains(gz.args, "application/javascript"), "gzip_types %v", gz)
	mustf(t, one(http, "server_tokens").args[0] == "off", "server_tokens not off")
}

// checkTLSSnippet compares the TLS lines with the reference JSON itself,
// not with the generator's table.
func checkTLSSnippet(t *testing.T, s *schema.Stack, m mozilla, files map[string]string) {
	content, ok := files[TLSSnippetPath]
	if !ok {
		return
	}
	ref := m.Configurations[s.TLS.Profile]
	rel := osrelease.MustLookup(s.OS)
	lines := strings.Split(content, "\n")
	mustf(t, slices.Contains(lines, "ssl_protocols "+strings.Join(ref.TLSVersions, " ")+";"), "ssl_protocols line is not the %s profile's:\n%s", s.TLS.Profile, content)
	if len(ref.Ciphers.OpenSSL) > 0 {
		mustf(t, slices.Contains(lines, "ssl_ciphers "+strings.Join(ref.Ciphers.OpenSSL, ":")+";"), "ssl_ciphers line is not the %s profile's:\n%s", s.TLS.Profile, content)
	} else {
		mustf(t, !strings.Contains(content, "ssl_ciphers"), "modern profile sets ssl_ciphers")
	}
	for _, l := range []string{
		"ssl_prefer_server_ciphers off;", "ssl_ecdh_curve " + strings.Join(ref.CurvesFor(rel.OpenSSL[0], rel.OpenSSL[1]), ":") + ";",
		"ssl_session_timeout 1d;", "ssl_session_cache shared:MozSSL:10m;", "ssl_session_tickets off;",
		"ssl_certificate /SANDBOX" + s.TLS.Certificate + ";", "ssl_certificate_key /SANDBOX" + s.TLS.Key + ";",
	} {
		mustf(t, slices.Contains(lines, l), "TLS snippet lacks %q", l)
	}
	staples := slices.Contains(lines, "ssl_stapling on;") && slices.Contains(lines, "ssl_stapling_verify on;")
	mustf(t, staples == s.TLS.OCSPStapling, "OCSP stapling rendered %v, tls.ocsp_stapling %v", staples, s.TLS.OCSPStapling)
	mustf(t, strings.Contains(content, "ssl_stapling") == staples, "stapling half rendered:\n%s", content)
	// A DH group only while a DHE cipher remains (none in 6.0).
	hasDH := slices.Contains(lines, "ssl_dhparam /SANDBOX/etc/nginx/ffdhe2048.pem;")
	mustf(t, hasDH == ref.HasDHE(), "ssl_dhparam present %v for profile %s", hasDH, s.TLS.Profile)
	_, pem := files["etc/nginx/ffdhe2048.pem"]
	mustf(t, pem == hasDH, "ffdhe2048.pem rendered %v, used %v", pem, hasDH)
}

func checkServers(t *testing.T, s *schema.Stack, h *schema.Host, hc *hostConf) {
	http := hc.http()
	upstreams := map[string]*directive{}
	for _, u := range find(http, "upstream") {
		upstreams[u.args[0]] = u
	}
	isLB := h.Has("lb") && s.Balancer.Kind == "nginx"
	tlsOn := s.TLS.Mode != "none"
	var sawTLS, sawRedirect int
	for _, srv := range hc.servers() {
		listen := find(srv.block, "listen")
		onLB := len(listen) > 0 && !strings.Contains(listen[0].args[0], ":")
		tls := isTLS(srv)
		if tls {
			sawTLS++
			for _, l := range listen {
				mustf(t, slices.Contains(l.args, "http2"), "TLS listen %s without http2", l)
			}
			mustf(t, one(srv.block, "ssl_protocols") != nil, "TLS server without the TLS snippet")
		}
		names := one(srv.block, "server_name")
		mustf(t, names != nil && slices.Equal(names.args, append([]string{s.Domain}, s.Aliases...)), "server_name %v", names)

		// HSTS only on TLS servers, and there (server and every location
		// with headers of its own) when the stack asks for it.
		hstsWant := tls && s.TLS.HSTS
		checkHeaders := func(where string, ds []*directive) {
			hdrs := headerNames(ds)
			mustf(t, slices.Contains(hdrs, "Strict-Transport-Security") == hstsWant, "%s: HSTS present %v, want %v", where, !hstsWant, hstsWant)
			if !onLB && !isRedirectServer(srv) {
				for _, sh := range securityHeaders {
					mustf(t, slices.Contains(hdrs, sh[0]), "%s: lacks %s", where, sh[0])
				}
			}
		}
		checkHeaders(srv.String()+" "+listen[0].args[0], srv.block)
		for _, d := range srv.block {
			if d.name == "add_header" && d.args[0] == "Strict-Transport-Security" {
				mustf(t, d.args[1] == "max-age="+strconv.Itoa(s.TLS.HSTSMaxAge), "HSTS value %q", d.args[1])
			}
		}
		serverProxy := find(srv.block, "proxy_set_header")
		for _, loc := range find(srv.block, "location") {
			where := "location " + strings.Join(loc.args, " ")
			if len(headerNames(loc.block)) > 0 {
				checkHeaders(where, loc.block)
			}
			if pp := one(loc.block, "proxy_pass"); pp != nil && loc.args[0] != "@acme_relay" {
				// proxy_set_header is inherited only when a location sets none.
				eff := find(loc.block, "proxy_set_header")
				if len(eff) == 0 {
					eff = serverProxy
				}
				hdr := map[string]string{}
				for _, d := range eff {
					hdr[d.args[0]] = d.args[1]
				}
				mustf(t, hdr["Connection"] == "" && len(eff) > 0 && hasKey(hdr, "Connection"), "%s: Connection not cleared", where)
				mustf(t, hdr["Host"] == "$host", "%s: Host %q", where, hdr["Host"])
				for _, k := range []string{"X-Real-IP", "X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
					mustf(t, hdr[k] != "", "%s: %s not set", where, k)
				}
				if len(find(srv.block, "set_real_ip_from")) > 0 {
					mustf(t, hdr["X-Forwarded-For"] == "$remote_addr", "%s: behind trusted proxies X-Forwarded-For is %q, want the verified $remote_addr", where, hdr["X-Forwarded-For"])
				} else {
					mustf(t, hdr["X-Forwarded-For"] == "$proxy_add_x_forwarded_for", "%s: X-Forwarded-For is %q", where, hdr["X-Forwarded-For"])
				}
				// With the cloud balancer's PROXY protocol and TLS on the app
				// hosts, nothing forwards a scheme: $scheme is the truth.
				fromPROXY := s.ProxyProtocol() && s.TLS.Terminate == "app"
				if onLB || tls || !tlsOn || fromPROXY || len(find(srv.block, "set_real_ip_from")) == 0 {
					mustf(t, hdr["X-Forwarded-Proto"] == "$scheme", "%s: X-Forwarded-Proto %q, want $scheme", where, hdr["X-Forwarded-Proto"])
				} else {
					mustf(t, hdr["X-Forwarded-Proto"] == "$hacompile_forwarded_proto", "%s: behind a TLS balancer X-Forwarded-Proto is %q", where, hdr["X-Forwarded-Proto"])
				}
				hv := one(srv.block, "proxy_http_version")
				mustf(t, hv != nil && hv.args[0] == "1.1", "%s: proxy_http_version not 1.1", where)
				target := strings.TrimPrefix(pp.args[0], "http://")
				mustf(t, upstreams[target] != nil, "%s: proxy_pass to unknown upstream %s", where, target)
			}
		}
		if isRedirectServer(srv) {
			sawRedirect++
			checkRedirectServer(t, s, h, hc, srv, upstreams)
		}
		if onLB && !isRedirectServer(srv) {
			checkLBServer(t, s, srv)
		} else if !tls && !isRedirectServer(srv) {
			checkRealIP(t, s, srv)
		}
		if !tls && !isRedirectServer(srv) {
			mustf(t, len(listen) == 1 && !strings.Contains(listen[0].String(), "ssl"), "plain server %v", listen)
		}
		if cmbs := one(srv.block, "client_max_body_size"); !isRedirectServer(srv) {
			mustf(t, cmbs != nil && cmbs.args[0] == s.App.ClientMaxBodySize, "client_max_body_size missing or wrong")
		}
	}
	mustf(t, sawTLS == tlsServers(s, h), "%d TLS servers, want %d", sawTLS, tlsServers(s, h))
	mustf(t, sawRedirect == tlsServers(s, h), "%d redirect servers, want one per TLS server (%d)", sawRedirect, tlsServers(s, h))

	// The balancer's pool is exactly the app hosts.
	if lbu := upstreams[s.App.Name+"_app_hosts"]; isLB {
		if lbu == nil {
			t.Fatalf("lb host has no app host pool")
		}
		var got, want []string
		for _, d := range find(lbu.block, "server") {
			got = append(got, d.String())
		}
		for _, n := range s.HostNames() {
			if a := s.Hosts[n]; a.Has("app") {
				want = append(want, "server "+a.Address+":"+strconv.Itoa(s.App.HTTPPort)+
					" max_fails="+strconv.Itoa(s.Balancer.MaxFails)+" fail_timeout="+strconv.Itoa(s.Balancer.FailTimeout)+"s")
			}
		}
		mustf(t, slices.Equal(got, want), "pool %v, want %v", got, want)
		method := map[string]string{"roundrobin": "", "leastconn": "least_conn", "source": "ip_hash"}[s.Balancer.Algorithm]
		first := lbu.block[0].name
		if method == "" {
			mustf(t, first == "server", "roundrobin pool starts with %s", first)
		} else {
			mustf(t, first == method, "pool method %s, want %s first", first, method)
		}
		checkKeepalive(t, s, lbu)
	} else {
		mustf(t, lbu == nil, "non-lb host has the balancer pool")
	}
	if lu := upstreams[s.App.Name+"_local"]; h.Has("app") {
		want := "server 127.0.0.1:" + strconv.Itoa(s.App.Bind.Port)
		if s.App.Bind.Socket != "" {
			want = "server unix:" + hc.root + s.App.Bind.Socket
		}
		want += " max_fails=0"
		mustf(t, lu != nil && lu.block[0].String() == want, "local upstream %v, want %s", lu, want)
		mustf(t, len(lu.block) > 1 && lu.block[1].String() == want+" backup", "local upstream %v: want the same server again as a backup (a second try on a new connection)", lu)
		// The app server closes idle connections itself: none are kept.
		mustf(t, one(lu.block, "keepalive") == nil, "local upstream %s keeps idle connections to the app server", lu.args[0])
	}
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

func checkKeepalive(t *testing.T, s *schema.Stack, u *directive) {
	ka := one(u.block, "keepalive")
	if s.Balancer.Keepalive == 0 {
		mustf(t, ka == nil, "upstream %s: keepalive set though balancer.keepalive is 0", u.args[0])
		return
	}
	mustf(t, ka != nil && ka.args[0] == strconv.Itoa(s.Balancer.Keepalive), "upstream %s: keepalive %v", u.args[0], ka)
	mustf(t, u.block[len(u.block)-1] == ka, "upstream %s: keepalive must follow the balancing method and servers", u.args[0])
}

// isRedirectServer reports whether a server sends everything to HTTPS.
func isRedirectServer(srv *directive) bool {
	found := false
	walk(srv.block, func(d *directive) {
		if d.name == "return" && d.args[0] == "301" {
			found = true
		}
	})
	return found
}

// checkRedirectServer: in certbot mode the ACME challenge location
// comes first, relaying unknown tokens to exactly the host's siblings;
// the redirect lives in location / (a server-level return would run
// before location matching and redirect the challenges too).
func checkRedirectServer(t *testing.T, s *schema.Stack, h *schema.Host, hc *hostConf, srv *directive, upstreams map[string]*directive) {
	mustf(t, !isTLS(srv), "redirect on a TLS server")
	mustf(t, one(srv.block, "return") == nil, "server-level return swallows ACME challenges")
	l := find(srv.block, "listen")[0].args[0]
	onLB := !strings.Contains(l, ":")
	// The siblings answering challenges for the same name.
	var siblings []string
	port := strconv.Itoa(s.App.HTTPPort)
	if !onLB && s.ProxyProtocol() {
		// Port 80 expects the balancer's PROXY header: siblings relay to the plain port.
		port = strconv.Itoa(ACMERelayPort)
	}
	role := "app"
	if onLB {
		port, role = "80", "lb"
	}
	for _, n := range s.HostNames() {
		if o := s.Hosts[n]; o.Has(role) && n != h.Name {
			siblings = append(siblings, "server "+o.Address+":"+port+" max_fails=0")
		}
	}
	acme, redirect, relay := -1, -1, -1
	for i, d := range srv.block {
		if d.name != "location" {
			continue
		}
		switch strings.Join(d.args, " ") {
		case "^~ /.well-known/acme-challenge/":
			acme = i
			r := one(d.block, "root")
			mustf(t, r != nil && r.args[0] == hc.root+s.TLS.ACMERoot, "ACME root %v, want %s", r, hc.root+s.TLS.ACMERoot)
			tf := one(d.block, "try_files")
			mustf(t, (tf != nil) == (len(siblings) > 0), "try_files %v with siblings %v", tf, siblings)
		case "@acme_relay":
			relay = i
			cond := one(d.block, "if")
			mustf(t, cond != nil && strings.Join(cond.args, " ") == "($http_x_hacompile_acme_relay)" &&
				one(cond.block, "return").args[0] == "404", "relay does not stop relayed requests")
			mark := false
			for _, p := range find(d.block, "proxy_set_header") {
				mark = mark || strings.Join(p.args, " ") == "X-Hacompile-ACME-Relay 1"
			}
			mustf(t, mark, "relayed requests are not marked")
			up := upstreams[strings.TrimPrefix(one(d.block, "proxy_pass").args[0], "http://")]
			var got []string
			for _, sd := range find(up.block, "server") {
				got = append(got, sd.String())
			}
			mustf(t, slices.Equal(got, siblings), "relay peers %v, want the siblings %v", got, siblings)
		case "/":
			redirect = i
			r := one(d.block, "return")
			mustf(t, r != nil && strings.Join(r.args, " ") == "301 https://$host$request_uri", "redirect %v", r)
		}
	}
	if s.TLS.Mode == "certbot" {
		mustf(t, acme >= 0 && redirect > acme, "ACME location at %d, redirect at %d: want the ACME location first", acme, redirect)
		mustf(t, (relay >= 0) == (len(siblings) > 0), "relay location %v, siblings %v", relay >= 0, siblings)
	} else {
		mustf(t, acme < 0 && relay < 0 && redirect >= 0, "tls.mode %s: ACME location %d, relay %d, redirect %d", s.TLS.Mode, acme, relay, redirect)
	}
	if onLB {
		mustf(t, l == "80", "balancer redirect server listens on %s", l)
	} else {
		mustf(t, l == h.Address+":"+strconv.Itoa(s.App.HTTPPort), "app redirect server listens on %s", l)
	}
}

func checkLBServer(t *testing.T, s *schema.Stack, srv *directive) {
	nu := one(srv.block, "proxy_next_upstream")
	mustf(t, nu != nil && strings.Join(nu.args, " ") == "error timeout http_502 http_503 http_504", "proxy_next_upstream %v", nu)
	apps := len(s.HostsWithRole("app"))
	nt := one(srv.block, "proxy_next_upstream_tries")
	mustf(t, nt != nil && nt.args[0] == strconv.Itoa(apps), "proxy_next_upstream_tries %v, want %d", nt, apps)
	for _, k := range []struct{ d, v string }{
		{"proxy_connect_timeout", artifact.Seconds(s.Balancer.Timeouts.Connect)},
		{"proxy_read_timeout", artifact.Seconds(s.Balancer.Timeouts.Read)},
		{"proxy_send_timeout", artifact.Seconds(s.Balancer.Timeouts.Send)},
	} {
		d := one(srv.block, k.d)
		mustf(t, d != nil && d.args[0] == k.v, "%s %v, want %s", k.d, d, k.v)
	}
	mustf(t, len(find(srv.block, "set_real_ip_from")) == 0, "the balancer trusts X-Forwarded-For from clients")
}

// checkRealIP: a plain app server believes X-Forwarded-For from the lb
// hosts (nginx and HAProxy balancers) and balancer.trusted_proxies only.
func checkRealIP(t *testing.T, s *schema.Stack, srv *directive) {
	var want []string
	if s.Balancer.Kind != "cloud" {
		for _, h := range s.HostsWithRole("lb") {
			want = append(want, h.Address)
		}
	}
	want = append(want, s.Balancer.TrustedProxies...)
	slices.Sort(want)
	var got []string
	for _, d := range find(srv.block, "set_real_ip_from") {
		got = append(got, d.args[0])
	}
	mustf(t, slices.Equal(got, slices.Compact(want)), "set_real_ip_from %v, want %v", got, want)
	if len(want) > 0 {
		mustf(t, one(srv.block, "real_ip_header").args[0] == "X-Forwarded-For", "real_ip_header")
		mustf(t, one(srv.block, "real_ip_recursive").args[0] == "on", "real_ip_recursive")
	}
	l := find(srv.block, "listen")[0].args[0]
	mustf(t, strings.HasSuffix(l, ":"+strconv.Itoa(s.App.HTTPPort)), "app server listens on %s, want app.http_port", l)
	health := false
	for _, loc := range find(srv.block, "location") {
		if strings.Join(loc.args, " ") == "= "+s.Balancer.Health.Path {
			health = one(loc.block, "proxy_pass") != nil && one(loc.block, "access_log").args[0] == "off"
		}
	}
	mustf(t, health, "no exact health location passed to the app with access_log off")
	for _, st := range s.App.Static {
		found := false
		for _, loc := range find(srv.block, "location") {
			if len(loc.args) == 1 && loc.args[0] == st.URL {
				found = one(loc.block, "alias").args[0] == "/SANDBOX"+strings.TrimRight(st.Dir, "/")+"/" &&
					one(loc.block, "expires").args[0] == st.Expires
			}
		}
		mustf(t, found, "static %s not served from %s", st.URL, st.Dir)
	}
}

// TestErrors proves the stacks nginx cannot serve are refused with the
// field to fix, and that an unsafe value never reaches a file.
func TestErrors(t *testing.T) {
	cases := []struct {
		name  string
		stack string
		edit  func(*schema.Stack)
		want  string
	}{
		{"nginx balancer with TLS on the app hosts", "files-combined", func(s *schema.Stack) { s.TLS.Terminate = "app" },
			`tls.terminate: "app" cannot work with an nginx balancer`},
		{"lb and app sharing port 80", "files-combined", func(s *schema.Stack) { s.App.HTTPPort = 80 },
			`hosts.edge.roles: "app" and "lb" on one host need app.http_port (80) to differ from the balancer's ports [80 443]`},
		{"plain HTTP on 443 beside HTTPS", "modern-cloud", func(s *schema.Stack) { s.App.HTTPPort = 443 },
			"hosts.app1: app.http_port: 443 is the port the app hosts serve HTTPS on"},
		{"static at /", "plain-perl", func(s *schema.Stack) { s.App.Static[0].URL = "/" },
			`app.static[0].url: "/" would serve every request`},
		{"static twice", "plain-perl", func(s *schema.Stack) { s.App.Static = append(s.App.Static, s.App.Static[0]) },
			"app.static[1].url: /assets/ is listed twice"},
		{"more connections than files", "plain-perl", func(s *schema.Stack) { s.Tuning.NginxWorkerConnections = s.Tuning.Nofile + 1 },
			"tuning.nginx_worker_connections: 65537 connections per worker exceed tuning.nofile (65536"},
		{"balancer without app hosts", "plain-perl", func(s *schema.Stack) {
			for _, h := range s.Hosts {
				h.Roles = slices.DeleteFunc(h.Roles, func(r string) bool { return r == "app" })
			}
		}, `hosts: the nginx balancer needs at least one host with role "app"`},
		{"dollar in a path", "plain-perl", func(s *schema.Stack) { s.App.Static[0].Dir = "/srv/$document_root" },
			`hosts.web1: etc/nginx/conf.d/blog.conf: value "/srv/$document_root/" contains "$"`},
		{"newline in a name", "plain-perl", func(s *schema.Stack) { s.Aliases = []string{"a.example.org;\nevil"} },
			`contains a control character`},
		{"bad trusted proxy", "plain-perl", func(s *schema.Stack) { s.Balancer.TrustedProxies = []string{"10.0.0.0/99"} },
			`balancer.trusted_proxies: "10.0.0.0/99" is neither an address nor a CIDR range`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := loadInline(t, c.stack)
			c.edit(s)
			s.Reindex() // edits may change roles
			files, err := Gen{}.Generate(s, artifact.Options{})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v (%d files), want an error containing %q", err, len(files), c.want)
			}
			if files != nil {
				t.Errorf("files returned with the error")
			}
		})
	}
}

// TestNamesBucketSize proves server_names_hash_bucket_size against nginx
// at the boundary of its rule: with a second server on the same listen
// address (when nginx hashes names), the computed size is accepted for
// names of 46, 47 and 203 characters, and nginx's default 64 is refused
// from 47 characters on, so the directive is needed exactly there.
func TestNamesBucketSize(t *testing.T) {
	nginx := testtool.Require(t, "nginx", "nginx")
	for _, n := range []int{46, 47, 203} {
		domain := strings.Repeat("x", n-12) + ".example.com"
		if n == 203 {
			domain = strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".example.com"
		}
		s := loadSource(t, "names", `
name: "names"
domain: "`+domain+`"
tls: mode: "none"
hosts: app1: {address: "192.0.2.11", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
app: {runtime: "python", module: "app:app", working_dir: "/srv/app"}
`)
		for _, forced := range []string{"", "64"} {
			root := t.TempDir()
			files, err := Gen{}.Generate(s, optionsFor(root))
			if err != nil {
				t.Fatal(err)
			}
			hf := hostFiles(t, files)["app1"]
			if forced != "" {
				re := regexp.MustCompile(`server_names_hash_bucket_size \d+;`)
				hf[ConfPath] = re.ReplaceAllString(hf[ConfPath], "server_names_hash_bucket_size "+forced+";")
			}
			hf["etc/nginx/conf.d/zz-second.conf"] = "server {\n    listen 192.0.2.11:80;\n    server_name second.example.com;\n}\n"
			writeSandbox(t, s, root, hf, selfSigned)
			lines, err := nginxTest(t, nginx, root)
			out := strings.Join(lines, "\n")
			wantOK := forced == "" || n <= 46
			if wantOK && err != nil {
				t.Errorf("%d-character name, bucket %q: nginx -t failed:\n%s", n, forced, out)
			}
			if !wantOK && (err == nil || !strings.Contains(out, "could not build server_names_hash")) {
				t.Errorf("%d-character name with nginx's default bucket: want nginx to refuse, got %v:\n%s", n, err, out)
			}
		}
	}
}

// TestSameFilesShared: nginx.conf, the snippets and the error pages are
// the same on every host of a stack, so the hosts share one copy of
// their bytes (capped, so appending to one never writes into another)
// instead of a fleet holding one per host.
func TestSameFilesShared(t *testing.T) {
	shared := 0
	for _, s := range allStacks(t) {
		files, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		first := map[string][]byte{}
		for _, f := range files {
			if f.Path != ConfPath && f.Path != HeadersSnippetPath && f.Path != TLSSnippetPath && !strings.HasSuffix(f.Path, ".html") {
				continue
			}
			mustf(t, len(f.Content) > 0 && cap(f.Content) == len(f.Content), "%s/%s/%s: %d bytes, capacity %d", s.Name, f.Host, f.Path, len(f.Content), cap(f.Content))
			b, ok := first[f.Path]
			if !ok {
				first[f.Path] = f.Content
				continue
			}
			shared++
			mustf(t, &b[0] == &f.Content[0], "%s/%s/%s: a copy of its own, not the first host's", s.Name, f.Host, f.Path)
		}
	}
	if shared == 0 {
		t.Fatal("no stack has two nginx hosts")
	}
}
