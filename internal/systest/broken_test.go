//go:build unix

package systest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/rabbitmq"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// The scenarios that prove a fault is survived must fail on a stack
// built not to survive it. Each case takes an example stack, breaks the
// rendered user data of some hosts the way a stack without the feature
// would be rendered, and requires the scenario to report the failure.
// The example stacks as rendered pass the same scenarios in make
// systest (hacompile test on every stack).

func compileExamples(t *testing.T) map[string]*Stack {
	t.Helper()
	dir := filepath.Join(testtool.RepoRoot(), "internal", "testtool", "testdata")
	res, err := compile.Compile([]string{filepath.Join(dir, "stacks")}, dir, time.Now().UTC().Format(time.DateOnly))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Stack{}
	for _, r := range res.Rendered {
		st := &Stack{Stack: r.Stack, Files: r.Files, UserData: map[string][]byte{}, Set: &r.Set}
		for _, f := range r.Files {
			if f.Host == "" && strings.HasPrefix(f.Path, "cloud-init/") {
				st.UserData[strings.TrimSuffix(strings.TrimPrefix(f.Path, "cloud-init/"), ".yaml")] = f.Content
			}
		}
		out[r.Stack.Name] = st
	}
	return out
}

// needRoot skips (or, under CI, fails) where the test cannot boot hosts.
func needRoot(t *testing.T) {
	t.Helper()
	if err := Preflight(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the system test cannot run here: %v", err)
		}
		t.Skipf("the system test cannot run here: %v", err)
	}
}

// runBroken runs the scenarios on st with every stack's packages in
// the image (the one make systest builds) and returns the report.
func runBroken(t *testing.T, all map[string]*Stack, st *Stack, scenarios ...string) *Report {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	var pkgs []string
	for _, o := range all {
		if OSOf(o.Stack) == OSOf(st.Stack) {
			pkgs = append(pkgs, o.Packages()...)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rep, err := Run(ctx, st, Options{CacheDir: filepath.Join(cache, "hacompile"), Scenarios: scenarios, Packages: pkgs, Agent: agentBinary(t)})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	WriteText(&b, rep, false)
	t.Logf("report:\n%s", b.String())
	return rep
}

// agentBinary is hacompile built from this tree (go's build cache makes
// it quick after the first): the agent a stack that pulls finds in its
// hosts' image.
func agentBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "hacompile")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/hacompile")
	cmd.Dir = testtool.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/hacompile: %v\n%s", err, out)
	}
	return bin
}

// check finds a check of a scenario by the start of its name.
func findCheck(rep *Report, scenario, prefix string) (Check, bool) {
	for _, sc := range rep.Scenarios {
		if sc.Name != scenario {
			continue
		}
		for _, c := range sc.Checks {
			if strings.HasPrefix(c.What, prefix) {
				return c, true
			}
		}
	}
	return Check{}, false
}

// mutate rewrites the user data of the hosts with a role.
func mutate(st *Stack, role string, f func(string) string) {
	for _, h := range st.Stack.HostNames() {
		if st.Stack.Hosts[h].Has(role) {
			st.UserData[h] = []byte(f(string(st.UserData[h])))
		}
	}
}

// A self-hosted RabbitMQ at its default heartbeat (60 s, as hacompile
// rendered it before the worker fault): a frozen worker host keeps the
// tasks it prefetched for minutes, so the other workers cannot run them
// within the fault's bound, and nothing says the worker is gone. The
// backend scenario's worker fault must say so (the stack as rendered
// passes it in make systest). It is the longest case (8 hosts, two
// scenarios): declared first, it starts first.
func TestBrokenWorkerFrozen(t *testing.T) {
	needRoot(t)
	t.Parallel()
	all := compileExamples(t)
	st := all["python-celery-cache"]
	line := "heartbeat = " + fmt.Sprint(rabbitmq.HeartbeatSeconds)
	cut := 0
	for _, h := range st.Stack.HostNames() {
		if !st.Stack.Hosts[h].Has("queue") {
			continue
		}
		before := string(st.UserData[h])
		var kept []string
		for _, l := range strings.Split(before, "\n") {
			if strings.TrimSpace(l) != line {
				kept = append(kept, l)
			}
		}
		cut += len(strings.Split(before, "\n")) - len(kept)
		st.UserData[h] = []byte(strings.Join(kept, "\n"))
	}
	if cut != 1 {
		t.Fatalf("python-celery-cache's broker renders %q %d times, not once: update the test", line, cut)
	}
	rep := runBroken(t, all, st, ScenarioBoot, ScenarioBackend)
	if c, ok := findCheck(rep, ScenarioBackend, "Celery worker host frozen: every worker consumes"); !ok || !c.OK {
		t.Fatalf("the workers did not all consume before the fault, so nothing is shown: %+v", c)
	}
	var held, drop Check
	heldOK, dropOK := false, false
	for _, sc := range rep.Scenarios {
		for _, x := range sc.Checks {
			switch {
			case strings.HasPrefix(x.What, "Celery worker host ") && strings.HasSuffix(x.What, " frozen: it holds tasks it had prefetched"):
				held, heldOK = x, true
			case strings.HasPrefix(x.What, "Celery worker host ") && strings.Contains(x.What, " frozen: the broker drops it"):
				drop, dropOK = x, true
			}
		}
	}
	if !heldOK || !held.OK {
		t.Errorf("the frozen worker must still hold its prefetched tasks, or the fault was not felt: %+v", held)
	}
	if !dropOK || drop.OK {
		t.Errorf("at the default heartbeat the broker must not drop the frozen worker, and its tasks must wait, within the bound; the scenario said %+v", drop)
	}
	if rep.OK {
		t.Error("the report passed a broker that keeps a frozen worker's tasks")
	}
}

// HAProxy as Wave 1 rendered it: checks every 10 s, three to fall, no
// retries and no passive health: a dead app server costs requests.
func TestBrokenBackendFaults(t *testing.T) {
	needRoot(t)
	t.Parallel()
	all := compileExamples(t)
	st := all["do-perl-ha"]
	before := string(st.UserData["lb1"])
	mutate(st, "lb", func(ud string) string {
		ud = strings.Replace(ud, "default-server inter 1s fastinter 250ms downinter 1s fall 2 rise 2 observe layer7 error-limit 10 on-error mark-down",
			"default-server inter 10s fall 3 rise 2", 1)
		return strings.Replace(ud, "retry-on conn-failure empty-response response-timeout 502 503", "retry-on conn-failure", 1)
	})
	if string(st.UserData["lb1"]) == before {
		t.Fatal("the HAProxy backend settings this test removes are no longer rendered: update the test")
	}
	// And monitoring without the alert on stopped services: the fault
	// goes by unseen.
	stripped := false
	for i, f := range st.Files {
		if f.Host == "" && f.Path == "monitoring/alerts.yaml" {
			var kept []string
			skip := false
			for _, l := range strings.Split(string(f.Content), "\n") {
				if strings.HasPrefix(l, "      - alert: ") {
					skip = l == "      - alert: ServiceDown"
					stripped = stripped || skip
				}
				if !skip {
					kept = append(kept, l)
				}
			}
			st.Files[i].Content = []byte(strings.Join(kept, "\n"))
		}
	}
	if !stripped {
		t.Fatal("do-perl-ha renders no ServiceDown alert: update the test")
	}
	rep := runBroken(t, all, st, ScenarioBoot, ScenarioBackend)
	if c, ok := findCheck(rep, ScenarioBoot, "lb1: GET"); !ok || !c.OK {
		t.Fatalf("the broken stack did not boot, so nothing is shown: %+v", c)
	}
	c, ok := findCheck(rep, ScenarioBackend, "app server stopped: no request fails")
	if !ok || c.OK {
		t.Errorf("without retries and passive checks, stopping an app server must fail requests; the scenario said %+v", c)
	}
	c, ok = findCheck(rep, ScenarioBackend, "app server stopped: out of rotation within")
	if !ok || c.OK {
		t.Errorf("with 10 s checks the server cannot be out within 2 s; the scenario said %+v", c)
	}
	c, ok = findCheck(rep, ScenarioBackend, "app server stopped: alert ServiceDown")
	if !ok || c.OK {
		t.Errorf("without the ServiceDown rule, the stopped app server must go unalerted; the scenario said %+v", c)
	}
	if c, ok := findCheck(rep, ScenarioBackend, "host frozen (SIGSTOP): alert HostDown"); !ok || !c.OK {
		t.Errorf("HostDown is still rendered and must go pending for the frozen host: %+v", c)
	}
	if rep.OK {
		t.Error("the report passed a stack that does not survive a dead backend")
	}
}

// A reserved IP whose standby balancer never starts keepalived: losing
// the active balancer is an outage the scenario must report.
func TestBrokenFailover(t *testing.T) {
	needRoot(t)
	t.Parallel()
	all := compileExamples(t)
	st := all["do-python-ha"]
	if st.Stack.Balancer.Failover != "reserved-ip" {
		t.Fatalf("do-python-ha fails over with %q; the test breaks reserved-ip", st.Stack.Balancer.Failover)
	}
	var standby string
	for _, h := range st.Stack.HostNames() {
		if st.Stack.Hosts[h].Has("lb") {
			standby = h // the last by name: the lowest priority
		}
	}
	before := string(st.UserData[standby])
	var kept []string
	for _, l := range strings.Split(before, "\n") {
		if !strings.Contains(l, "systemctl enable keepalived") {
			kept = append(kept, l)
		}
	}
	st.UserData[standby] = []byte(strings.Join(kept, "\n"))
	if string(st.UserData[standby]) == before {
		t.Fatal("the standby's boot script does not start keepalived: update the test")
	}
	rep := runBroken(t, all, st, ScenarioBoot, ScenarioBalancer)
	c, ok := findCheck(rep, ScenarioBalancer, "failover")
	if !ok || c.OK {
		t.Errorf("with no keepalived on the standby, losing the active balancer must fail the scenario; it said %+v", c)
	}
	// Nothing takes over, so no balancer can publish itself as the new
	// VRRP master holding the address.
	c, ok = findCheck(rep, ScenarioBalancer, "after ")
	if !ok || c.OK {
		t.Errorf("with no keepalived on the standby, no balancer may publish itself master after the loss; the scenario said %+v", c)
	}
}

// An Auto Scaling group's instance whose boot runs no setup unit and
// whose app does not require one (as hacompile rendered it before the
// instance generator): nothing fetches its secrets, nobody logs in to
// provision them, and the instance never serves. The boot scenario must
// say so.
func TestBrokenInstanceSetup(t *testing.T) {
	needRoot(t)
	t.Parallel()
	all := compileExamples(t)
	st := all["aws-spot-asg"]
	app := st.Stack.App.Name
	before := string(st.UserData["app"])
	ud := strings.Replace(before, "Requires="+app+"-instance.service", "", 1)
	ud = strings.Replace(ud, "After="+app+"-instance.service", "", 1)
	var kept []string
	for _, l := range strings.Split(ud, "\n") {
		if !strings.Contains(l, "systemctl enable "+app+"-instance.service") {
			kept = append(kept, l)
		}
	}
	st.UserData["app"] = []byte(strings.Join(kept, "\n"))
	if len(kept) == len(strings.Split(ud, "\n")) || strings.Count(before, app+"-instance.service") == strings.Count(string(st.UserData["app"]), app+"-instance.service") {
		t.Fatal("the app unit no longer requires its instance setup: update the test")
	}
	rep := runBroken(t, all, st, ScenarioBoot)
	c, ok := findCheck(rep, ScenarioBoot, "app-1: its services are active")
	if !ok || c.OK {
		t.Errorf("an instance whose secrets nothing fetches must not come up; the scenario said %+v", c)
	}
	if rep.OK {
		t.Error("the report passed instances that cannot start their app")
	}
}

// Several apps on a host must be separate backends: a balancer whose
// check of one app's server goes to another app (here web's servers
// checked on api's port) takes web off a host when only api died there.
// The stack as rendered keeps serving web on the host (make systest).
func TestBrokenAppIsolation(t *testing.T) {
	needRoot(t)
	t.Parallel()
	all := compileExamples(t)
	st := all["multi-app"]
	changed := 0
	mutate(st, "lb", func(ud string) string {
		for _, h := range []string{"app1 10.60.0.11", "app2 10.60.0.12"} {
			if strings.Contains(ud, "server "+h+":80 check\n") {
				changed++
			}
			ud = strings.Replace(ud, "server "+h+":80 check\n", "server "+h+":80 check port 8081\n", 1)
		}
		return ud
	})
	if changed == 0 {
		t.Fatal("web's servers are no longer rendered as this test expects: update the test")
	}
	rep := runBroken(t, all, st, ScenarioBoot, ScenarioBackend)
	if c, ok := findCheck(rep, ScenarioBoot, "routing: GET https://shop.example.com/ reaches app web"); !ok || !c.OK {
		t.Fatalf("the broken stack does not route, so nothing is shown: %+v", c)
	}
	for _, what := range []string{
		"app server of api stopped on app1: app web keeps being served by app1",
		"app server of api stopped on app1: the balancer keeps app web's server on app1 up",
	} {
		c, ok := findCheck(rep, ScenarioBackend, what)
		if !ok || c.OK {
			t.Errorf("with web checked on api's port, stopping api must take web off app1; the scenario said %+v", c)
		}
	}
	if rep.OK {
		t.Error("the report passed a stack whose apps are not isolated")
	}
}

// Draining as a balancer that ignores hosts.<name>.drain would render
// it: the host keeps its weight, so requests keep reaching it after
// the push that was to drain it. The provisioning scenario's drain
// must say so (the stack as rendered passes it in make systest).
func TestBrokenDrain(t *testing.T) {
	needRoot(t)
	t.Parallel()
	all := compileExamples(t)
	st := all["do-perl-ha"]
	if st.Stack.Balancer.Kind != "haproxy" {
		t.Fatalf("do-perl-ha balances with %q; the test breaks HAProxy's drain", st.Stack.Balancer.Kind)
	}
	dropped := 0
	st.Alter = func(r *compile.Rendered) {
		for i, f := range r.Files {
			if f.Host != "" && f.Path == "etc/haproxy/haproxy.cfg" && strings.Contains(string(f.Content), " weight 0") {
				r.Files[i].Content = []byte(strings.ReplaceAll(string(f.Content), " weight 0", ""))
				dropped++
			}
		}
	}
	rep := runBroken(t, all, st, ScenarioBoot, ScenarioProvision)
	if dropped == 0 {
		t.Fatal("no rendering of the drained stack marked a server weight 0: update the test")
	}
	var c Check
	ok := false
	for _, sc := range rep.Scenarios {
		for _, x := range sc.Checks {
			if strings.HasPrefix(x.What, "drain ") && strings.HasSuffix(x.What, ": no new request reaches it once the push is done") {
				c, ok = x, true
			}
		}
	}
	if !ok || c.OK {
		t.Errorf("with the drained host still weighted, requests must keep reaching it after the push; the scenario said %+v", c)
	}
	if rep.OK {
		t.Error("the report passed a stack whose balancers do not drain")
	}
}

// A stack whose hosts never start their agent, or start it once and
// never enable its timer: the first never apply their artifact, the
// second apply it on first boot and would never follow a change. Both
// are broken on one boot of the stack, alternate hosts each way.
func TestBrokenPullFirstBoot(t *testing.T) {
	needRoot(t)
	t.Parallel()
	all := compileExamples(t)
	st := all["do-python-ha"]
	if !st.Stack.PullEnabled() {
		t.Fatal("do-python-ha does not pull: update the test")
	}
	never := map[string]bool{}
	for i, h := range st.Stack.HostNames() {
		never[h] = i%2 == 0
		before := string(st.UserData[h])
		var kept []string
		for _, l := range strings.Split(before, "\n") {
			enable := strings.Contains(l, "systemctl enable --now hacompile-pull-")
			start := strings.Contains(l, "systemctl start hacompile-pull-")
			if !enable && !(start && never[h]) {
				kept = append(kept, l)
			}
		}
		drop := 1
		if never[h] {
			drop = 2
		}
		if len(kept) != len(strings.Split(before, "\n"))-drop {
			t.Fatalf("%s: its boot script does not enable the pull timer and run the first apply as this test expects: update the test", h)
		}
		st.UserData[h] = []byte(strings.Join(kept, "\n"))
	}
	rep := runBroken(t, all, st, ScenarioPull)
	timer := "hacompile-pull-" + st.Stack.Name + ".timer"
	for _, h := range st.Stack.HostNames() {
		c, ok := findCheck(rep, ScenarioPull, h+": applied its artifact by itself on first boot")
		switch {
		case never[h] && (!ok || c.OK):
			t.Errorf("%s: a host whose boot never starts the agent must not be reported as applied; the scenario said %+v", h, c)
		case !never[h] && (!ok || !c.OK):
			t.Errorf("%s: its boot still runs the first apply, which the scenario must see: %+v", h, c)
		}
		if c, ok := findCheck(rep, ScenarioPull, h+": "+timer+" is enabled and waiting"); !ok || c.OK {
			t.Errorf("%s: a host whose timer was never enabled must not be reported as following changes; the scenario said %+v", h, c)
		}
	}
	if rep.OK {
		t.Error("the report passed hosts that never pull")
	}
}
