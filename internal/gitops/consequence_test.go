package gitops_test

import (
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/gitops"
)

// haStack is two HAProxy balancers with keepalived in front of three app
// hosts, a database with its connection limit and a capacity target.
const haStack = `name:   "ha"
domain: "ha.example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.2.0.5", roles: ["lb"], cores: 2, memory_mb: 2048}
	lb2:  {address: "10.2.0.6", roles: ["lb"], cores: 2, memory_mb: 2048}
	app1: {address: "10.2.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
	app2: {address: "10.2.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
	app3: {address: "10.2.0.13", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: {
	kind:      "haproxy"
	algorithm: "leastconn"
	failover:  "keepalived"
	vrrp: {virtual_address: "10.2.0.100", router_id: 20, interface: "eth0"}
}
monitoring: address: "10.2.0.9"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", timeout: 30}
database: {host: "db.internal", name: "ha", pool_size: 5, max_overflow: 5, max_connections: 400}
capacity: target_concurrency: 10
`

// TestRisks: each label comes from a real edit of a stack, and only
// from the edit that causes it.
func TestRisks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		old, new  string
		want      []string
		wantHosts map[string][]string // host → its labels, for some hosts
	}{
		{"algorithm", `algorithm: "leastconn"`, `algorithm: "roundrobin"`, []string{"lb-change"},
			map[string][]string{"lb1": {"lb-change"}}},
		{"vrrp", `router_id: 20`, `router_id: 21`, []string{"failover-change"},
			map[string][]string{"lb2": {"failover-change"}}},
		{"pools", `pool_size: 5,`, `pool_size: 8,`, []string{"restart"},
			map[string][]string{"app1": {"restart"}, "lb1": nil}},
		{"app timeout", `timeout: 30}`, `timeout: 45}`, []string{},
			map[string][]string{"app1": {}}},
		{"decommission", "\tapp3: {address: \"10.2.0.13\", roles: [\"app\"], cores: 2, memory_mb: 2048}\n", "", []string{"decommission", "lb-change"},
			map[string][]string{"app3": {"decommission"}, "lb1": {"lb-change"}, "app1": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(haStack, tc.old) {
				t.Fatalf("stack lacks %q", tc.old)
			}
			r := newRepo(t)
			r.write(map[string]string{"stacks/ha.cue": haStack})
			r.commit("ha")
			r.write(map[string]string{"stacks/ha.cue": strings.Replace(haStack, tc.old, tc.new, 1)})
			rep := diff(t, r, "HEAD")
			if !slices.Equal(rep.Risks, tc.want) {
				t.Errorf("risks %q, want %q", rep.Risks, tc.want)
			}
			for host, want := range tc.wantHosts {
				i := slices.IndexFunc(rep.Hosts, func(h gitops.HostDiff) bool { return h.Host == host })
				switch {
				case want == nil && i >= 0:
					t.Errorf("%s changed: %+v", host, rep.Hosts[i].Impact)
				case want != nil && i < 0:
					t.Errorf("%s unchanged", host)
				case want != nil && !slices.Equal(rep.Hosts[i].Risks, want):
					t.Errorf("%s: risks %q, want %q", host, rep.Hosts[i].Risks, want)
				}
			}
			md := markdown(t, rep)
			if len(tc.want) > 0 {
				line := "**Risks:** `" + strings.Join(tc.want, "`, `") + "`\n"
				if !strings.Contains(md, line) {
					t.Errorf("comment lacks %q:\n%s", line, md[:min(len(md), 800)])
				}
			} else if strings.Contains(md, "**Risks:**") {
				t.Error("risks line without risks")
			}
		})
	}
}

// TestRiskReboot: a custom generator's file whose reload is a reboot.
func TestRiskReboot(t *testing.T) {
	gen := func(v string) string {
		return `function(stack, host) {"/etc/hacompile-test.conf": {content: "` + v + `\n", reload: "systemctl reboot"}}` + "\n"
	}
	stack := strings.Replace(webStack, "balancer:", `generators: [{file: "generators/k.jsonnet"}]`+"\nbalancer:", 1)
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": stack, "stacks/generators/k.jsonnet": gen("a")})
	r.commit("web")
	r.write(map[string]string{"stacks/generators/k.jsonnet": gen("b")})
	rep := diff(t, r, "HEAD")
	if !slices.Equal(rep.Risks, []string{"reboot"}) || !slices.Equal(rep.Hosts[0].Risks, []string{"reboot"}) {
		t.Errorf("risks %q, first host %q", rep.Risks, rep.Hosts[0].Risks)
	}
}

// TestHeadroomAndFindings: the limits a change moves, before → after,
// and the HA findings it brings or clears.
func TestHeadroomAndFindings(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/ha.cue": haStack})
	r.commit("ha")
	// One app host less: fewer pools (15 → 10 processes × 10), less
	// capacity (3 × 5 workers → 2 × 5 for a target of 10), and a sync
	// timeout above HAProxy's read timeout brings app-timeout.
	head := strings.Replace(haStack, "\tapp3: {address: \"10.2.0.13\", roles: [\"app\"], cores: 2, memory_mb: 2048}\n", "", 1)
	head = strings.Replace(head, "timeout: 30}", "timeout: 600}", 1)
	r.write(map[string]string{"stacks/ha.cue": head})
	rep := diff(t, r, "HEAD")
	js, err := json.Marshal(rep.Headroom)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"stack":"ha","name":"concurrent requests","before":{"need":10,"limit":15,"spare":5},"after":{"need":10,"limit":10,"spare":0}},` +
		`{"stack":"ha","name":"database connections","before":{"need":150,"limit":400,"spare":250},"after":{"need":100,"limit":400,"spare":300}}]`
	if string(js) != want {
		t.Errorf("headroom %s\nwant     %s", js, want)
	}
	md := markdown(t, rep)
	for _, l := range []string{
		"- ha concurrent requests: 15 for a target of 10 (5 spare) → 10 for a target of 10 (0 spare)\n",
		"- ha database connections: 150 of 400 (250 spare) → 100 of 400 (300 spare)\n",
	} {
		if !strings.Contains(md, l) {
			t.Errorf("comment lacks %q", l)
		}
	}
	wantF := []gitops.FindingChange{{Change: "appeared", Stack: "ha", Rule: "app-timeout", Path: "app.timeout", Severity: "warning",
		Message: "gunicorn timeout 600s is not below the proxy read timeout 60s (balancer.timeouts.read): the proxy answers 504 while the request still runs; set app.timeout below 60"}}
	if !slices.Equal(rep.Findings, wantF) {
		t.Errorf("findings %+v", rep.Findings)
	}
	if l := "- ha HA finding appeared: app.timeout: gunicorn timeout 600s is not below"; !strings.Contains(md, l) {
		t.Errorf("comment lacks %q:\n%s", l, md[:min(800, len(md))])
	}

	var text strings.Builder
	if err := gitops.WriteText(&text, rep, gitops.TextOptions{Stat: true}); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{
		"\nRisks: decommission, lb-change\n",
		"\nHeadroom: ha database connections: 150 of 400 (250 spare) -> 100 of 400 (300 spare)\n",
		"\nHA finding appeared: app.timeout: warning: gunicorn timeout 600s",
	} {
		if !strings.Contains(text.String(), l) {
			t.Errorf("text lacks %q:\n%s", l, text.String())
		}
	}

	// Back again: the finding disappears, the headroom returns.
	r.commit("smaller")
	r.write(map[string]string{"stacks/ha.cue": haStack})
	rep = diff(t, r, "HEAD")
	if len(rep.Findings) != 1 || rep.Findings[0].Change != "disappeared" || rep.Findings[0].Rule != "app-timeout" {
		t.Errorf("findings %+v", rep.Findings)
	}
	if len(rep.Headroom) != 2 || rep.Headroom[1].After.Need != 150 {
		t.Errorf("headroom %+v", rep.Headroom)
	}
}

// TestHeadroomDescriptorsAndBacklog: file descriptors and the listen
// backlog, before → after, as fd-limit, fd-host and somaxconn count
// them. Before, HAProxy is the busiest process (2 × 20,000 maxconn + 64
// = 40,064 of nofile 65,536) and an app host holds 5 sync workers × 75
// + nginx's 2 × 2 × 4,096 = 16,759 of fs.file-max 2,097,152. gevent
// workers with 50,000 connections each hold 50,000 + 10 database + 64
// = 50,074: the busiest process, and 5 of them with nginx make 266,754
// on a host whose fs.file-max is now 300,000. An app backlog of 8,192
// is above the kernel's somaxconn of 4,096.
func TestHeadroomDescriptorsAndBacklog(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/ha.cue": haStack})
	r.commit("ha")
	head := strings.Replace(haStack, "timeout: 30}", "timeout: 30, worker_class: \"gevent\", worker_connections: 50000, backlog: 8192}\ntuning: sysctl: \"fs.file-max\": \"300000\"", 1)
	r.write(map[string]string{"stacks/ha.cue": head})
	rep := diff(t, r, "HEAD")
	js, err := json.Marshal(rep.Headroom)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"stack":"ha","name":"concurrent requests","before":{"need":10,"limit":15,"spare":5},"after":{"need":10,"limit":750000,"spare":749990}},` +
		`{"stack":"ha","name":"listen backlog","before":{"need":2048,"limit":4096,"spare":2048},"after":{"need":8192,"limit":4096,"spare":-4096}},` +
		`{"stack":"ha","name":"open files per app host","before":{"need":16759,"limit":2097152,"spare":2080393},"after":{"need":266754,"limit":300000,"spare":33246}},` +
		`{"stack":"ha","name":"open files per process","before":{"need":40064,"limit":65536,"spare":25472},"after":{"need":50074,"limit":65536,"spare":15462}}]`
	if string(js) != want {
		t.Errorf("headroom %s\nwant     %s", js, want)
	}
	md := markdown(t, rep)
	for _, l := range []string{
		"- ha listen backlog: 2048 of 4096 (2048 spare) → 8192 of 4096 (short by 4096)\n",
		"- ha open files per app host: 16759 of 2097152 (2080393 spare) → 266754 of 300000 (33246 spare)\n",
		"- ha open files per process: 40064 of 65536 (25472 spare) → 50074 of 65536 (15462 spare)\n",
	} {
		if !strings.Contains(md, l) {
			t.Errorf("comment lacks %q:\n%s", l, md[:min(1500, len(md))])
		}
	}
	// The backlog the kernel truncates is a finding as well.
	if !slices.ContainsFunc(rep.Findings, func(f gitops.FindingChange) bool { return f.Rule == "somaxconn" && f.Change == "appeared" }) {
		t.Errorf("no somaxconn finding appeared: %+v", rep.Findings)
	}
}

// TestRiskCloudMembers: an app host joining a cloud balancer (which
// finds its members by tag) changes what the balancer does.
func TestRiskCloudMembers(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("web")
	r.write(map[string]string{"stacks/web.cue": strings.Replace(webStack, "hosts: {\n", "hosts: {\n\tapp3: {address: \"10.0.0.13\", roles: [\"app\"], cores: 2, memory_mb: 2048}\n", 1)})
	rep := diff(t, r, "HEAD")
	if !slices.Equal(rep.Risks, []string{"lb-change"}) {
		t.Errorf("risks %q", rep.Risks)
	}
}

// TestRiskCloudBalancer: a change to the cloud balancer's definition
// (DigitalOcean's load-balancer.json) is an lb-change of the stack's own
// files.
func TestRiskCloudBalancer(t *testing.T) {
	do := strings.Replace(webStack, `balancer: kind: "cloud"`, `provider: "digitalocean"
region:   "nyc3"
balancer: {kind: "cloud", digitalocean: size_unit: 1, trusted_proxies: ["10.0.0.0/16"]}`, 1)
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": do})
	r.commit("web")
	r.write(map[string]string{"stacks/web.cue": strings.Replace(do, "size_unit: 1", "size_unit: 2", 1)})
	rep := diff(t, r, "HEAD")
	if !slices.Equal(rep.Risks, []string{"lb-change"}) {
		t.Errorf("risks %q", rep.Risks)
	}
	last := rep.Hosts[len(rep.Hosts)-1]
	if last.Host != "" || !slices.Equal(last.Risks, []string{"lb-change"}) || !slices.ContainsFunc(last.Files, func(f gitops.FileDiff) bool { return f.Path == "web/digitalocean/load-balancer.json" }) {
		t.Errorf("stack files: %+v", last)
	}
}

// TestCost: a DigitalOcean stack's monthly estimate before → after, in
// the JSON and the comment, from the runbook's price table: two
// s-2vcpu-4gb droplets ($24) and a one-node load balancer ($12) is
// $60.00; a third droplet and a bigger size for app1 make $156.00 ($96 + 2 × $24 + $12).
func TestCost(t *testing.T) {
	do := strings.Replace(webStack, "tls: mode: \"none\"\n", "tls: mode: \"none\"\nprovider: \"digitalocean\"\nregion: \"ams3\"\n", 1)
	do = strings.ReplaceAll(do, "cores: 2, memory_mb: 2048", `size: "s-2vcpu-4gb"`)
	do = strings.Replace(do, `balancer: kind: "cloud"`, `balancer: {kind: "cloud", trusted_proxies: ["10.0.0.0/16"]}`, 1)
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": do, "stacks/api.cue": apiStack})
	r.commit("web")
	head := strings.Replace(do, "\tapp2:", "\tapp3: {address: \"10.0.0.13\", roles: [\"app\"], size: \"s-2vcpu-4gb\"}\n\tapp2:", 1)
	head = strings.Replace(head, `app1: {address: "10.0.0.11", roles: ["app"], size: "s-2vcpu-4gb"}`, `app1: {address: "10.0.0.11", roles: ["app"], size: "s-8vcpu-16gb"}`, 1)
	r.write(map[string]string{"stacks/web.cue": head})
	rep := diff(t, r, "HEAD")
	got, err := json.Marshal(rep.Cost)
	if err != nil {
		t.Fatal(err)
	}
	// api's provider is generic: no price list, no entry.
	want := `[{"stack":"web","before":{"cents":6000,"monthly":"$60.00","unpriced":0},"after":{"cents":15600,"monthly":"$156.00","unpriced":0},"delta_cents":9600,"delta":"+$96.00"}]`
	if string(got) != want {
		t.Errorf("cost\n got %s\nwant %s", got, want)
	}
	if rep.PricesAsOf == "" {
		t.Error("no prices_as_of")
	}
	md := markdown(t, rep)
	if line := "- web monthly cost: $60.00 → $156.00 a month (+$96.00)\n"; !strings.Contains(md, line) {
		t.Errorf("comment lacks %q:\n%s", line, md[:min(len(md), 1200)])
	}
	var text strings.Builder
	if err := gitops.WriteText(&text, rep, gitops.TextOptions{Stat: true}); err != nil {
		t.Fatal(err)
	}
	if line := "Monthly cost: web: $60.00 -> $156.00 a month (+$96.00)"; !strings.Contains(text.String(), line) {
		t.Errorf("text lacks %q:\n%s", line, text.String())
	}
	// An edit that moves no price says nothing about cost.
	r.commit("bigger")
	r.write(map[string]string{"stacks/web.cue": strings.Replace(head, `working_dir: "/srv/app"`, `working_dir: "/srv/app", timeout: 45`, 1)})
	rep = diff(t, r, "HEAD")
	if md := markdown(t, rep); strings.Contains(md, "monthly cost") {
		t.Errorf("cost line for an unchanged estimate:\n%s", md)
	}
	if len(rep.Cost) != 1 || rep.Cost[0].DeltaCents != 0 || rep.Cost[0].Before.Cents != 15600 {
		t.Errorf("unchanged cost: %+v", rep.Cost)
	}
}

// TestSources: each changed file names the changed stack fields it is
// rendered from, at the line they are written: a host's files its
// entry, HAProxy's configuration the app host added to or removed from
// its servers.
func TestSources(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/ha.cue": haStack})
	r.commit("ha")
	head := strings.Replace(haStack, "timeout: 30}", "timeout: 45}", 1)
	head = strings.Replace(head, "\tapp3:", "\tapp4: {address: \"10.2.0.14\", roles: [\"app\"], cores: 2, memory_mb: 2048}\n\tapp3:", 1)
	r.write(map[string]string{"stacks/ha.cue": head})
	rep := diff(t, r, "HEAD")
	line := func(s, field string) int {
		for i, l := range strings.Split(s, "\n") {
			if strings.Contains(l, field) {
				return i + 1
			}
		}
		t.Fatalf("no %q in the stack", field)
		return 0
	}
	appLine, app4Line := line(head, "timeout: 45"), line(head, "app4:")
	files := map[string][]gitops.SourceRef{}
	for _, h := range rep.Hosts {
		for _, f := range h.Files {
			files[f.Path] = f.Sources
		}
	}
	check := func(p string, want ...string) {
		t.Helper()
		got, ok := files[p]
		if !ok {
			t.Fatalf("%s did not change; changed: %v", p, slices.Sorted(mapsKeys(files)))
		}
		var words []string
		for _, r := range got {
			words = append(words, r.String())
		}
		if !slices.Equal(words, want) {
			t.Errorf("%s: sources %q, want %q", p, words, want)
		}
	}
	timeout := "app.timeout (stacks/ha.cue:" + itoa(appLine) + ")"
	check("ha/hosts/app1/etc/app/gunicorn.conf.py", timeout)
	check("ha/hosts/app4/etc/app/gunicorn.conf.py", "hosts.app4 (stacks/ha.cue:"+itoa(app4Line)+")")
	check("ha/hosts/lb1/etc/haproxy/haproxy.cfg", "hosts.app4 (stacks/ha.cue:"+itoa(app4Line)+")")
	// A cloud-init document carries its host's files, and comes from
	// what they come from; a new host's, from its entry.
	check("ha/cloud-init/app1.yaml", timeout)
	check("ha/cloud-init/app4.yaml", "hosts.app4 (stacks/ha.cue:"+itoa(app4Line)+")")
	md := markdown(t, rep)
	if want := "From `app.timeout` (stacks/ha.cue:" + itoa(appLine) + "):\n\n```diff\n--- a/ha/hosts/app1/etc/app/gunicorn.conf.py"; !strings.Contains(md, want) {
		t.Errorf("comment lacks %q:\n%s", want, md)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"sources":[{"field":"app.timeout","file":"stacks/ha.cue","line":` + itoa(appLine); !strings.Contains(string(raw), want) {
		t.Errorf("JSON lacks %s", want)
	}
	var text strings.Builder
	if err := gitops.WriteText(&text, rep, gitops.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "# ha/hosts/app1/etc/app/gunicorn.conf.py: from " + timeout + "\n"; !strings.Contains(text.String(), want) {
		t.Errorf("text lacks %q", want)
	}
	// A host removed: its files are summarised, with no sources.
	r.commit("app4")
	gone := strings.Replace(head, "\tapp3: {address: \"10.2.0.13\", roles: [\"app\"], cores: 2, memory_mb: 2048}\n", "", 1)
	r.write(map[string]string{"stacks/ha.cue": gone})
	rep = diff(t, r, "HEAD")
	app3Line := line(head, "app3:")
	for _, h := range rep.Hosts {
		for _, f := range h.Files {
			if strings.Contains(f.Path, "app3") && len(f.Sources) > 0 {
				t.Errorf("removed file with sources: %+v", f.Sources)
			}
			if f.Path == "ha/hosts/lb1/etc/haproxy/haproxy.cfg" {
				if len(f.Sources) != 1 || f.Sources[0].String() != "hosts.app3 (removed; was stacks/ha.cue:"+itoa(app3Line)+")" {
					t.Errorf("haproxy.cfg without app3: sources %+v", f.Sources)
				}
			}
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func mapsKeys[M ~map[K]V, K comparable, V any](m M) iter.Seq[K] { return maps.Keys(m) }

// TestHeadroomPerApp: with several apps, the per-process limits are each
// app's: web's gevent workers and backlog count, not only the first
// app's (the rules run per app; the headroom follows them).
func TestHeadroomPerApp(t *testing.T) {
	multi := strings.Replace(haStack, `app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", timeout: 30}`,
		`apps: {
	web: {runtime: "python", module: "wsgi:app", working_dir: "/srv/web", timeout: 30}
	api: {runtime: "python", module: "api:app", working_dir: "/srv/api", timeout: 30, paths: ["/api/"], http_port: 8081}
}`, 1)
	r := newRepo(t)
	r.write(map[string]string{"stacks/ha.cue": multi})
	r.commit("ha")
	// web is the second app by name: the stack's App is api's.
	r.write(map[string]string{"stacks/ha.cue": strings.Replace(multi, `working_dir: "/srv/web", timeout: 30`, `working_dir: "/srv/web", timeout: 30, worker_class: "gevent", worker_connections: 45000, backlog: 8192`, 1)})
	rep := diff(t, r, "HEAD")
	got := map[string]gitops.Headroom{}
	for _, h := range rep.Headroom {
		got[h.Name] = h
	}
	if h := got["open files per process"]; h.After == nil || h.After.Need != 45000+10+64 {
		t.Errorf("open files per process: %+v, want after web's gevent worker's 45074 (headroom %+v)", h, rep.Headroom)
	}
	if h := got["listen backlog"]; h.After == nil || h.After.Need != 8192 {
		t.Errorf("listen backlog: %+v, want after web's 8192", h)
	}
}

// TestHeadroomReplica: with a read pool, the headroom of each replica
// (replica_max_connections) moves with the read pools.
func TestHeadroomReplica(t *testing.T) {
	const db = `database: {host: "db.internal", name: "ha", pool_size: 5, max_overflow: 5, max_connections: 400}`
	if !strings.Contains(haStack, db) {
		t.Fatalf("stack lacks %q", db)
	}
	reads := func(pool int) string {
		return strings.Replace(haStack, db, fmt.Sprintf(`database: {host: "db.internal", name: "ha", pool_size: 5, max_overflow: 5, max_connections: 400, replicas: ["ro.internal"], replica_pool_size: %d, replica_max_connections: 500}`, pool), 1)
	}
	r := newRepo(t)
	r.write(map[string]string{"stacks/ha.cue": reads(4)})
	r.commit("ha")
	r.write(map[string]string{"stacks/ha.cue": reads(6)})
	rep := diff(t, r, "HEAD")
	// 15 processes × 4 → × 6, against 500.
	want := gitops.Headroom{Stack: "ha", Name: gitops.HeadroomReplicaConnections,
		Before: &gitops.Level{Need: 60, Limit: 500, Spare: 440}, After: &gitops.Level{Need: 90, Limit: 500, Spare: 410}}
	i := slices.IndexFunc(rep.Headroom, func(h gitops.Headroom) bool { return h.Name == want.Name })
	if i < 0 || !reflect.DeepEqual(rep.Headroom[i], want) {
		t.Errorf("headroom %+v, want %+v", rep.Headroom, want)
	}
	if l := "- ha connections to a replica: 60 of 500 (440 spare) → 90 of 500 (410 spare)\n"; !strings.Contains(markdown(t, rep), l) {
		t.Errorf("comment lacks %q", l)
	}
}
