package push

import (
	"errors"
	"fmt"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSSHConfig(t *testing.T) {
	cfg, err := ParseSSHConfig("deploy.conf", []byte(`
# defaults before any Host apply to all
User ops

Host app* !app3
  HostName=10.9.0.1
  Port 2201
  IdentityFile "~/keys/app key"

Host app1 10.0.0.7
  HostName 10.9.0.99
  User deploy
  IdentityFile /keys/second

Host *
  Port 22
`))
	if err != nil {
		t.Fatal(err)
	}
	app1 := cfg.For("app1", "10.0.0.11")
	if app1.HostName != "10.9.0.1" || app1.User != "ops" || app1.Port != 2201 || len(app1.IdentityFiles) != 2 ||
		!strings.HasSuffix(app1.IdentityFiles[0], "/keys/app key") || app1.IdentityFiles[1] != "/keys/second" {
		t.Errorf("app1 (first value wins, identities accumulate): %+v", app1)
	}
	if app3 := cfg.For("app3", "10.0.0.13"); app3.HostName != "" || app3.Port != 22 {
		t.Errorf("app3 (negated): %+v", app3)
	}
	if byAddr := cfg.For("lb1", "10.0.0.7"); byAddr.HostName != "10.9.0.99" || byAddr.User != "ops" {
		t.Errorf("matched by address: %+v", byAddr)
	}
	var none *SSHConfig
	if s := none.For("x", "y"); s.HostName != "" || s.Port != 0 {
		t.Errorf("nil config: %+v", s)
	}

	for src, want := range map[string]string{
		"Host a\n  ProxyJump bastion\n": "c.conf:2: ProxyJump is not supported (supported: Host, HostName, User, Port, IdentityFile)",
		"Host a\n  Port 70000\n":        "c.conf:2: Port: want a port number 1-65535, got \"70000\"",
		"Host\n":                        "c.conf:1: Host: missing value",
		"Host a\n  User \"ops\n":        "c.conf:2: User: unterminated quote",
	} {
		_, err := ParseSSHConfig("c.conf", []byte(src))
		if err == nil || err.Error() != want {
			t.Errorf("%q: err = %v, want %s", src, err, want)
		}
	}
}

func TestBatches(t *testing.T) {
	hosts := []Host{
		{Name: "lb2", Roles: []string{"lb"}}, {Name: "lb1", Roles: []string{"lb", "app"}},
		{Name: "app3", Roles: []string{"app"}}, {Name: "app1", Roles: []string{"app"}}, {Name: "app2", Roles: []string{"app", "worker"}},
		{Name: "w1", Roles: []string{"worker"}},
	}
	for spec, want := range map[string]string{
		"1":    "lb1 | lb2 | app1 | app2 | app3 | w1",
		"2":    "lb1 | lb2 | app1 app2 | app3 | w1",
		"25%":  "lb1 | lb2 | app1 | app2 | app3 | w1",
		"50%":  "lb1 | lb2 | app1 app2 | app3 | w1",
		"100%": "lb1 | lb2 | app1 app2 app3 | w1",
		// A canary batch after the balancers, then the batches.
		"100% canary 1": "lb1 | lb2 | app1 | app2 app3 | w1",
		"50% canary 2":  "lb1 | lb2 | app1 app2 | app3 | w1",
		"100% canary 3": "lb1 | lb2 | app1 app2 app3 | w1",
		"1 canary 4":    "lb1 | lb2 | app1 app2 app3 w1",
		"1 canary 9":    "lb1 | lb2 | app1 app2 app3 w1",
	} {
		spec, c, _ := strings.Cut(spec, " canary ")
		canary, _ := strconv.Atoi(c)
		bs, err := Batches(hosts, spec, canary)
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, b := range bs {
			parts = append(parts, strings.Join(b, " "))
		}
		if got := strings.Join(parts, " | "); got != want {
			t.Errorf("--batch %s --canary %d: %s, want %s", spec, canary, got, want)
		}
	}
	if DefaultCanary(hosts) != 1 || DefaultCanary(hosts[:4]) != 0 {
		t.Errorf("default canary: %d for 4 non-balancer hosts, %d for 2", DefaultCanary(hosts), DefaultCanary(hosts[:4]))
	}
	for _, bad := range []string{"0", "-1", "0%", "101%", "x", "", "2.5"} {
		if _, err := Batches(hosts, bad, 0); err == nil {
			t.Errorf("--batch %q accepted", bad)
		}
	}
}

func TestParseMaxFail(t *testing.T) {
	for spec, want := range map[string][2]int{"0": {0, 0}, "3": {3, 0}, "0%": {0, 1}, "1%": {1, 1}, "100%": {100, 1}} {
		n, pc, err := ParseMaxFail(spec)
		if err != nil || n != want[0] || pc != (want[1] == 1) {
			t.Errorf("%q: %d %v %v", spec, n, pc, err)
		}
	}
	for _, bad := range []string{"-1", "101%", "x", "", "1.5", "%"} {
		if _, _, err := ParseMaxFail(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestCheckHealthURL: a --health-url that could never be checked is
// refused when the flags are read, not found out host by host.
func TestCheckHealthURL(t *testing.T) {
	for _, good := range []string{"http://{address}:{port}{path}", "https://{host}.example.com/healthz", "HTTP://[::1]:{port}/", "http://{address}/?from={host}", "https://mon:hunter2@{address}/healthz"} {
		if err := CheckHealthURL(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for bad, want := range map[string]string{
		"ftp://{x}":                `--health-url "ftp://{x}": want an http:// or https:// URL, such as http://{address}:{port}{path}`,
		"{address}:{port}{path}":   `--health-url "{address}:{port}{path}": want an http:// or https:// URL`,
		"":                         `--health-url "": want an http:// or https:// URL`,
		"http://{addr}:{port}/":    `--health-url "http://{addr}:{port}/": {addr} is no placeholder: want {host}, {address}, {port} or {path}`,
		"http:///healthz":          `--health-url "http:///healthz": want a URL with a host, such as http://{address}:{port}{path}`,
		"http://{address}:x/":      `--health-url "http://{address}:x/": want a URL: invalid port ":x" after host`,
		"http://{address} /{path}": `--health-url "http://{address} /{path}": want a URL: invalid character " " in host name`,
		// A password in it is not shown.
		"https://mon:hunter2@{addr}/": `--health-url "https://mon:xxxxx@{addr}/": {addr} is no placeholder`,
	} {
		err := CheckHealthURL(bad)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %s", bad, err, want)
		}
	}
}

// TestCheckRoot: a --root whose paths the stack's files could not hold
// is refused when the flags are read, naming --root, not the stack.
func TestCheckRoot(t *testing.T) {
	for _, good := range []string{"/", "/srv/staging/{host}", "/srv/{host}/root/", "//srv//x", "/tmp/Test_x-1.2@a+b/{host}", "/srv/{host}/.."} {
		if err := CheckRoot(good); err != nil {
			t.Errorf("%q: %v", good, err)
		}
	}
	for bad, want := range map[string]string{
		"srv/{host}":         `--root "srv/{host}": want an absolute path`,
		"":                   `--root "": want an absolute path`,
		"/srv/{x}":           `--root "/srv/{x}": {x} is no placeholder: want {host} (the host's name)`,
		"/srv/{Host}":        `--root "/srv/{Host}": {Host} is no placeholder`,
		"/srv/{}":            `--root "/srv/{}": {} is no placeholder`,
		"/srv/{host":         `--root "/srv/{host": want an absolute path of letters, digits and ._@+- (and {host} for the host's name), such as /srv/staging/{host}`,
		"/srv/a b":           `--root "/srv/a b": want an absolute path of letters`,
		"/srv/$HOST":         `--root "/srv/$HOST": want an absolute path of letters`,
		"/srv/a:b":           `--root "/srv/a:b": want an absolute path of letters`,
		"/srv/\"x\"":         `--root "/srv/\"x\"": want an absolute path of letters`,
		"/srv/staging\n/etc": `--root "/srv/staging\n/etc": want an absolute path of letters`,
	} {
		err := CheckRoot(bad)
		if err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("%q: %v, want %s", bad, err, want)
		}
	}
}

func TestReloadSteps(t *testing.T) {
	changes := []Change{
		{Path: "/etc/app/gunicorn.conf.py", Reload: []artifact.Action{artifact.ParseAction("systemctl reload app.service")}},
		{Path: "/etc/nginx/nginx.conf", Reload: []artifact.Action{artifact.ParseAction("systemctl reload nginx")}},
		{Path: "/etc/sysctl.d/60-hacompile.conf", Reload: []artifact.Action{artifact.ParseAction("sysctl --system")}},
		{Path: "/etc/systemd/system/app.service", Reload: []artifact.Action{artifact.ParseAction("systemctl daemon-reload && systemctl enable app.service && systemctl restart app.service")}},
		{Path: "/etc/systemd/system/nginx.service.d/x.conf", Reload: []artifact.Action{artifact.ParseAction("systemctl  daemon-reload&&systemctl restart nginx.service")}},
		{Path: "/etc/haproxy/haproxy.cfg", Reload: []artifact.Action{artifact.ParseAction("systemctl reload haproxy")}},
	}
	want := []string{
		"systemctl daemon-reload", "sysctl --system",
		"systemctl enable app.service", "systemctl restart app.service", "systemctl restart nginx.service",
		"systemctl reload haproxy",
	}
	if got := reloadSteps(changes); !slices.Equal(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// A removed unit's own steps would fail; the rest still run.
	removed := []Change{
		{Path: "/etc/systemd/system/old.service", Action: "remove",
			Validate: []artifact.Action{artifact.ParseAction("systemd-analyze verify /srv/x/etc/systemd/system/old.service")},
			Reload:   []artifact.Action{artifact.ParseAction("systemctl daemon-reload && systemctl enable old.service && systemctl restart old.service")}},
		{Path: "/etc/nginx/conf.d/old.conf", Action: "remove", Validate: []artifact.Action{artifact.ParseAction("nginx -t")}, Reload: []artifact.Action{artifact.ParseAction("systemctl reload nginx")}},
	}
	if got := reloadSteps(removed); !slices.Equal(got, []string{"systemctl daemon-reload", "systemctl reload nginx"}) {
		t.Errorf("removed: %q", got)
	}
	if got := validateCommands(removed); !slices.Equal(got, []string{"nginx -t"}) {
		t.Errorf("removed validate: %q", got)
	}
}

func TestPlanPath(t *testing.T) {
	content := []byte("new\n")
	want := &desired{Content: content, Mode: 0o644, Owner: "root:root", UID: 0, GID: 0}
	same := remoteFile{Exists: true, Mode: 0o644, SHA256: sha(content), Content: content}
	old := remoteFile{Exists: true, Mode: 0o600, SHA256: sha([]byte("old\n")), Content: []byte("old\n"), UID: 0, GID: 0}
	pushed := []expectation{{SHA256: sha([]byte("old\n")), Mode: "0600"}}
	cases := []struct {
		name   string
		pp     pathPlan
		action string
		reason string
		drift  string
		err    error
	}{
		{name: "unchanged", pp: pathPlan{Path: "/a", Want: want, Have: same, Expect: pushed}},
		{name: "create", pp: pathPlan{Path: "/a", Want: want}, action: "create"},
		{name: "update from last push", pp: pathPlan{Path: "/a", Want: want, Have: old, Expect: pushed}, action: "update", reason: "content, mode 0600 → 0644"},
		{name: "adopt unmanaged", pp: pathPlan{Path: "/a", Want: want, Have: old}, action: "update", reason: "content, mode 0600 → 0644"},
		{name: "owner", pp: pathPlan{Path: "/a", Want: want, Have: remoteFile{Exists: true, Mode: 0o644, SHA256: sha(content), UID: 33, GID: 33}},
			action: "update", reason: "owner 33:33 → root:root"},
		{name: "owner not applied", pp: pathPlan{Path: "/a", Want: &desired{Content: content, Mode: 0o644, UID: -1}, Have: remoteFile{Exists: true, Mode: 0o644, SHA256: sha(content), UID: 33}}},
		{name: "hand edit", pp: pathPlan{Path: "/a", Want: want, Have: remoteFile{Exists: true, Mode: 0o600, SHA256: sha([]byte("edit"))}, Expect: pushed},
			action: "update", reason: "content, mode 0600 → 0644", drift: "/a was changed on the host since the last push (now sha256 " + sha([]byte("edit"))[:12] + " mode 0600; pushed sha256 " + sha([]byte("old\n"))[:12] + " mode 0600)"},
		{name: "chmod by hand", pp: pathPlan{Path: "/a", Want: want, Have: remoteFile{Exists: true, Mode: 0o666, SHA256: sha([]byte("old\n"))}, Expect: pushed},
			action: "update", reason: "content, mode 0666 → 0644", drift: "/a was changed on the host since the last push (now sha256 " + sha([]byte("old\n"))[:12] + " mode 0666; pushed sha256 " + sha([]byte("old\n"))[:12] + " mode 0600)"},
		{name: "deleted by hand", pp: pathPlan{Path: "/a", Want: want, Expect: pushed}, action: "create", drift: "/a was deleted on the host since the last push"},
		{name: "hand edit matching the new file is no drift", pp: pathPlan{Path: "/a", Want: want, Have: same, Expect: pushed}},
		{name: "remove", pp: pathPlan{Path: "/a", Have: old, Expect: pushed}, action: "remove"},
		{name: "already gone", pp: pathPlan{Path: "/a", Expect: pushed}},
		{name: "symlink", pp: pathPlan{Path: "/a", Want: want, Have: remoteFile{Exists: true, Mode: fs.ModeSymlink | 0o777, Link: "/etc/shadow"}}, err: ErrUnsafeTarget},
		{name: "directory", pp: pathPlan{Path: "/a", Want: want, Have: remoteFile{Exists: true, Mode: fs.ModeDir | 0o755}}, err: ErrUnsafeTarget},
	}
	for _, c := range cases {
		ch, drift, err := planPath(c.pp)
		if !errors.Is(err, c.err) || (err == nil) != (c.err == nil) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.err)
			continue
		}
		action, reason := "", ""
		if ch != nil {
			action, reason = ch.Action, ch.Reason
		}
		if action != c.action || reason != c.reason || drift != c.drift {
			t.Errorf("%s: %q %q drift %q; want %q %q drift %q", c.name, action, reason, drift, c.action, c.reason, c.drift)
		}
	}
}

func TestMergeChanges(t *testing.T) {
	base := []Change{
		{Path: "/b", Action: "update", Old: &FileState{SHA256: "orig"}, New: &FileState{SHA256: "v2"}, Backup: "files/b"},
		{Path: "/c", Action: "create", New: &FileState{SHA256: "v2"}},
	}
	got := mergeChanges(base, []Change{
		{Path: "/a", Action: "create", New: &FileState{SHA256: "v3"}},
		{Path: "/b", Action: "update", Old: &FileState{SHA256: "v2"}, New: &FileState{SHA256: "v3"}},
		{Path: "/c", Action: "remove", Old: &FileState{SHA256: "v2"}},
	})
	if len(got) != 2 || got[0].Path != "/a" || got[1].Path != "/b" {
		t.Fatalf("merged: %+v", got)
	}
	if b := got[1]; b.Old.SHA256 != "orig" || b.Backup != "files/b" || b.New.SHA256 != "v3" {
		t.Errorf("/b keeps the original backup: %+v", b)
	}
	if base[0].New.SHA256 != "v2" {
		t.Error("merge modified its input")
	}
}

func TestTargets(t *testing.T) {
	r := renderStack(t, `name: "shop"
domain: "shop.example.com"
tls: mode: "none"
hosts: {
	lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024, ssh: {user: "deploy", port: 2222}}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {kind: "nginx", health: path: "/up"}
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", virtualenv: "/srv/app/venv", http_port: 8080}
waive: [{rule: "ha-single-lb", reason: "unit test fleet", until: "2999-01-01"}]
`)
	cfg, err := ParseSSHConfig("c", []byte("Host app2\n  HostName 192.0.2.12\n  Port 2200\n  User ops\n  IdentityFile /k\n"))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := Targets(r, TargetOptions{SSHConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range hosts {
		got[h.Name] = h.SSH.String() + " " + h.HealthURL + " " + strings.Join(h.SSH.IdentityFiles, ",")
		if h.HealthRedirectOK != (h.Name == "lb1") || h.Root != "/" || len(h.Files) == 0 || !strings.HasPrefix(h.Files[0].Path, "/etc/") {
			t.Errorf("%s: %+v", h.Name, h)
		}
	}
	want := map[string]string{
		"lb1":  "root@10.0.0.5:22 http://10.0.0.5:80/up ",
		"app1": "deploy@10.0.0.11:2222 http://10.0.0.11:8080/up ",
		"app2": "ops@192.0.2.12:2200 http://10.0.0.12:8080/up /k",
	}
	for n, w := range want {
		if got[n] != w {
			t.Errorf("%s: %q, want %q", n, got[n], w)
		}
	}

	hosts, err = Targets(r, TargetOptions{Hosts: []string{"app2", "app1", "app2"}, HealthURL: "http://127.0.0.1:9/{host}?a={address}&p={port}", Root: "/srv/stage/{host}"})
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 2 || hosts[0].Name != "app1" || hosts[0].HealthURL != "http://127.0.0.1:9/app1?a=10.0.0.11&p=8080" || hosts[1].Root != "/srv/stage/app2" {
		t.Fatalf("selected: %+v", hosts)
	}
	// Under a root the files are a sandbox render: the paths inside
	// point into the host's tree.
	for _, f := range hosts[0].Files {
		if f.Path == "/etc/systemd/system/app.service" && !strings.Contains(string(f.Content), "/srv/stage/app1/srv/app/venv/bin/gunicorn") {
			t.Errorf("unit not rendered under the root:\n%s", f.Content)
		}
		if f.Validate.String() != "" && strings.Contains(f.Validate.String(), "/etc/") && !strings.Contains(f.Validate.String(), "/srv/stage/app1/etc/") {
			t.Errorf("validate command outside the root: %s", f.Validate.String())
		}
	}
	if _, err := Targets(r, TargetOptions{Hosts: []string{"db9"}}); !errors.Is(err, ErrUnknownHost) || !strings.Contains(err.Error(), `"db9": stack shop has app1, app2, lb1`) {
		t.Errorf("unknown host: %v", err)
	}
	if _, err := Targets(r, TargetOptions{NoHealth: true}); err != nil {
		t.Error(err)
	}
}

func TestProgress(t *testing.T) {
	var b strings.Builder
	l := NewLogProgress(&b)
	l.Update("app1", PhaseConnecting, "root@10.0.0.1:22")
	l.Update("app1", PhaseUploading, "0/3")
	l.Update("app1", PhaseUploading, "1/3")
	l.Update("app1", PhaseValidating, "nginx -t")
	l.Update("app1", PhaseFailed, "validation failed: boom")
	want := "app1: connecting root@10.0.0.1:22\napp1: uploading 3 files\napp1: validating nginx -t\napp1: failed\n"
	if b.String() != want {
		t.Errorf("log:\n%s\nwant:\n%s", b.String(), want)
	}

	b.Reset()
	tty := NewTTYProgress(&b, []string{"lb1", "app10"}, false)
	tty.Update("app10", PhaseUploading, "1/3")
	tty.Update("lb1", PhaseHealthy, "generation 2")
	want = "\r\x1b[2Klb1    waiting\n\r\x1b[2Kapp10  uploading 1/3\n" +
		"\x1b[2A\r\x1b[2Klb1    healthy generation 2\n\r\x1b[2Kapp10  uploading 1/3\n"
	if b.String() != want {
		t.Errorf("tty: %q\nwant %q", b.String(), want)
	}
	// A notice goes above the block, which is drawn again below it.
	b.Reset()
	tty.Notice("hacompile: interrupted")
	want = "\x1b[2A\r\x1b[Jhacompile: interrupted\n" +
		"\r\x1b[2Klb1    healthy generation 2\n\r\x1b[2Kapp10  uploading 1/3\n"
	if b.String() != want {
		t.Errorf("tty notice: %q\nwant %q", b.String(), want)
	}
	// More hosts than fit: counts per phase, then the hosts being
	// worked on.
	b.Reset()
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("app%02d", i))
	}
	tty = NewTTYProgress(&b, names, false)
	tty.Update("app03", PhaseUploading, "0/7")
	tty.Update("app07", PhaseHealthy, "(generation 2)")
	tty.Update("app03", PhaseFailed, "boom")
	want = "\r\x1b[2K40 hosts: 39 waiting, 1 uploading\n\r\x1b[2Kapp03  uploading 0/7\n" +
		"\x1b[2A\r\x1b[2K40 hosts: 38 waiting, 1 uploading, 1 healthy\n\r\x1b[2Kapp03  uploading 0/7\n" +
		"\x1b[2A\r\x1b[2K40 hosts: 38 waiting, 1 healthy, 1 failed\n\r\x1b[2K\n\x1b[1A"
	if b.String() != want {
		t.Errorf("compact tty: %q\nwant %q", b.String(), want)
	}
}

// A host running several apps is healthy when every app answers on its
// own port: push checks each, not only the first.
func TestTargetsSeveralApps(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testtool.ExampleRoot(), "stacks", "multi-app.cue"))
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := Targets(renderStack(t, string(src)), TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, h := range hosts {
		got[h.Name] = strings.Join(append([]string{h.HealthURL}, h.MoreHealthURLs...), " ")
	}
	for n, w := range map[string]string{
		"app1": "http://10.60.0.11:8081/healthz http://10.60.0.11:80/healthz",
		"app3": "http://10.60.0.13:80/healthz",
	} {
		if got[n] != w {
			t.Errorf("%s: %q, want %q", n, got[n], w)
		}
	}
}
