package site_test

import (
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/site"
)

// section is the text of the procedures page from the section id to
// the section next, tags stripped.
func section(t *testing.T, page []byte, id, next string) string {
	t.Helper()
	s := string(page)
	i := strings.Index(s, `id="`+id+`"`)
	j := len(s)
	if next != "" {
		j = strings.Index(s, `id="`+next+`"`)
	}
	if i < 0 || j < i {
		t.Fatalf("no section %q before %q", id, next)
	}
	return html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(s[i:j], ""))
}

// TestDatabaseFailoverRestarts: promoting a replica changes the address
// in settings.env, which push delivers with a restart of every process
// that reads it, app and Celery alike. The procedure must say so and
// check those units, not tell the operator to edit a file by hand and
// reload (a reload keeps the old environment), nor leave the workers out.
func TestDatabaseFailoverRestarts(t *testing.T) {
	res, opt := compileStack(t, `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: {
	app1:    {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2:    {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
	worker1: {address: "10.0.0.21", roles: ["worker"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
database: {host: "db1.internal", name: "shop", replicas: ["db2.internal"], replica_pool_size: 5, max_connections: 400}
queue: {engine: "redis", host: "redis.internal"}
workers: {app: "shop", beat: enabled: true}
`)
	files, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	text := section(t, files["stacks/t/procedures.html"], "failover-database", "certificates")
	for _, want := range []string{
		"ssh root@10.0.0.11 systemctl is-active shop.service",
		"ssh root@10.0.0.12 systemctl is-active shop.service",
		"ssh root@10.0.0.21 systemctl is-active shop-celery-worker.service shop-celery-beat.service",
		"With no replica left, also remove database.replica_pool_size",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the failover procedure lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{"systemctl reload shop", "/etc/shop/env", "error db-option"} {
		if strings.Contains(text, bad) {
			t.Errorf("the failover procedure says %q:\n%s", bad, text)
		}
	}
}

// TestSecretFilesWhole: a provisioning command a rendered comment gives
// over several lines (Redis's ACL file: printf … \ | install …) is
// quoted whole, with what the comment says about it, not as the bare
// install that would write the pasted password where Redis wants an ACL
// line (Redis then does not start).
func TestSecretFilesWhole(t *testing.T) {
	page := exampleSite(t)["stacks/python-celery-cache/procedures.html"]
	text := section(t, page, "secrets", "")
	for _, want := range []string{
		"read -rs PASSWORD",
		`printf 'user default on #%s ~* &* +@all\n' "$(printf %s "$PASSWORD" | sha256sum | cut -d' ' -f1)" | install -m 0640 -o root -g redis /dev/stdin /etc/redis/users.acl`,
		`Provision it as JSON, {"redis://127.0.0.1:6379": "<password>"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the secrets procedure lacks %s:\n%s", want, text)
		}
	}
}

// TestAddHostDeploysCodeFirst: a new app host gets the app's code before
// anything checks or pushes to it (gunicorn --check-config, push's
// validate step, loads the app and fails without it).
func TestAddHostDeploysCodeFirst(t *testing.T) {
	files := exampleSite(t)
	for _, st := range []string{"do-python-ha", "do-perl-ha", "python-celery-cache"} {
		text := section(t, files["stacks/"+st+"/procedures.html"], "add-app-host", "remove-app-host")
		deploy := strings.Index(text, "Deploy the app's code")
		secrets := strings.Index(text, "Provision its secrets")
		push := strings.Index(text, "hacompile push")
		if push < 0 {
			push = strings.Index(text, "hacompile publish") // a stack that pulls
		}
		if deploy < 0 || secrets < deploy || push < deploy || !strings.Contains(text[deploy:], "ls -d /srv/") {
			t.Errorf("%s: the code is not deployed (and checked) before the secrets and the push:\n%s", st, text)
		}
	}
}

// TestDatabaseHeadroomAsDBPool: the overview's database connections are
// db-pool's arithmetic: the Celery processes count too, and behind
// PgBouncer the primary sees each host's server pool, not the processes.
func TestDatabaseHeadroomAsDBPool(t *testing.T) {
	files := exampleSite(t)
	strip := func(b []byte) string {
		return html.UnescapeString(regexp.MustCompile(`\s+`).ReplaceAllString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(string(b), " "), " "))
	}
	for st, want := range map[string]string{
		"python-celery-cache": "connections to the primary 140 200 10 app processes + 4 Celery worker processes × (5 + 5)",
		"do-python-50k":       "connections to the primary 180 197 4 hosts' PgBouncer (app1, app2, app3, app4) × (default_pool_size 40 + reserve_pool_size 5)",
	} {
		if text := strip(files["stacks/"+st+"/index.html"]); !strings.Contains(text, want) {
			i := strings.Index(text, "connections to the primary")
			t.Errorf("%s: want %q, the page has %q", st, want, text[max(i, 0):min(len(text), max(i, 0)+200)])
		}
	}
}

// TestDatabaseHeadroomPoolsPerApp: with several apps behind PgBouncer
// the database connections table sums each app's pools on its hosts
// against max_connections and has a row per app.
func TestDatabaseHeadroomPoolsPerApp(t *testing.T) {
	res, opt := compileStack(t, `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "haproxy"
monitoring: enabled: false
apps: {
	web: {runtime: "python", module: "web:app", working_dir: "/srv/web", workers: 4}
	api: {runtime: "python", module: "api:app", working_dir: "/srv/api", workers: 2, hosts: ["app1"], paths: ["/api/"], http_port: 8081}
}
database: {host: "db1.internal", name: "shop", pool_size: 2, max_overflow: 1, max_connections: 40, pooler: {default_pool_size: 10, reserve_pool_size: 2}}
`)
	files, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	text := html.UnescapeString(regexp.MustCompile(`\s+`).ReplaceAllString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(string(files["stacks/t/index.html"]), " "), " "))
	// api: a pool of 6 (2 processes × 3) + 2 on app1; web: 10 + 2 on
	// app1 and app2.
	for _, want := range []string{
		"connections to the primary 32 40 PgBouncer's pools, an app's on each of its hosts: api 8 + web 24",
		"app api: its PgBouncer pools 8 — app1 8 (pool_size",
		"app web: its PgBouncer pools 24 — app1 12 + app2 12 (pool_size",
	} {
		if !strings.Contains(text, want) {
			i := strings.Index(text, "Database connections")
			t.Errorf("want %q, the page has %q", want, text[max(i, 0):min(len(text), max(i, 0)+600)])
		}
	}
}

// TestRequestPathLeavesOutACME: the request path quotes the timeouts and
// retries of the app's traffic, not those of HAProxy's ACME relay
// backend (retries 2 there), nor nginx's ACME location.
func TestRequestPathLeavesOutACME(t *testing.T) {
	page := string(exampleSite(t)["stacks/do-perl-ha/index.html"])
	if strings.Contains(page, "<code>retries 2</code>") {
		t.Error("the request path quotes the ACME backend's retries 2 as the app traffic's")
	}
	if !strings.Contains(page, "<code>retries 3</code>") {
		t.Error("the request path lacks the app backend's retries 3")
	}
}

// TestBudgetHeartbeat: for gthread and gevent workers gunicorn's timeout
// is a heartbeat limit; the page must not say it ends a slow request.
func TestBudgetHeartbeat(t *testing.T) {
	files := exampleSite(t)
	for _, st := range []string{"do-python-ha", "do-python-50k"} { // gthread, gevent
		page := html.UnescapeString(string(files["stacks/"+st+"/index.html"]))
		if strings.Contains(page, "gives up on a stuck worker first") || !strings.Contains(page, "it is a heartbeat limit") {
			t.Errorf("%s: the budget says gunicorn's timeout ends a slow request", st)
		}
	}
}

// TestStackFileQuotedInCommands: the runbook's commands name the stack
// file as one shell word. Its directory may be named anything printable
// ("ops stacks/$(touch pwned)"): a copied "hacompile vet …" or "git add
// …" used to run what the name held.
func TestStackFileQuotedInCommands(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "ops stacks", "$(touch pwned)")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	src := `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
`
	if err := os.WriteFile(filepath.Join(sub, "t.cue"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := compile.Compile([]string{sub}, dir, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	files, err := site.Render(res, site.Options{Source: func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, p)) }})
	if err != nil {
		t.Fatal(err)
	}
	text := html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(string(files["stacks/t/procedures.html"]), ""))
	const quoted = "'ops stacks/$(touch pwned)/t.cue'"
	for _, want := range []string{"hacompile vet " + quoted, "git add " + quoted + " out/"} {
		if !strings.Contains(text, want) {
			t.Errorf("procedures lack %q", want)
		}
	}
	for _, bad := range []string{"vet ops stacks", "add ops stacks"} {
		if strings.Contains(text, bad) {
			t.Errorf("procedures name the stack file unquoted: %q", bad)
		}
	}
}

// TestBalancerHealthText: the request path says how the balancer judges
// app hosts. nginx has no active check (its health settings other than
// the path are refused for it), so its page must not describe one; an
// HAProxy balancer's page gives its checks.
func TestBalancerHealthText(t *testing.T) {
	for _, c := range []struct{ kind, extra, want, not string }{
		{"nginx", "", "No active health check: nginx judges each host by its answers to live requests. A host failing 3 times within 2 s is skipped for 2 s", "Health check: GET"},
		{"haproxy", `monitoring: address: "10.0.0.2"`, "Health check: GET /healthz every 1 s, timeout 1 s; 2 failures take a host out", "No active health check"},
	} {
		res, opt := compileStack(t, `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "`+c.kind+`"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
`+c.extra)
		files, err := site.Render(res, opt)
		if err != nil {
			t.Fatal(err)
		}
		text := section(t, files["stacks/t/index.html"], "hop-balancer", "hop-app-nginx")
		if !strings.Contains(text, c.want) || strings.Contains(text, c.not) {
			t.Errorf("%s balancer: the request path says\n%s\nwant %q and not %q", c.kind, text, c.want, c.not)
		}
	}
}

// TestDatabaseHeadroomOnePooler: one host's PgBouncer is counted in the
// singular.
func TestDatabaseHeadroomOnePooler(t *testing.T) {
	res, opt := compileStack(t, `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
database: {host: "db1.internal", name: "shop", pool_size: 2, max_overflow: 1, max_connections: 40, pooler: {default_pool_size: 10, reserve_pool_size: 2}}
`)
	files, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	text := html.UnescapeString(regexp.MustCompile(`\s+`).ReplaceAllString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(string(files["stacks/t/index.html"]), " "), " "))
	if want := "1 host's PgBouncer (app1) × (default_pool_size 10 + reserve_pool_size 2)"; !strings.Contains(text, want) {
		i := strings.Index(text, "Database connections")
		t.Errorf("want %q, the page has %q", want, text[max(i, 0):min(len(text), max(i, 0)+600)])
	}
}

// TestPullProcedures: on a stack whose hosts pull, a change and a
// rollback reach the hosts by publishing (a push or a rollback on the
// hosts would be undone by their next apply); with canary hosts, by
// publishing to :canary and promoting.
func TestPullProcedures(t *testing.T) {
	page := exampleSite(t)["stacks/do-python-ha/procedures.html"]
	deploy := section(t, page, "deploy", "rollback")
	back := section(t, page, "rollback", "add-app-host")
	for _, want := range []string{
		"reaches the hosts only through a signed publish of the committed out/do-python-ha/",
		"hacompile publish --oci 10.10.0.40:5000/ops/shop:stable --sign-key <signing-key.pem> --plain-http stacks/do-python-ha.cue",
		"Every host applies it within 1 minute.",
	} {
		if !strings.Contains(deploy, want) {
			t.Errorf("deploy lacks %q:\n%s", want, deploy)
		}
	}
	if strings.Contains(deploy, "hacompile push") {
		t.Errorf("deploy of a pulling stack says to push:\n%s", deploy)
	}
	if !strings.Contains(back, "hacompile publish --oci 10.10.0.40:5000/ops/shop:stable") || strings.Contains(back, "hacompile rollback") {
		t.Errorf("rollback of a pulling stack must publish the files before the change:\n%s", back)
	}

	res, opt := compileStack(t, `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
delivery: pull: {registry: "registry.example.com", repository: "ops/shop", canary_hosts: ["app1"]}
`)
	files, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	deploy = section(t, files["stacks/t/procedures.html"], "deploy", "rollback")
	back = section(t, files["stacks/t/procedures.html"], "rollback", "add-app-host")
	for _, want := range []string{
		"hacompile publish --oci registry.example.com/ops/shop:canary --sign-key <signing-key.pem> stacks/t.cue",
		"app1 follow :canary and apply it within 20 minutes",
		"hacompile promote t --from canary --to stable --wait 40m --verify-key <public-key.pem>",
	} {
		if !strings.Contains(deploy, want) {
			t.Errorf("canary deploy lacks %q:\n%s", want, deploy)
		}
	}
	if !strings.Contains(back, "ops/shop:canary") || !strings.Contains(back, "ops/shop:stable") {
		t.Errorf("a rollback must publish to both channels:\n%s", back)
	}
}

// TestHostListsCompact: on a fleet, the procedures name hosts in
// natural order with runs of consecutive numbers shortened to their ends,
// each end linked to its host's page; and the hosts that a push treats
// alike (the deploy table) or a change reaches alike (a preview) share
// one row. A 40-host fleet's deploy table lists every host exactly once,
// in rows that all differ.
func TestHostListsCompact(t *testing.T) {
	res := compileFleet(t, 40, "")
	files, err := site.Render(res, site.Options{})
	if err != nil {
		t.Fatal(err)
	}
	page := string(files["stacks/fleet/procedures.html"])
	run := `<a href="hosts/app4.html">app4</a>…<a href="hosts/app8.html">app8</a>`
	if !strings.Contains(page, run) {
		t.Errorf("the procedures do not list app4 to app8 as %s", run)
	}
	if strings.Contains(page, `<a href="hosts/app5.html">`) {
		t.Error("the procedures link app5, inside a run of hosts")
	}
	// The deploy table: its rows, each host once.
	i := strings.Index(page, `id="deploy"`)
	j := strings.Index(page, `id="rollback"`)
	if i < 0 || j < i {
		t.Fatal("no deploy section")
	}
	deploy := page[i:j]
	rows := regexp.MustCompile(`<tr><td>(.*?)</td>(.*?)</tr>`).FindAllStringSubmatch(deploy, -1)
	if len(rows) == 0 || len(rows) > 6 {
		t.Fatalf("the deploy table of 40 hosts has %d rows; want one per roles and actions (2 to 6)", len(rows))
	}
	seen := map[string]int{}
	cells := map[string]bool{}
	link := regexp.MustCompile(`<a href="hosts/([a-z]+)(\d+)\.html">`)
	for _, r := range rows {
		if cells[r[2]] {
			t.Errorf("two rows of the deploy table say %s", r[2])
		}
		cells[r[2]] = true
		// Each item is one host or a run from its first to its last.
		for _, item := range strings.Split(r[1], ", ") {
			ends := link.FindAllStringSubmatch(item, -1)
			switch len(ends) {
			case 1:
				seen[ends[0][1]+ends[0][2]]++
			case 2:
				from, _ := strconv.Atoi(ends[0][2])
				to, _ := strconv.Atoi(ends[1][2])
				if ends[0][1] != ends[1][1] || to-from < 2 || !strings.Contains(item, "…") {
					t.Errorf("the deploy table lists %q", item)
				}
				for n := from; n <= to; n++ {
					seen[ends[0][1]+strconv.Itoa(n)]++
				}
			default:
				t.Errorf("the deploy table lists %q", item)
			}
		}
	}
	for _, h := range res.Rendered[0].Stack.HostNames() {
		if seen[h] != 1 {
			t.Errorf("the deploy table lists %s %d times", h, seen[h])
		}
	}
	if len(seen) != 40 {
		t.Errorf("the deploy table lists %d hosts; want the 40", len(seen))
	}
	// Database failover: every app host's settings change alike.
	fo := page[strings.Index(page, `id="failover-database"`):strings.Index(page, `id="certificates"`)]
	n := 0
	for _, r := range regexp.MustCompile(`<tr><td>.*?</tr>`).FindAllString(fo, -1) {
		if strings.Contains(r, `hosts/app4.html`) {
			n++
			if !strings.Contains(r, run) {
				t.Errorf("the failover preview's row of app4 is %s; want app4…app8 in it", r)
			}
		}
	}
	if n != 1 {
		t.Errorf("the failover preview lists app4 in %d rows; want one", n)
	}
}

// TestCloudInitOnHostPage: a host's cloud-init user data is listed on
// its own page (its excerpt, digest and size), where the search index
// and every link to it lead; the stack files page keeps the stack's
// other files only. On a large fleet that page was one listing per host.
func TestCloudInitOnHostPage(t *testing.T) {
	files := exampleSite(t)
	host := string(files["stacks/do-python-ha/hosts/app1.html"])
	i := strings.Index(host, `<section class="file" id="cloud-init">`)
	if i < 0 {
		t.Fatal("app1's page has no cloud-init section")
	}
	ci := host[i:]
	for _, want := range []string{"out/do-python-ha/cloud-init/app1.yaml", "packages", "runcmd", `<dt>sha256</dt>`} {
		if !strings.Contains(ci, want) {
			t.Errorf("app1's cloud-init section lacks %q", want)
		}
	}
	if !strings.Contains(host, `cloud-init user data: <a href="#cloud-init">`) {
		t.Error("app1's facts do not link its cloud-init section")
	}
	stackFiles := string(files["stacks/do-python-ha/files.html"])
	if strings.Contains(stackFiles, "cloud-init/app1.yaml") {
		t.Error("the stack files page still lists app1's cloud-init")
	}
	if !strings.Contains(stackFiles, "monitoring/") {
		t.Error("the stack files page lost the monitoring files")
	}
	index := string(files["stacks/do-python-ha/search-index.js"])
	if !strings.Contains(index, `"t":"cloud-init/app1.yaml","x":"do-python-ha · cloud-init","u":"stacks/do-python-ha/hosts/app1.html#cloud-init"`) {
		t.Error("the search index does not lead to app1's cloud-init on its page")
	}
	for p, b := range files {
		if strings.Contains(string(b), "files.html#file-cloud-init-") {
			t.Errorf("%s links a cloud-init document on the stack files page", p)
		}
	}
}

// TestPullProceduresDeliverByPublish: on a stack whose hosts pull, every
// procedure step and host page line that delivers a change publishes it
// (as Deploy does) and says how to see the hosts apply it: a push there
// is undone by the next apply. The publish of an added host covers it
// (the tag it follows); a stack that pushes still pushes.
func TestPullProceduresDeliverByPublish(t *testing.T) {
	files := exampleSite(t)
	page := files["stacks/do-python-ha/procedures.html"]
	const publish = "hacompile publish --oci 10.10.0.40:5000/ops/shop:stable --sign-key <signing-key.pem> --plain-http stacks/do-python-ha.cue"
	const watch = "journalctl -u hacompile-pull-do-python-ha.service -n 20"
	for _, c := range []struct{ id, next, who string }{
		{"add-app-host", "remove-app-host", "Watch lb1, lb2, app4 converge"},
		{"remove-app-host", "drain", "Watch lb1, lb2 converge"},
		{"drain", "failover-balancer", "Watch lb1, lb2 converge"},
		{"failover-database", "certificates", "Watch app1…app3 converge"},
	} {
		text := section(t, page, c.id, c.next)
		if strings.Contains(text, "hacompile push") {
			t.Errorf("%s of a pulling stack pushes:\n%s", c.id, text)
		}
		for _, want := range []string{publish, c.who, watch} {
			if !strings.Contains(text, want) {
				t.Errorf("%s lacks %q:\n%s", c.id, want, text)
			}
		}
	}
	add := section(t, page, "add-app-host", "remove-app-host")
	if !strings.Contains(add, "app4 included, under the tag app4 follows (stable-do-python-ha-app4)") {
		t.Errorf("the publish that adds app4 does not say it covers app4's tag:\n%s", add)
	}
	for p, b := range files {
		if !strings.HasPrefix(p, "stacks/do-python-ha/hosts/") {
			continue
		}
		if strings.Contains(string(b), "hacompile push") || !strings.Contains(html.UnescapeString(string(b)), publish) {
			t.Errorf("%s does not say that a publish delivers to the host", p)
		}
	}
	perl := section(t, files["stacks/do-perl-ha/procedures.html"], "drain", "failover-balancer")
	if !strings.Contains(perl, "hacompile push do-perl-ha") || strings.Contains(perl, "hacompile publish") {
		t.Errorf("a stack that pushes must still push:\n%s", perl)
	}
	if !strings.Contains(string(files["stacks/do-perl-ha/hosts/lb1.html"]), "Push this host alone with <code>hacompile push do-perl-ha --hosts lb1</code>") {
		t.Error("the host page of a stack that pushes no longer says how to push the host")
	}
}

// TestAddHostImageForPull: a host of a stack that pulls boots from an
// image carrying what cloud-init does not provide (the agent without
// agent.url, the key without public_key): a stock image stops the first
// boot. With both in the stack, the stock image does.
func TestAddHostImageForPull(t *testing.T) {
	add := section(t, exampleSite(t)["stacks/do-python-ha/procedures.html"], "add-app-host", "remove-app-host")
	for _, want := range []string{
		"--image <image-id>", "not the stock debian-13-x64",
		"the hacompile agent at /usr/local/bin/hacompile and the publishers' public key at /etc/hacompile/pull.pub",
		"ssh root@10.10.0.14 ls -l /usr/local/bin/hacompile /etc/hacompile/pull.pub",
	} {
		if !strings.Contains(add, want) {
			t.Errorf("add-app-host lacks %q:\n%s", want, add)
		}
	}
	if strings.Contains(add, "--image debian-13-x64") {
		t.Errorf("add-app-host creates the host from the stock image:\n%s", add)
	}
	const key = `public_key: """
		-----BEGIN PUBLIC KEY-----
		MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExZscGFxbuVvH3io8zTePquC0+K3j
		mSVBqAHMgaXJvjjzw/XxoP4/cZCFFGhrwyeUe34Y7lR8N2vlqjT6Z1G24g==
		-----END PUBLIC KEY-----
		"""`
	const agent = `agent: {url: "https://example.com/hacompile", sha256: "` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}`
	for _, c := range []struct {
		name, pull string
		want, not  []string
	}{
		{"agent.url and public_key", agent + "\n" + key, []string{"--image debian-13-x64"}, []string{"<image-id>", "ls -l"}},
		{"agent.url only", agent, []string{"--image <image-id>", "the publishers' public key at /etc/hacompile/pull.pub", "ls -l /etc/hacompile/pull.pub"}, []string{"agent at", "--image debian-13-x64"}},
		{"public_key only", key, []string{"--image <image-id>", "the hacompile agent at /usr/local/bin/hacompile", "ls -l /usr/local/bin/hacompile\n"}, []string{"public key at", "--image debian-13-x64"}},
	} {
		res, opt := compileStack(t, `
name:     "t"
provider: "digitalocean"
region:   "nyc3"
domain:   "example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], size: "s-1vcpu-2gb"}
	app1: {address: "10.0.0.11", roles: ["app"], size: "s-1vcpu-2gb"}
}
balancer: kind: "nginx"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
delivery: pull: {
	registry:   "10.0.0.40:5000"
	repository: "ops/shop"
	`+c.pull+`
}
`)
		files, err := site.Render(res, opt)
		if err != nil {
			t.Fatal(err)
		}
		text := section(t, files["stacks/t/procedures.html"], "add-app-host", "remove-app-host")
		for _, w := range c.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: add-app-host lacks %q:\n%s", c.name, w, text)
			}
		}
		for _, n := range c.not {
			if strings.Contains(text, n) {
				t.Errorf("%s: add-app-host says %q:\n%s", c.name, n, text)
			}
		}
	}
}

// TestDrainNamesBackends: the drain's show stat filter names the host's
// server in each backend it is in, as the rendered haproxy.cfg names
// them: app_<name> with several apps, app with one.
func TestDrainNamesBackends(t *testing.T) {
	files := exampleSite(t)
	multi := section(t, files["stacks/multi-app/procedures.html"], "drain", "failover-balancer")
	for _, want := range []string{"grep '^app_api,app1,'", "grep '^app_web,app1,'", "(app_api, app_web)"} {
		if !strings.Contains(multi, want) {
			t.Errorf("multi-app's drain lacks %q:\n%s", want, multi)
		}
	}
	if strings.Contains(multi, "grep '^app,") {
		t.Errorf("multi-app's drain names a backend app it does not have:\n%s", multi)
	}
	one := section(t, files["stacks/do-perl-ha/procedures.html"], "drain", "failover-balancer")
	if !strings.Contains(one, "grep '^app,app1,'") {
		t.Errorf("do-perl-ha's drain lost its backend app:\n%s", one)
	}
}

// TestScalingTemplateHostPage: the launch template's host has no
// machine at its address (0.0.0.0, a placeholder): its page says how to
// reach an instance of the group, and that a change reaches them by a
// new template version and an instance refresh, not a push.
func TestScalingTemplateHostPage(t *testing.T) {
	page := html.UnescapeString(string(exampleSite(t)["stacks/aws-spot-asg/hosts/app.html"]))
	for _, want := range []string{
		"ssh -p 22 root@<private-address>",
		"aws ec2 describe-instances --region us-east-1 --filters Name=tag:aws:autoscaling:groupName,Values=aws-spot-asg",
		"a new launch template version and an instance refresh",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the template host's page lacks %q", want)
		}
	}
	for _, bad := range []string{"root@0.0.0.0", "hacompile push"} {
		if strings.Contains(page, bad) {
			t.Errorf("the template host's page says %q", bad)
		}
	}
}

// TestHostChangePreviews: adding or removing an app host previews the
// stack as the procedure's steps leave it (on a stack whose apps list
// their hosts, the host added to or removed from those lists too), and
// a preview that finds errors says vet fails on them before any step
// commits or delivers.
func TestHostChangePreviews(t *testing.T) {
	files := exampleSite(t)
	text := func(stack, from, to string) string {
		return html.UnescapeString(section(t, files["stacks/"+stack+"/procedures.html"], from, to))
	}
	add := text("multi-app", "add-app-host", "remove-app-host")
	for _, want := range []string{"Add app5 to apps.legacy.hosts", "Here vet fails", "db-pool: ", "238 server connections"} {
		if !strings.Contains(add, want) {
			t.Errorf("multi-app's add-app-host lacks %q:\n%s", want, add)
		}
	}
	if strings.Contains(add, "runs no app") {
		t.Errorf("multi-app's add-app-host previews app5 outside every app:\n%s", add)
	}
	rm := text("multi-app", "remove-app-host", "drain")
	for _, want := range []string{"and app4 from apps.legacy.hosts", "Here vet fails", "capacity: app \"legacy\""} {
		if !strings.Contains(rm, want) {
			t.Errorf("multi-app's remove-app-host lacks %q:\n%s", want, rm)
		}
	}
	if strings.Contains(rm, "which is no host") {
		t.Errorf("multi-app's remove-app-host previews apps.legacy.hosts still naming app4:\n%s", rm)
	}
	perl := text("do-perl-ha", "add-app-host", "remove-app-host")
	if i, j := strings.Index(perl, "Here vet fails"), strings.Index(perl, "git commit"); i < 0 || j < 0 || i > j {
		t.Errorf("do-perl-ha's add-app-host does not say vet fails (db-pool) before it commits:\n%s", perl)
	}
	if ok := text("python-celery-cache", "add-app-host", "remove-app-host"); strings.Contains(ok, "Here vet fails") {
		t.Errorf("python-celery-cache's add-app-host says vet fails, and it passes:\n%s", ok)
	}
}

// TestFirstCertificateProcedure: where app hosts get their certificate
// through the first-certificate nginx and certbot --webroot, the
// Certificates procedure says so and how to switch a host provisioned
// before (its renewal configuration says standalone) to the webroot;
// where the balancers run certbot standalone, neither.
func TestFirstCertificateProcedure(t *testing.T) {
	files := exampleSite(t)
	page := section(t, files["stacks/do-python-50k/procedures.html"], "certificates", "")
	for _, want := range []string{
		"nginx -c /etc/nginx/hacompile-acme.conf",
		"certbot certonly --webroot -w /var/www/letsencrypt",
		"certbot reconfigure --cert-name api.example.com --webroot -w /var/www/letsencrypt --deploy-hook 'systemctl try-reload-or-restart nginx'",
		"An ACME challenge may reach any app host",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("do-python-50k's procedures lack %q", want)
		}
	}
	lb := section(t, files["stacks/python-celery-cache/procedures.html"], "certificates", "")
	for _, not := range []string{"hacompile-acme.conf", "certbot reconfigure"} {
		if strings.Contains(lb, not) {
			t.Errorf("python-celery-cache's procedures (certbot standalone on the balancers) say %q", not)
		}
	}
}
