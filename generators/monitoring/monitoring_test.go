package monitoring_test

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/monitoring"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// stackCase is an in-test stack: a name and the CUE lines that differ
// from the base stack.
type stackCase struct {
	name string
	src  string
	// alerts is the exact set of alert names the stack must get.
	alerts []string
}

const base = `
name:   %q
domain: "shop.example.com"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
%s
`

var hostAlerts = []string{"Watchdog", "HostDown", "HostDiskSpaceLow", "HostFileDescriptorsHigh", "HostHighCPU", "HostHighMemory", "ProcessFileDescriptorsHigh",
	"HostDiskWillFillIn24Hours", "HostOOMKill", "ServiceDown", "SystemdUnitFailed"}

// certAlerts are the alerts of a stack whose own hosts serve HTTPS.
var certAlerts = []string{"CertificateExpiringSoon", "CertificateMissing"}

// redisAlerts are the alerts of a stack with Redis.
var redisAlerts = []string{"RedisDown", "RedisMemoryHigh", "RedisEvictingKeys"}

var cases = []stackCase{
	{
		// Unusual thresholds, so each one can only appear where it belongs.
		name: "haproxy-replicas-redis",
		src: `
hosts: {
	lb1: {address: "10.1.0.5", roles: ["lb"], cores: 2, memory_mb: 2048}
	lb2: {address: "10.1.0.6", roles: ["lb"], cores: 2, memory_mb: 2048}
	app1: {address: "10.1.0.11", roles: ["app"], cores: 2, memory_mb: 4096}
	app2: {address: "10.1.0.12", roles: ["app", "worker"], cores: 2, memory_mb: 4096}
	app3: {address: "10.1.0.13", roles: ["app"], cores: 2, memory_mb: 4096}
}
balancer: kind: "haproxy"
monitoring: address: "10.0.0.2"
monitoring: {for_minutes: 7, cpu_percent: 73, memory_percent: 67, disk_free_percent: 11,
	error_rate_percent: 2.5, fd_used_percent: 77, replication_lag_seconds: 45}
database: {host: "db.internal", name: "shop", replicas: ["db-r1.internal", "db-r2.internal"]}
cache: {engine: "redis", host: "10.1.0.30"}
`,
		alerts: slices.Concat([]string{"TargetDown", "High5xxRate", "BackendDown", "UnhealthyBackends", "BackendServerDown",
			"DatabaseDown", "DatabaseReplicationLag"}, redisAlerts, certAlerts, hostAlerts),
	},
	{
		// A database host that needs quoting everywhere it is written.
		name: "nginx-no-replicas",
		src: `
hosts: {
	lb1: {address: "10.2.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.2.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.2.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "nginx"
database: {host: "db-primary.internal", managed: false, name: "shop"}
cache: {engine: "memcached", host: "10.2.0.30"}
`,
		alerts: slices.Concat([]string{"TargetDown", "High5xxRate", "DatabaseDown"}, certAlerts, hostAlerts),
	},
	{
		name: "cloud-aws-no-db",
		src: `
provider: "aws"
hosts: {
	app1: {address: "10.3.0.11", roles: ["app"], size: "t3.small"}
	app2: {address: "10.3.0.12", roles: ["app"], size: "t3.small"}
	app3: {address: "10.3.0.13", roles: ["app"], size: "t3.small"}
	app4: {address: "10.3.0.14", roles: ["app"], size: "t3.small"}
	w1: {address: "10.3.0.21", roles: ["worker"], size: "t3.small"}
}
balancer: {kind: "cloud", trusted_proxies: ["10.3.0.0/16"]}
queue: {engine: "redis", host: "10.3.0.40"}
`,
		alerts: slices.Concat([]string{"TargetDown", "High5xxRate"}, redisAlerts, certAlerts, hostAlerts),
	},
	{
		// HAProxy relaying TLS to the app hosts: 5xx come from their nginx.
		name: "haproxy-passthrough-mysql",
		src: `
tls: terminate: "app"
hosts: {
	lb1: {address: "10.4.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.4.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.4.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
	app3: {address: "10.4.0.13", roles: ["app"], cores: 1, memory_mb: 1024}
	app4: {address: "10.4.0.14", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "haproxy"
monitoring: address: "10.0.0.2"
database: {engine: "mysql", managed: false, host: "10.4.0.50", port: 3306, name: "shop", replicas: ["10.4.0.51"]}
cache: {engine: "redis", host: "10.4.0.30"}
queue: {engine: "redis", host: "10.4.0.30"}
`,
		alerts: slices.Concat([]string{"TargetDown", "High5xxRate", "BackendDown", "UnhealthyBackends", "BackendServerDown",
			"DatabaseDown", "DatabaseReplicationLag"}, redisAlerts, certAlerts, hostAlerts),
	},
	{
		// A self-hosted Redis cache on its host and a Redis broker
		// elsewhere: two redis jobs, each with its own TargetDown.
		name: "redis-local-and-probed",
		src: `
tls: mode: "none"
hosts: {
	app1: {address: "10.5.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	cache1: {address: "10.5.0.31", roles: ["cache"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
cache: {engine: "redis"}
queue: {engine: "redis", host: "10.5.0.40"}
`,
		alerts: slices.Concat([]string{"TargetDown", "High5xxRate"}, redisAlerts, hostAlerts),
	},
}

func load(t *testing.T, name, src string) *schema.Stack {
	t.Helper()
	return testtool.Load(t, name+".cue", fmt.Sprintf(base, name, src))
}

// allStacks is every example stack and every in-test stack.
func allStacks(t *testing.T) []*schema.Stack {
	var stacks []*schema.Stack
	for _, s := range testtool.LoadStacks(t) {
		// A stack with monitoring off renders nothing here (aws-spot-asg
		// alarms through CloudWatch instead).
		if s.Monitoring.Enabled {
			stacks = append(stacks, s)
		}
	}
	for _, c := range cases {
		stacks = append(stacks, load(t, c.name, c.src))
	}
	return stacks
}

func generate(t *testing.T, s *schema.Stack) (alerts, config []byte) {
	t.Helper()
	files, err := monitoring.Gen{}.Generate(s, artifact.Options{})
	if err != nil {
		t.Fatalf("%s: %v", s.Name, err)
	}
	want := 3
	if s.Database != nil && s.Database.Engine == "postgresql" {
		want++ // the postgres exporter's environment
	}
	if len(files) != want {
		t.Fatalf("%s: %d files, want alerts.yaml, prometheus.yml and alertmanager.yml (and prometheus-postgres-exporter with PostgreSQL)", s.Name, len(files))
	}
	for _, f := range files {
		if f.Host != "" || f.Mode != 0o644 || artifact.CheckPath(f.Path) != nil {
			t.Errorf("%s: %s: host %q mode %v: want a stack-level 0644 file", s.Name, f.Path, f.Host, f.Mode)
		}
		if !bytes.HasPrefix(f.Content, []byte(artifact.Header("#", s))) {
			t.Errorf("%s: %s does not start with the generated-file header", s.Name, f.Path)
		}
		switch f.Path {
		case monitoring.AlertsPath:
			alerts = f.Content
		case monitoring.ConfigPath:
			config = f.Content
		}
	}
	if alerts == nil || config == nil {
		t.Fatalf("%s: got %s, %s and %s", s.Name, files[0].Path, files[1].Path, files[2].Path)
	}
	return alerts, config
}

// writeOut writes the two files as the build lays them out and returns
// the monitoring directory.
func writeOut(t *testing.T, alerts, config []byte) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "monitoring")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"alerts.yaml": alerts, "prometheus.yml": config} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func promtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(testtool.Require(t, "promtool", "prometheus"), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPromtoolAccepts runs promtool over the rules and the configuration
// of every stack: the rules parse, their templates compile, no two rules
// clash, and Prometheus would load the configuration with its rule file.
func TestPromtoolAccepts(t *testing.T) {
	testtool.Require(t, "promtool", "prometheus")
	for _, s := range allStacks(t) {
		t.Run(s.Name, func(t *testing.T) {
			alerts, config := generate(t, s)
			dir := writeOut(t, alerts, config)
			rules := parseRules(t, alerts)
			n := 0
			for _, g := range rules.Groups {
				n += len(g.Rules)
			}
			out := promtool(t, dir, "check", "rules", "alerts.yaml")
			if want := fmt.Sprintf("SUCCESS: %d rules found", n); !strings.Contains(out, want) {
				t.Errorf("promtool check rules: want %q in\n%s", want, out)
			}
			out = promtool(t, dir, "check", "config", "prometheus.yml")
			if !strings.Contains(out, "SUCCESS: 1 rule files found") {
				t.Errorf("promtool check config did not load alerts.yaml:\n%s", out)
			}
		})
	}
}

type rulesFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type configFile struct {
	Global struct {
		ScrapeInterval     string            `yaml:"scrape_interval"`
		EvaluationInterval string            `yaml:"evaluation_interval"`
		ExternalLabels     map[string]string `yaml:"external_labels"`
	} `yaml:"global"`
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string              `yaml:"job_name"`
		MetricsPath   string              `yaml:"metrics_path"`
		Params        map[string][]string `yaml:"params"`
		StaticConfigs []struct {
			Targets []string          `yaml:"targets"`
			Labels  map[string]string `yaml:"labels"`
		} `yaml:"static_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			TargetLabel  string   `yaml:"target_label"`
			Replacement  string   `yaml:"replacement"`
		} `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

func parseRules(t *testing.T, b []byte) rulesFile {
	t.Helper()
	var r rulesFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("alerts.yaml: %v\n%s", err, b)
	}
	return r
}

func parseConfig(t *testing.T, b []byte) configFile {
	t.Helper()
	var c configFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("prometheus.yml: %v\n%s", err, b)
	}
	return c
}

var jobMatcher = regexp.MustCompile(`\bjob="([^"]*)"`)

// TestContent checks, on the decoded files, what promtool cannot: the
// stack's thresholds and app host count are the ones in the rules, every
// rule holds for for_minutes and reads as a runbook entry, the alerts
// match the stack's components, and every job a rule reads is scraped.
func TestContent(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := load(t, c.name, c.src)
			m := s.Monitoring
			alerts, config := generate(t, s)
			rules := parseRules(t, alerts)
			cfg := parseConfig(t, config)

			exprs := map[string][]string{}
			var names []string
			groups := map[string]bool{}
			urls := map[string]bool{}
			for _, g := range rules.Groups {
				if groups[g.Name] {
					t.Errorf("group %q twice", g.Name)
				}
				groups[g.Name] = true
				for _, r := range g.Rules {
					if !slices.Contains(names, r.Alert) {
						names = append(names, r.Alert)
					}
					exprs[r.Alert] = append(exprs[r.Alert], r.Expr)
					if url := r.Annotations["runbook_url"]; urls[url] {
						t.Errorf("%s: runbook_url %s is another alert's too", r.Alert, url)
					} else {
						urls[url] = true
					}
					if want := monitoring.RunbookURL(s, r.Alert, r.Labels["exporter"], r.Labels["app"]); r.Annotations["runbook_url"] != want ||
						!strings.HasPrefix(want, "/stacks/"+s.Name+"/alerts.html#alert-") {
						t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
					}
					if r.Alert == "Watchdog" {
						// Fires always and at once, for the dead man's switch.
						if r.For != "" || r.Labels["severity"] != "none" || r.Expr != "vector(1)" {
							t.Errorf("Watchdog: for %q labels %v expr %q", r.For, r.Labels, r.Expr)
						}
						continue
					}
					if want := strconv.Itoa(m.ForMinutes) + "m"; r.For != want {
						t.Errorf("%s: for %q, want %q", r.Alert, r.For, want)
					}
					if sev := r.Labels["severity"]; sev != "warning" && sev != "critical" {
						t.Errorf("%s: severity %q", r.Alert, sev)
					}
					sum, desc := r.Annotations["summary"], r.Annotations["description"]
					if !strings.Contains(sum, "{{ $labels.") || !strings.Contains(desc, "{{ $labels.") {
						t.Errorf("%s: annotations do not name the host or instance: %q / %q", r.Alert, sum, desc)
					}
					if !strings.Contains(desc, "First check: ") {
						t.Errorf("%s: description says nothing to check first: %q", r.Alert, desc)
					}
					if len(r.Annotations) != 3 {
						t.Errorf("%s: annotations %v", r.Alert, r.Annotations)
					}
				}
			}
			slices.Sort(names)
			want := slices.Sorted(slices.Values(c.alerts))
			if !slices.Equal(names, want) {
				t.Errorf("alerts\n got %v\nwant %v", names, want)
			}

			// Thresholds, exactly as the stack gives them.
			suffix := map[string]string{
				"HostHighCPU":                " > " + strconv.Itoa(m.CPUPercent),
				"HostHighMemory":             " > " + strconv.Itoa(m.MemoryPercent),
				"HostFileDescriptorsHigh":    " > " + strconv.Itoa(m.FDUsedPercent),
				"ProcessFileDescriptorsHigh": " > " + strconv.Itoa(m.FDUsedPercent),
				"High5xxRate":                " > " + strconv.FormatFloat(m.ErrorRatePercent, 'f', -1, 64),
				"DatabaseReplicationLag":     " > " + strconv.Itoa(m.ReplicationLagSeconds),
				"UnhealthyBackends":          " < " + strconv.Itoa(len(s.HostsWithRole("app"))),
				"BackendDown":                " == 0",
			}
			for name, sfx := range suffix {
				for _, e := range exprs[name] {
					if !strings.HasSuffix(e, sfx) {
						t.Errorf("%s: expr %q does not end with %q", name, e, sfx)
					}
				}
			}
			if d := exprs["HostDiskSpaceLow"]; len(d) != 1 || !strings.Contains(d[0], " * 100 < "+strconv.Itoa(m.DiskFreePercent)+"\n") {
				t.Errorf("HostDiskSpaceLow: %q lacks the free-space threshold %d", d, m.DiskFreePercent)
			}
			if c.name == "haproxy-replicas-redis" {
				// The values were chosen to be unique: catch a swapped field.
				for name, v := range map[string]string{"HostHighCPU": "73", "HostHighMemory": "67", "HostDiskSpaceLow": "11",
					"High5xxRate": "2.5", "HostFileDescriptorsHigh": "77", "DatabaseReplicationLag": "45", "UnhealthyBackends": "3"} {
					if !regexp.MustCompile(`[<>] ` + regexp.QuoteMeta(v) + `\b`).MatchString(exprs[name][0]) {
						t.Errorf("%s: %q lacks %s", name, exprs[name][0], v)
					}
				}
				if !strings.Contains(string(alerts), "for: 7m") || strings.Contains(string(alerts), "for: 5m") {
					t.Error("for_minutes 7 is not what every rule holds for")
				}
			}

			// The scrape configuration.
			if !slices.Equal(cfg.RuleFiles, []string{"alerts.yaml"}) {
				t.Errorf("rule_files %q", cfg.RuleFiles)
			}
			if cfg.Global.ScrapeInterval == "" || cfg.Global.EvaluationInterval == "" || cfg.Global.ExternalLabels["stack"] != s.Name {
				t.Errorf("global %+v", cfg.Global)
			}
			jobs := map[string]int{}
			for i, sc := range cfg.ScrapeConfigs {
				jobs[sc.JobName] = i
			}
			read := map[string]bool{}
			for _, es := range exprs {
				for _, e := range es {
					for _, m := range jobMatcher.FindAllStringSubmatch(e, -1) {
						read[m[1]] = true
						if _, ok := jobs[m[1]]; !ok {
							t.Errorf("a rule reads job %q, which prometheus.yml does not scrape: %s", m[1], e)
						}
					}
				}
			}
			for j := range jobs {
				if !read[j] {
					t.Errorf("job %q is scraped but no rule watches it", j)
				}
			}

			// node_exporter on every host, named by host, in host order.
			node := cfg.ScrapeConfigs[jobs["node"]]
			var gotHosts []string
			for _, sc := range node.StaticConfigs {
				h := s.Hosts[sc.Labels["host"]]
				if h == nil || !slices.Equal(sc.Targets, []string{fmt.Sprintf("%s:%d", h.Address, m.Ports.Node)}) {
					t.Errorf("node target %v labels %v", sc.Targets, sc.Labels)
					continue
				}
				gotHosts = append(gotHosts, h.Name)
			}
			if !slices.Equal(gotHosts, s.HostNames()) {
				t.Errorf("node targets for %v, want %v", gotHosts, s.HostNames())
			}

			if i, ok := jobs["haproxy"]; ok {
				var lbs []string
				for _, sc := range cfg.ScrapeConfigs[i].StaticConfigs {
					h := s.Hosts[sc.Labels["host"]]
					if h == nil || !h.Has("lb") || !slices.Equal(sc.Targets, []string{fmt.Sprintf("%s:%d", h.Address, m.Ports.HAProxy)}) {
						t.Errorf("haproxy target %v labels %v", sc.Targets, sc.Labels)
					}
					lbs = append(lbs, sc.Labels["host"])
				}
				if len(lbs) != len(s.HostsWithRole("lb")) {
					t.Errorf("haproxy targets on %v", lbs)
				}
				if s.Balancer.Kind != "haproxy" {
					t.Errorf("haproxy job for a %s balancer", s.Balancer.Kind)
				}
				proxy := `proxy="` + monitoring.HAProxyBackend(s) + `"`
				for _, name := range []string{"BackendDown", "UnhealthyBackends", "BackendServerDown"} {
					if e := exprs[name]; len(e) != 1 || !strings.Contains(e[0], proxy) {
						t.Errorf("%s does not select %s: %q", name, proxy, e)
					}
				}
			}
			// 5xx: from HAProxy when it sees HTTP, else from the app hosts' nginx.
			passthrough := s.TLS.Enabled() && s.TLS.Terminate == "app"
			five := exprs["High5xxRate"]
			if len(five) != 1 {
				t.Fatalf("High5xxRate: %q", five)
			}
			_, nginxlog := jobs["nginxlog"]
			if s.Balancer.Kind == "haproxy" && !passthrough {
				if nginxlog || !strings.Contains(five[0], `haproxy_backend_http_responses_total{job="haproxy",proxy="app",code="5xx"}`) {
					t.Errorf("High5xxRate does not read HAProxy's backend app: %q", five)
				}
			} else if !nginxlog || !strings.Contains(five[0], `nginx_http_responses_total{job="nginxlog",status=~"5.."}`) {
				t.Errorf("High5xxRate does not read the app hosts' nginx log: %q", five)
			}
			if c.name == "haproxy-passthrough-mysql" && monitoring.HAProxyBackend(s) != "app_tls" {
				t.Errorf("passthrough backend %q", monitoring.HAProxyBackend(s))
			}

			// Probed database and Redis targets: the stack's servers go to
			// the exporter as the target parameter.
			if db := s.Database; db != nil {
				job := map[string]string{"postgresql": "postgres", "mysql": "mysql"}[db.Engine]
				i, ok := jobs[job]
				if !ok {
					t.Fatalf("no %s job", job)
				}
				sc := cfg.ScrapeConfigs[i]
				want := []string{net.JoinHostPort(db.Host, strconv.Itoa(db.Port))}
				for _, r := range db.Replicas {
					want = append(want, net.JoinHostPort(r, strconv.Itoa(db.Port)))
				}
				var got []string
				for j, st := range sc.StaticConfigs {
					got = append(got, st.Targets...)
					if role := st.Labels["db_role"]; (j == 0) != (role == "primary") {
						t.Errorf("%v: db_role %q", st.Targets, role)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s targets %q, want %q", job, got, want)
				}
				if sc.MetricsPath != "/probe" || len(sc.RelabelConfigs) != 3 ||
					sc.RelabelConfigs[0].TargetLabel != "__param_target" || sc.RelabelConfigs[2].TargetLabel != "__address__" {
					t.Errorf("%s is not a probe job: %+v", job, sc)
				}
				// mysqld_exporter takes its credentials from an auth
				// module; postgres_exporter gets a DSN without a
				// password (it reads the password from PGPASSFILE).
				if db.Engine == "mysql" && len(sc.Params["auth_module"]) != 1 {
					t.Errorf("mysql job without auth_module: %+v", sc)
				}
				if db.Engine == "postgresql" && (len(sc.Params) != 0 || sc.RelabelConfigs[0].Replacement != monitoring.PostgresTarget(db, "${1}") ||
					sc.RelabelConfigs[1].SourceLabels[0] != "__address__") {
					t.Errorf("postgres job: %+v", sc)
				}
			}
			// Redis: a self-hosted one is scraped on its cache hosts, a
			// managed one (and a Redis broker elsewhere) probed.
			var gotRedis, wantRedis []string
			for _, j := range []string{"redis", "redis-probe"} {
				if i, ok := jobs[j]; ok {
					for _, st := range cfg.ScrapeConfigs[i].StaticConfigs {
						gotRedis = append(gotRedis, st.Targets...)
					}
				}
			}
			if c := s.Cache; c != nil && c.Engine == "redis" {
				if c.Managed {
					wantRedis = append(wantRedis, fmt.Sprintf("redis://%s:%d", c.Host, c.Port))
				} else {
					for _, h := range s.CacheHosts() {
						wantRedis = append(wantRedis, fmt.Sprintf("%s:%d", h.Address, m.Ports.Redis))
					}
				}
			}
			if q := s.Queue; q != nil && q.Engine == "redis" && !slices.Contains(wantRedis, fmt.Sprintf("redis://%s:%d", q.Host, q.Port)) {
				wantRedis = append(wantRedis, fmt.Sprintf("redis://%s:%d", q.Host, q.Port))
			}
			if !slices.Equal(gotRedis, wantRedis) {
				t.Errorf("redis targets %q, want %q", gotRedis, wantRedis)
			}
		})
	}
}

// TestDeterministic renders every stack twice and requires identical
// bytes; the sandbox root changes nothing, since no file names a host path.
func TestDeterministic(t *testing.T) {
	for _, s := range allStacks(t) {
		a1, c1 := generate(t, s)
		a2, c2 := generate(t, s)
		if !bytes.Equal(a1, a2) || !bytes.Equal(c1, c2) {
			t.Errorf("%s: two renders differ", s.Name)
		}
		files, err := monitoring.Gen{}.Generate(s, artifact.Options{Root: "/tmp/sandbox"})
		if err != nil || !bytes.Equal(files[0].Content, a1) || !bytes.Equal(files[1].Content, c1) {
			t.Errorf("%s: a sandbox render differs (%v)", s.Name, err)
		}
	}
}

func TestDisabled(t *testing.T) {
	s := load(t, "quiet", `
hosts: app1: {address: "10.5.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
monitoring: enabled: false
`)
	files, err := monitoring.Gen{}.Generate(s, artifact.Options{})
	if err != nil || len(files) != 0 {
		t.Fatalf("monitoring disabled: %d files, %v", len(files), err)
	}
}
