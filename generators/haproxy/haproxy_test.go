package haproxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// allStacks returns the example HAProxy stacks and the in-test ones.
func allStacks(t *testing.T) map[string]*schema.Stack {
	t.Helper()
	out := map[string]*schema.Stack{}
	for _, s := range exampleStacks(t) {
		out["example/"+s.Name] = s
	}
	for _, c := range cases {
		out[c.name] = load(t, stackSrc(c.extra))
	}
	return out
}

// TestHAProxyAcceptsConfig renders every stack into a sandbox, builds the
// PEM with the rendered script, and requires haproxy -c (run as the
// file's own Validate command) to accept the result without a single
// warning or alert.
func TestHAProxyAcceptsConfig(t *testing.T) {
	testtool.Require(t, "haproxy", "haproxy")
	stacks := allStacks(t)
	for _, name := range slices.Sorted(mapsKeys(stacks)) {
		s := stacks[name]
		t.Run(name, func(t *testing.T) {
			sb := newSandbox(t, s)
			problems, err := sb.haproxyCheck(t)
			if err != nil {
				t.Fatalf("haproxy -c failed: %v\n%s", err, sb.config())
			}
			if len(problems) > 0 {
				t.Fatalf("haproxy -c reported:\n%s\n\nconfig:\n%s", strings.Join(problems, "\n"), sb.config())
			}
			cfg := sb.files[ConfigPath]
			cmd := exec.Command("/bin/sh", "-c", cfg.Validate.String())
			cmd.Env = append(os.Environ(), PasswordVar+"="+testPassword)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("Validate %q: %v\n%s", cfg.Validate.String(), err, out)
			}
			if terminatesTLS(s) {
				pem, err := os.ReadFile(sb.path(PEMPath(s)))
				if err != nil {
					t.Fatalf("the certificate script built no PEM: %v", err)
				}
				if n := bytes.Count(pem, []byte("PRIVATE KEY-----")); n != 2 {
					t.Errorf("combined PEM holds %d key markers, want one key (BEGIN+END)", n)
				}
			}
		})
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestBootstrapWithoutCertificate: on a new balancer the certificate
// directory is empty until certbot's first run, which needs port 80
// served by a running HAProxy. The configuration must then still be
// valid, with exactly HAProxy's warning that TLS handshakes will fail.
func TestBootstrapWithoutCertificate(t *testing.T) {
	testtool.Require(t, "haproxy", "haproxy")
	s := load(t, stackSrc(cases[0].extra))
	sb := newSandbox(t, s)
	if err := os.Remove(sb.path(PEMPath(s))); err != nil {
		t.Fatal(err)
	}
	problems, err := sb.haproxyCheck(t)
	if err != nil {
		t.Fatalf("haproxy -c with an empty certificate directory: %v", err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "no SSL certificate specified for bind ':443'") ||
		!strings.Contains(problems[0], "ssl connections will fail") {
		t.Fatalf("want exactly the no-certificate warning, got:\n%s", strings.Join(problems, "\n"))
	}
	// Without the directory, HAProxy would not start at all: the
	// rendered dotfile is what makes push create it.
	note, ok := sb.files[CertDirNote]
	if !ok || !strings.HasPrefix(filepath.Base(CertDirNote), ".") {
		t.Fatalf("no dotfile keeping %s", CertDir)
	}
	if !strings.Contains(string(note.Content), "start with a dot") {
		t.Errorf("%s does not explain itself:\n%s", CertDirNote, note.Content)
	}
}

// TestPasswordNeverWritten: whatever the environment holds when hacompile
// runs, the files carry only the reference to the variable.
func TestPasswordNeverWritten(t *testing.T) {
	t.Setenv(PasswordVar, testPassword)
	stacks := allStacks(t)
	for _, name := range slices.Sorted(mapsKeys(stacks)) {
		s := stacks[name]
		files := generate(t, s, artifact.Options{})
		for p, f := range files {
			if bytes.Contains(f.Content, []byte(testPassword)) {
				t.Errorf("%s: %s contains the stats password", name, p)
			}
		}
		cfg := string(files[ConfigPath].Content)
		want := "    stats auth " + s.Balancer.Stats.User + `:"${HAPROXY_STATS_PASSWORD}"` + "\n"
		if strings.Count(cfg, want) != 1 {
			t.Errorf("%s: want the line %q once in:\n%s", name, want, cfg)
		}
		if n := len(regexp.MustCompile(`(?m)^\s*stats auth `).FindAllString(cfg, -1)); n != 1 {
			t.Errorf("%s: %d stats auth lines, want 1", name, n)
		}
		// The file is optional so a new balancer balances from its first
		// boot; without it the stats page must refuse every request.
		drop := string(files[DropInPath].Content)
		if !strings.Contains(drop, "\nEnvironmentFile=-"+s.Balancer.EnvironmentFile+"\n") {
			t.Errorf("%s: the drop-in does not load %s optionally:\n%s", name, s.Balancer.EnvironmentFile, drop)
		}
		if !strings.Contains(cfg, "http-request deny deny_status 503 unless { env(HAPROXY_STATS_PASSWORD),length gt 0 }") {
			t.Errorf("%s: the stats page is not refused while the password is unset:\n%s", name, cfg)
		}
	}
}

// TestStatsOnLoopbackByDefault: a stack that says nothing about the stats
// page gets it on 127.0.0.1 only.
func TestStatsOnLoopbackByDefault(t *testing.T) {
	for _, s := range append(exampleStacks(t), load(t, stackSrc(""))) {
		cfg := string(generate(t, s, artifact.Options{})[ConfigPath].Content)
		sec := section(t, cfg, "listen stats")
		if !slices.Contains(sec, "bind 127.0.0.1:8404") {
			t.Errorf("%s: stats listener not on 127.0.0.1:8404:\n%s", s.Name, strings.Join(sec, "\n"))
		}
		for _, l := range sec {
			if strings.HasPrefix(l, "bind ") && l != "bind 127.0.0.1:8404" {
				t.Errorf("%s: extra stats bind %q", s.Name, l)
			}
			if strings.HasPrefix(l, "stats admin") {
				t.Errorf("%s: the stats page must be read-only, found %q", s.Name, l)
			}
		}
	}
}

// section returns the keyword lines of one section ("backend app"),
// without comments, trimmed.
func section(t testing.TB, cfg, head string) []string {
	t.Helper()
	var out []string
	in := false
	for _, l := range strings.Split(cfg, "\n") {
		if l != "" && l[0] != ' ' && l[0] != '#' {
			in = l == head
			continue
		}
		if in {
			if tl := strings.TrimSpace(l); tl != "" && !strings.HasPrefix(tl, "#") {
				out = append(out, tl)
			}
		}
	}
	if out == nil {
		t.Fatalf("no section %q in:\n%s", head, cfg)
	}
	return out
}

// TestTLSFollowsProfile reads the expected global TLS lines straight from
// Mozilla's JSON, not from the Go copy the generator uses.
func TestTLSFollowsProfile(t *testing.T) {
	moz := testtool.MozillaTLS(t).Configurations
	for _, c := range cases {
		for _, osName := range osrelease.Names() {
			s := load(t, stackSrc(c.extra))
			s.OS = osName
			rel := osrelease.MustLookup(osName)
			files := generate(t, s, artifact.Options{})
			cfg := string(files[ConfigPath].Content)
			if !terminatesTLS(s) {
				if strings.Contains(cfg, "ssl-default-bind") || strings.Contains(cfg, " ssl crt ") {
					t.Errorf("%s: TLS settings in a balancer that does not terminate TLS:\n%s", c.name, cfg)
				}
				continue
			}
			p := moz[s.TLS.Profile]
			glob := section(t, cfg, "global")
			want := map[string]string{
				"ssl-default-bind-ciphersuites": strings.Join(p.Ciphersuites, ":"),
				"ssl-default-bind-curves":       strings.Join(p.CurvesFor(rel.OpenSSL[0], rel.OpenSSL[1]), ":"),
				"ssl-default-bind-options":      "prefer-client-ciphers ssl-min-ver " + p.TLSVersions[0] + " no-tls-tickets",
			}
			if len(p.Ciphers.OpenSSL) > 0 {
				want["ssl-default-bind-ciphers"] = strings.Join(p.Ciphers.OpenSSL, ":")
			}
			// A DH group file only while a DHE cipher remains (none in 6.0).
			if p.HasDHE() {
				want["ssl-dh-param-file"] = "/etc/haproxy/ffdhe2048.pem"
			}
			got := map[string]string{}
			for _, l := range glob {
				k, v, _ := strings.Cut(l, " ")
				if strings.HasPrefix(k, "ssl-") {
					got[k] = v
				}
			}
			if !mapsEqual(got, want) {
				t.Errorf("%s on %s (%s): global TLS lines\n got %v\nwant %v", c.name, osName, s.TLS.Profile, got, want)
			}
			for path := range files {
				if strings.Contains(path, "ffdhe") || strings.Contains(path, "dhparam") {
					t.Errorf("%s: a DH group file %s rendered, but the profile has no DHE cipher", c.name, path)
				}
			}
			fe := section(t, cfg, "frontend https")
			wantBind := "bind :443 ssl crt /" + CertDir + "/ strict-sni alpn h2,http/1.1"
			if !slices.Contains(fe, wantBind) {
				t.Errorf("%s: no %q in frontend https: %q", c.name, wantBind, fe)
			}
			hsts := `http-response set-header Strict-Transport-Security max-age=` + itoa(s.TLS.HSTSMaxAge)
			if slices.Contains(fe, hsts) != s.TLS.HSTS {
				t.Errorf("%s: HSTS line present=%v, tls.hsts=%v: %q", c.name, !s.TLS.HSTS, s.TLS.HSTS, fe)
			}
			if !slices.Contains(fe, "http-request set-header X-Forwarded-Proto https") {
				t.Errorf("%s: frontend https does not set X-Forwarded-Proto: %q", c.name, fe)
			}
		}
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestBackend: one server per app host, in host-name order, at the app's
// http_port; the health check asks for the stack's path with its Host.
func TestBackend(t *testing.T) {
	stacks := allStacks(t)
	for _, name := range slices.Sorted(mapsKeys(stacks)) {
		s := stacks[name]
		cfg := string(generate(t, s, artifact.Options{})[ConfigPath].Content)
		for _, a := range s.Apps {
			checked := "backend " + Backend(s, a)
			if passesTLS(s) {
				checked = "backend app_tls"
			}
			be := section(t, cfg, checked)
			var servers, want []string
			for _, l := range be {
				if strings.HasPrefix(l, "server ") {
					servers = append(servers, l)
				}
			}
			for _, h := range s.AppHosts(a) {
				n := h.Name
				if passesTLS(s) {
					want = append(want, "server "+n+" "+h.Address+":443 check check-ssl check-sni "+s.Domain+" verify none")
				} else {
					want = append(want, "server "+n+" "+h.Address+":"+itoa(a.HTTPPort)+" check")
				}
			}
			if !slices.Equal(servers, want) {
				t.Errorf("%s: servers\n got %q\nwant %q", name, servers, want)
			}
			for _, l := range []string{
				"option httpchk",
				"http-check send meth GET uri " + s.Balancer.Health.Path + " ver HTTP/1.1 hdr Host " + s.AppDomains(a)[0],
				"http-check expect status 200",
				"balance " + s.Balancer.Algorithm,
			} {
				if !slices.Contains(be, l) {
					t.Errorf("%s: %s lacks %q: %q", name, checked, l, be)
				}
			}
			if slices.Contains(be, "hash-type consistent") != (s.Balancer.Algorithm == "source") {
				t.Errorf("%s: hash-type consistent must come with balance source only: %q", name, be)
			}
			observe := "layer7"
			if passesTLS(s) {
				observe = "layer4"
			}
			iv := itoa(s.Balancer.Health.Interval) + "s"
			ds := "default-server inter " + iv + " fastinter 250ms downinter " + iv + " fall " + itoa(s.Balancer.Health.Fall) +
				" rise " + itoa(s.Balancer.Health.Rise) + " observe " + observe + " error-limit 10 on-error mark-down"
			if s.Balancer.Slowstart > 0 {
				ds += " slowstart " + itoa(s.Balancer.Slowstart) + "s"
			}
			if !slices.Contains(be, ds) {
				t.Errorf("%s: want %q in %q", name, ds, be)
			}
		}
		def := section(t, cfg, "defaults")
		for _, l := range []string{
			"timeout connect " + itoa(s.Balancer.Timeouts.Connect) + "s",
			"timeout client " + itoa(s.Balancer.Timeouts.Read) + "s",
			"timeout check " + itoa(int(s.Balancer.Health.Timeout)/1000) + "s",
			"retries " + itoa(s.Balancer.Retries),
		} {
			if !slices.Contains(def, l) {
				t.Errorf("%s: defaults lack %q: %q", name, l, def)
			}
		}
		if strings.Contains(cfg, "errorfile") {
			t.Errorf("%s: errorfile lines name files nobody renders", name)
		}
		if !slices.Contains(section(t, cfg, "global"), "maxconn "+itoa(s.Balancer.MaxConn)) {
			t.Errorf("%s: global maxconn is not balancer.maxconn", name)
		}
	}
}

// TestPort80: with certbot on the balancer, the ACME exception is declared
// and used by the redirect before anything else can answer; without TLS,
// port 80 goes to the app.
func TestPort80(t *testing.T) {
	for _, c := range cases {
		s := load(t, stackSrc(c.extra))
		fe := section(t, string(generate(t, s, artifact.Options{})[ConfigPath].Content), "frontend http")
		idx := func(l string) int { return slices.Index(fe, l) }
		switch {
		case terminatesTLS(s) && s.TLS.Mode == "certbot":
			acl := idx("acl acme path_beg /.well-known/acme-challenge/")
			redirect := idx("http-request redirect scheme https code 301 unless acme")
			use := idx("use_backend acme if acme")
			if acl < 0 || redirect < 0 || use < 0 || !(acl < redirect && redirect < use) {
				t.Errorf("%s: want acl, then redirect unless acme, then use_backend acme: %q", c.name, fe)
			}
			if slices.ContainsFunc(fe, func(l string) bool { return strings.HasPrefix(l, "default_backend") }) {
				t.Errorf("%s: port 80 must not reach the app when HTTPS terminates here: %q", c.name, fe)
			}
			acme := section(t, string(generate(t, s, artifact.Options{})[ConfigPath].Content), "backend acme")
			wantACME := []string{"option redispatch 1", "retries 1", "server lb1 10.0.0.5:8888"}
			if !slices.Equal(acme, wantACME) {
				t.Errorf("%s: backend acme = %q", c.name, acme)
			}
		case terminatesTLS(s):
			if !slices.Equal(fe, []string{"bind :80", "http-request redirect scheme https code 301"}) {
				t.Errorf("%s: files mode port 80 = %q", c.name, fe)
			}
		default:
			if !slices.Equal(fe, []string{"bind :80", "http-request set-header X-Forwarded-Proto http", "default_backend app"}) {
				t.Errorf("%s: plain port 80 = %q", c.name, fe)
			}
		}
	}
}

// TestDeterministic: the same stack renders to the same bytes, in the
// same order, twice over.
func TestDeterministic(t *testing.T) {
	stacks := allStacks(t)
	for _, name := range slices.Sorted(mapsKeys(stacks)) {
		s := stacks[name]
		a, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(a) != len(b) {
			t.Fatalf("%s: %d files, then %d", name, len(a), len(b))
		}
		for i := range a {
			if a[i].Host != b[i].Host || a[i].Path != b[i].Path || !bytes.Equal(a[i].Content, b[i].Content) || a[i].Mode != b[i].Mode {
				t.Errorf("%s: file %d differs between two renders (%s/%s)", name, i, a[i].Host, a[i].Path)
			}
		}
		for _, f := range a {
			if !strings.Contains(string(f.Content), "Generated by hacompile from "+s.Source) {
				t.Errorf("%s: %s has no generated-file header", name, f.Path)
			}
		}
	}
}

// TestExampleStack pins what the seed article meant for do-perl-ha: its
// two droplets behind HAProxy, checked on /healthz, certbot on the
// balancer.
func TestExampleStack(t *testing.T) {
	var s *schema.Stack
	for _, e := range exampleStacks(t) {
		if e.Name == "do-perl-ha" {
			s = e
		}
	}
	if s == nil {
		t.Skip("stacks/do-perl-ha.cue is gone")
	}
	files, err := Gen{}.Generate(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got, want []string
	for _, f := range files {
		got = append(got, f.Host+"/"+f.Path)
	}
	for _, h := range s.HostsWithRole("lb") {
		for _, p := range []string{CertDirNote, ConfigPath, DeployHookPath, DropInPath} {
			want = append(want, h.Name+"/"+p)
		}
	}
	if len(want) < 8 || !slices.Equal(got, want) {
		t.Errorf("files\n got %q\nwant %q (two balancers)", got, want)
	}
	// Both balancers carry the same configuration but for the metrics
	// listener on each one's own address, and each one's ACME backend
	// reaches certbot on either.
	var cfgs []string
	for _, f := range files {
		if f.Path == ConfigPath {
			cfgs = append(cfgs, string(f.Content))
		}
	}
	for i, h := range []string{"10.30.0.5", "10.30.0.6"} {
		if m := section(t, cfgs[i], "frontend metrics"); !slices.Contains(m, "bind "+h+":8405") || !slices.Contains(m, "acl monitoring src 10.30.0.2") {
			t.Errorf("frontend metrics of %s = %q", h, m)
		}
	}
	if strings.Replace(cfgs[0], "bind 10.30.0.5:8405", "bind 10.30.0.6:8405", 1) != cfgs[1] {
		t.Errorf("the balancers' configurations differ beyond the metrics listener's address")
	}
	if acme := section(t, cfgs[0], "backend acme"); !slices.Equal(acme, []string{
		"option redispatch 1", "retries 2", "server lb1 10.30.0.5:8888", "server lb2 10.30.0.6:8888",
	}) {
		t.Errorf("backend acme = %q", acme)
	}
	cfg := string(generate(t, s, artifact.Options{})[ConfigPath].Content)
	for _, l := range []string{
		"    server app1 10.30.0.11:80 check\n",
		"    server app2 10.30.0.12:80 check\n",
		"    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host perl.example.com\n",
		"    stats socket /run/haproxy/admin.sock mode 660 level admin expose-fd listeners\n",
		"    ssl-default-bind-ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305\n",
		"    ssl-default-bind-curves X25519:prime256v1:secp384r1\n", // debian-12: OpenSSL 3.0
		"    http-response set-header Strict-Transport-Security max-age=63072000\n",
	} {
		if !strings.Contains(cfg, l) {
			t.Errorf("no %q in:\n%s", l, cfg)
		}
	}
	hook := string(generate(t, s, artifact.Options{})[DeployHookPath].Content)
	for _, l := range []string{
		"cert=/etc/letsencrypt/live/perl.example.com/fullchain.pem\n",
		"key=/etc/letsencrypt/live/perl.example.com/privkey.pem\n",
		`[ "$RENEWED_LINEAGE" != /etc/letsencrypt/live/perl.example.com ]`,
		"--deploy-hook /" + DeployHookPath,
		"--http-01-address 10.30.0.5 --http-01-port 8888",
	} {
		if !strings.Contains(hook, l) {
			t.Errorf("deploy hook lacks %q:\n%s", l, hook)
		}
	}
}

// TestDropIn: systemd reads the drop-in on top of Debian's own unit
// without a complaint, and the limit covers two descriptors per
// connection.
func TestDropIn(t *testing.T) {
	sa := testtool.Require(t, "systemd-analyze", "systemd")
	unit := "/lib/systemd/system/haproxy.service"
	debian, err := os.ReadFile(unit)
	if err != nil {
		testtool.Missing(t, fmt.Sprintf("Debian's %s is not here (apt-get install haproxy): %v", unit, err))
	}
	for _, extra := range []string{"", "balancer: maxconn: 100000", "tuning: nofile: 300000"} {
		s := load(t, stackSrc(extra))
		f := generate(t, s, artifact.Options{})[DropInPath]
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "haproxy.service.d"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "haproxy.service"), debian, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "haproxy.service.d", "hacompile.conf"), f.Content, 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(sa, "verify", "haproxy.service")
		// The trailing colon keeps the system's own unit directories
		// after ours, for the targets the unit names.
		cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":")
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, f.Content)
		}
		m := regexp.MustCompile(`(?m)^LimitNOFILE=(\d+)$`).FindStringSubmatch(string(f.Content))
		if m == nil {
			t.Fatalf("no LimitNOFILE in:\n%s", f.Content)
		}
		var n int
		_ = json.Unmarshal([]byte(m[1]), &n)
		if n < 2*s.Balancer.MaxConn || n < s.Tuning.Nofile {
			t.Errorf("%q: LimitNOFILE=%d, want ≥ 2×maxconn (%d) and ≥ tuning.nofile (%d)", extra, n, 2*s.Balancer.MaxConn, s.Tuning.Nofile)
		}
		if regexp.MustCompile(`(?m)^\s*ExecReload`).Match(f.Content) {
			t.Errorf("the drop-in overrides ExecReload, which Debian's unit already validates:\n%s", f.Content)
		}
		if !strings.Contains(string(debian), "ExecReload=/usr/sbin/haproxy -Ws -f $CONFIG -c") {
			t.Errorf("Debian's unit no longer validates before reloading; the drop-in must then add ExecReload=:\n%s", debian)
		}
	}
}

// TestCertScript exercises the rendered script's refusals: another
// certificate's renewal is none of its business, and a key that does not
// match keeps the old PEM.
func TestCertScript(t *testing.T) {
	s := load(t, stackSrc(cases[0].extra))
	sb := newSandbox(t, s)
	pemPath := sb.path(PEMPath(s))
	good, err := os.ReadFile(pemPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(pemPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("PEM mode %v, want 0600 (%v)", fi.Mode(), err)
	}
	cert, _ := os.ReadFile(sb.path(s.TLS.Certificate))
	key, _ := os.ReadFile(sb.path(s.TLS.Key))
	if !bytes.Equal(good, append(cert, key...)) {
		t.Errorf("PEM is not the chain followed by the key")
	}
	log, _ := os.ReadFile(sb.systemctlLog)
	if string(log) != "is-active --quiet haproxy\nreload haproxy\n" {
		t.Errorf("systemctl calls:\n%s", log)
	}

	// A renewal of some other lineage: nothing to do.
	if err := os.Remove(pemPath); err != nil {
		t.Fatal(err)
	}
	out, err := sb.runCertScript(t, []string{"RENEWED_LINEAGE=" + sb.path("/etc/letsencrypt/live/other.example.com")})
	if err != nil {
		t.Fatalf("other lineage: %v\n%s", err, out)
	}
	if _, err := os.Stat(pemPath); !os.IsNotExist(err) {
		t.Errorf("the script built the PEM for another lineage")
	}
	// Our own lineage, named the way certbot names it.
	out, err = sb.runCertScript(t, []string{"RENEWED_LINEAGE=" + sb.path(filepath.Dir(s.TLS.Certificate))})
	if err != nil {
		t.Fatalf("own lineage: %v\n%s", err, out)
	}
	if _, err := os.Stat(pemPath); err != nil {
		t.Errorf("own lineage: no PEM: %v", err)
	}

	// A key of another certificate: refused, old PEM kept.
	before, _ := os.ReadFile(pemPath)
	other := t.TempDir()
	writeCert(t, s, filepath.Join(other, "c.pem"), filepath.Join(other, "k.pem"))
	otherKey, _ := os.ReadFile(filepath.Join(other, "k.pem"))
	if err := os.WriteFile(sb.path(s.TLS.Key), otherKey, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err = sb.runCertScript(t, nil)
	if err == nil || !strings.Contains(string(out), "is not the key of") {
		t.Errorf("mismatched key: err=%v, output:\n%s", err, out)
	}
	after, _ := os.ReadFile(pemPath)
	if !bytes.Equal(before, after) {
		t.Errorf("a mismatched key replaced the PEM")
	}
	entries, _ := os.ReadDir(sb.path("/" + CertDir))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "."+s.Domain) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}

	// The script passes sh -n, its Validate command.
	f := sb.files[certScriptPath(s)]
	if out, err := exec.Command("/bin/sh", "-c", f.Validate.String()).CombinedOutput(); err != nil {
		t.Errorf("%s: %v\n%s", f.Validate.String(), err, out)
	}
	if f.Mode != 0o755 || !strings.HasPrefix(string(f.Content), "#!/bin/sh\n") {
		t.Errorf("script mode %v / first line wrong", f.Mode)
	}
}

// TestGenerateErrors: stacks HAProxy cannot serve fail with the stack
// and the reason; other balancer kinds get nothing from this generator.
func TestGenerateErrors(t *testing.T) {
	s := load(t, stackSrc(""))
	s.Balancer.Kind = "nginx"
	if files, err := (Gen{}).Generate(s, artifact.Options{}); err != nil || len(files) != 0 {
		t.Errorf("nginx balancer: %d files, %v", len(files), err)
	}
	s = load(t, stackSrc(""))
	delete(s.Hosts, "lb1")
	s.Reindex()
	if _, err := (Gen{}).Generate(s, artifact.Options{}); err == nil || err.Error() != `balancer.kind: is "haproxy" but no host has the role "lb" to run it` {
		t.Errorf("no lb host: %v", err)
	}
	s = load(t, stackSrc(""))
	s.TLS.Profile = "old"
	s.TLS.Mode, s.TLS.Terminate = "certbot", "balancer"
	if _, err := (Gen{}).Generate(s, artifact.Options{}); err == nil || !strings.Contains(err.Error(), `tls.profile: "old": no such Mozilla profile`) {
		t.Errorf("unknown profile: %v", err)
	}
	s = load(t, stackSrc(""))
	s.Hosts["lb1"].Roles = []string{"lb", "app"}
	s.Reindex()
	if _, err := (Gen{}).Generate(s, artifact.Options{}); err == nil ||
		err.Error() != "hosts.lb1: app.http_port (this host's nginx) 80 is also HAProxy's port 80 on this host: give one of them another port" {
		t.Errorf("lb and app on one host at port 80: %v", err)
	}
	s = load(t, stackSrc(`app: http_port: 8080`))
	s.Hosts["lb1"].Roles = []string{"lb", "app"}
	s.Reindex()
	cfg := string(generate(t, s, artifact.Options{})[ConfigPath].Content)
	if !strings.Contains(cfg, "    server lb1 10.0.0.5:8080 check\n") {
		t.Errorf("a host that is both lb and app is not a server of its own balancer:\n%s", cfg)
	}
	s = load(t, stackSrc(`balancer: stats: port: 443`))
	if _, err := (Gen{}).Generate(s, artifact.Options{}); err == nil || !strings.Contains(err.Error(), "balancer.stats.port 443 is also HAProxy's port 443") {
		t.Errorf("stats on 443: %v", err)
	}
	s = load(t, stackSrc(cases[0].extra))
	if _, err := (Gen{}).Generate(s, artifact.Options{Root: "/tmp/with space"}); err == nil {
		t.Errorf("a sandbox root the script cannot name bare was accepted")
	}
}

// An app's own balancer timeouts (apps.<name>.balancer_timeouts) go
// into its backend alone; the other apps keep balancer.timeouts'.
func TestAppBalancerTimeouts(t *testing.T) {
	for _, s := range exampleStacks(t) {
		if s.Name != "multi-app" {
			continue
		}
		cfg := string(generate(t, s, artifact.Options{})[ConfigPath].Content)
		api := section(t, cfg, "backend app_api")
		if !slices.Contains(api, "timeout server 25s") || !slices.Contains(api, "timeout connect 10s") {
			t.Errorf("backend app_api without its own timeouts: %q", api)
		}
		for _, other := range []string{"backend app_web", "backend app_legacy"} {
			if be := section(t, cfg, other); slices.ContainsFunc(be, func(l string) bool { return strings.HasPrefix(l, "timeout ") }) {
				t.Errorf("%s has timeouts of its own: %q", other, be)
			}
		}
		if !slices.Contains(section(t, cfg, "defaults"), "timeout server 60s") {
			t.Error("defaults lost balancer.timeouts")
		}
		return
	}
	t.Fatal("no multi-app example stack")
}
