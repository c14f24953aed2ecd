package schema_test

import (
	"errors"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// TestExamples loads every example stack: they must all be valid.
func TestExamples(t *testing.T) {
	for _, s := range testtool.LoadStacks(t) {
		if len(s.Hosts) == 0 || s.Source == "" || len(s.SourceDigest) != 64 {
			t.Errorf("%s: incomplete load: %d hosts, source %q, digest %q", s.Name, len(s.Hosts), s.Source, s.SourceDigest)
		}
		if !strings.HasPrefix(s.Source, "stacks/") {
			t.Errorf("%s: Source = %q, want a path relative to the repository", s.Name, s.Source)
		}
		for name, h := range s.Hosts {
			if h.Name != name || h.Cores < 1 || h.MemoryMB < 256 {
				t.Errorf("%s/%s: host not filled in: %+v", s.Name, name, h)
			}
		}
	}
}

// TestDefaults checks the defaults a minimal stack gets from the schema.
func TestDefaults(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Load("min.cue", []byte(`
name: "min"
domain: "example.com"
hosts: web1: {address: "10.0.0.1", roles: ["app"], size: "s-2vcpu-4gb"}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`))
	if err != nil {
		t.Fatal(err)
	}
	h := s.Hosts["web1"]
	checks := []struct {
		what      string
		got, want any
	}{
		{"cores from size", h.Cores, 2},
		{"memory from size", h.MemoryMB, 4096},
		{"auto workers", s.App.Workers.For(h), 5},
		{"tls mode", s.TLS.Mode, "certbot"},
		{"tls profile", s.TLS.Profile, "intermediate"},
		{"hsts", s.TLS.HSTS, true},
		{"terminate behind cloud LB", s.TLS.Terminate, "app"},
		{"certificate", s.TLS.Certificate, "/etc/letsencrypt/live/example.com/fullchain.pem"},
		{"key", s.TLS.Key, "/etc/letsencrypt/live/example.com/privkey.pem"},
		{"socket", s.App.Bind.Socket, "/run/app/gunicorn.sock"},
		{"worker class", s.App.WorkerClass, "sync"},
		{"threads", s.App.Threads, 1},
		{"health path", s.Balancer.Health.Path, "/healthz"},
		{"nofile", s.Tuning.Nofile, 65536},
		{"somaxconn", string(s.Tuning.Sysctl["net.core.somaxconn"]), "4096"},
		{"port range", string(s.Tuning.Sysctl["net.ipv4.ip_local_port_range"]), "1024 65535"},
		{"user", s.App.User, "app"},
		{"environment file", s.App.EnvironmentFile, "/etc/app/env"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestPatternDescriptions makes sure every regular expression in the
// schema has a plain-words description for error messages.
func TestPatternDescriptions(t *testing.T) {
	re := regexp.MustCompile(`[=!]~("(?:[^"\\]|\\.)*")`)
	found := 0
	for _, m := range re.FindAllStringSubmatch(string(schema.SchemaSource()), -1) {
		pat, err := strconv.Unquote(m[1])
		if err != nil {
			t.Fatalf("unquoting %s: %v", m[1], err)
		}
		found++
		if schema.DescribePattern(pat) == "" {
			t.Errorf("pattern %s has no description in patterns.go", m[1])
		}
	}
	if found < 5 {
		t.Fatalf("found only %d patterns in the schema; the extraction is broken", found)
	}
}

// FuzzLoad feeds arbitrary bytes to the loader: it must never panic, and
// every failure must be a positioned *schema.Error naming the file.
func FuzzLoad(f *testing.F) {
	for _, p := range testtool.ExampleStacks(f) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`name: "x"`))
	f.Add([]byte(`{`))
	f.Add([]byte(`hosts: a: roles: ["lb", "lb"]`))
	l, err := schema.NewLoader("")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		_, err := l.Load("fuzz.cue", src)
		if err == nil {
			return
		}
		var se *schema.Error
		if !errors.As(err, &se) {
			t.Fatalf("error is %T, want *schema.Error: %v", err, err)
		}
		if len(se.Diags) == 0 {
			t.Fatal("schema.Error without diagnostics")
		}
		for _, d := range se.Diags {
			if d.File == "" || d.Message == "" {
				t.Fatalf("diagnostic without file or message: %+v", d)
			}
		}
	})
}

// TestSizeNames keeps #SizeName's pattern in step with the #sizes table:
// it accepts exactly the table's keys, and its error lists them as a
// disjunction's would.
func TestSizeNames(t *testing.T) {
	src := string(schema.SchemaSource())
	m := regexp.MustCompile(`(?m)^#SizeName: =~("(?:[^"\\]|\\.)*")$`).FindStringSubmatch(src)
	if m == nil {
		t.Fatal("no #SizeName pattern in the schema")
	}
	pat, err := strconv.Unquote(m[1])
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`(?s)\n#sizes: \{\n(.*?)\n\}`).FindStringSubmatch(src)
	if table == nil {
		t.Fatal("no #sizes table in the schema")
	}
	var keys []string
	for _, k := range regexp.MustCompile(`(?m)^\t"([^"]+)": \{`).FindAllStringSubmatch(table[1], -1) {
		keys = append(keys, strconv.Quote(k[1]))
	}
	slices.Sort(keys)
	if len(keys) < 10 {
		t.Fatalf("found only %d sizes; the extraction is broken", len(keys))
	}
	if got, want := schema.DescribePattern(pat), "one of "+strings.Join(keys, ", "); got != want {
		t.Errorf("#SizeName reads %q,\nwant %q", got, want)
	}
	re := regexp.MustCompile(pat)
	for _, k := range keys {
		if k, _ := strconv.Unquote(k); !re.MatchString(k) {
			t.Errorf("#SizeName rejects %s", k)
		}
	}
	for _, bad := range []string{"t3xmicro", "s-2vcpu-4gb ", "c-1", ""} {
		if re.MatchString(bad) {
			t.Errorf("#SizeName accepts %q", bad)
		}
	}
}

// TestPositionsFromSyntax: positions come from the stack file's syntax,
// also when the whole file is wrapped in braces, and a list the syntax
// cannot index (a comprehension in it) is placed by the evaluated stack.
func TestPositionsFromSyntax(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	body := `name:   "t"
domain: "example.com"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app",
	static: [for u in ["/a/", "/b/"] {url: u, dir: "/srv/app/static"}, {url: "/c/", dir: "/srv/app/c"}]}
`
	for _, c := range []struct {
		name, src    string
		path         string
		line, column int
	}{
		{"plain", body, "hosts.app1.address", 4, 18},
		{"braces", "{\n" + body + "}\n", "hosts.app1.address", 5, 18},
		// The third element, after two from the comprehension.
		{"comprehension", body, "app.static[2].url", 8, 75},
	} {
		s, err := l.Load("stacks/t.cue", []byte(c.src))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p, ok := s.Positions[c.path]; !ok || p.Line != c.line || p.Column != c.column {
			t.Errorf("%s: %s at %+v (found %v), want %d:%d", c.name, c.path, p, ok, c.line, c.column)
		}
	}
}

// TestRoles: every role in schema.Roles is a valid role, and an invalid
// one is refused with exactly those listed.
func TestRoles(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	src := func(role string) string {
		return `name: "t"
domain: "example.com"
hosts: h1: {address: "10.0.0.11", roles: ["` + role + `"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`
	}
	for _, r := range schema.Roles {
		if _, err := l.Load("stacks/t.cue", []byte(src(r))); err != nil && strings.Contains(err.Error(), "roles[0]: invalid value") {
			t.Errorf("role %q refused: %v", r, err)
		}
	}
	_, err = l.Load("stacks/t.cue", []byte(src("web")))
	want := `hosts.h1.roles[0]: invalid value "web" (want one of "app", "cache", "lb", "queue", "worker")`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("role web: %v, want %s", err, want)
	}
}

// TestSecretValueNotShown: a value the schema refuses that looks like a
// secret (a database URL written as the host, a key pasted into the
// wrong field) is named by what it looks like, not quoted: the message
// goes to terminals and CI logs.
func TestSecretValueNotShown(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	src := func(host, roles, region string) string {
		return `name: "t"
domain: "example.com"
region: ` + region + `
hosts: h1: {address: "10.0.0.11", roles: [` + roles + `], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
database: {engine: "postgresql", managed: true, host: ` + host + `, port: 5432, name: "app"}
`
	}
	for _, c := range []struct {
		name, src, secret, want string
	}{
		{"pattern", src(`"postgres://app:hunter2@db.internal/app"`, `"app"`, `"nyc3"`), "hunter2",
			`stacks/t.cue:7:55: database.host: invalid value (not shown: it looks like a URL with a password) (want a host name or IPv4 address such as db.internal or 10.0.0.5)`},
		{"one of", src(`"db.internal"`, `"token=hunter2"`, `"nyc3"`), "hunter2",
			`hosts.h1.roles[0]: invalid value (not shown: it looks like a password or token assignment) (want one of "app", "cache", "lb", "queue", "worker")`},
		{"type", src(`"db.internal"`, `"app"`, `1`), "",
			`region: invalid value 1 (want string, got int)`},
		{"struct", src(`"db.internal"`, `"app"`, `{password: "hunter2"}`), "hunter2",
			`region: invalid value {password:(not shown: it looks like a password or token assignment)} (want string, got struct)`},
		{"multi-line", src(`"db.internal"`, `"app"`, "\"\"\"\n\t-----BEGIN OPENSSH PRIVATE KEY-----\n\tb3BlbnNzaC1rZXktdjEAAAAAhunter2\n\t-----END OPENSSH PRIVATE KEY-----\n\t\"\"\""), "hunter2",
			`region: invalid value (not shown: it looks like a private key) (want a lower-case slug`},
	} {
		_, err := l.Load("stacks/t.cue", []byte(c.src))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
		if c.secret != "" && err != nil && strings.Contains(err.Error(), c.secret) {
			t.Errorf("%s: the message shows the secret: %v", c.name, err)
		}
	}
}
