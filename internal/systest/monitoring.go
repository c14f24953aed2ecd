//go:build unix

package systest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/keepalived"
)

// monitor is Prometheus running on the stack's monitoring address with
// the rendered prometheus.yml and rules, in a namespace of its own on
// the test network.
type monitor struct {
	ns   string
	cmd  *exec.Cmd
	done chan struct{}
	dir  string
	// scrape is the slowest of the configuration's scrape and
	// evaluation intervals.
	scrape time.Duration
}

// startMonitor starts Prometheus (the machine's, from Debian) on the
// files out/<stack>/monitoring/ holds.
func (e *env) startMonitor(fast bool) (*monitor, error) {
	prom, err := execLookPath("prometheus")
	if err != nil {
		return nil, fmt.Errorf("the monitoring scenario runs Debian's Prometheus: apt-get install prometheus")
	}
	name := "monitor"
	if fast {
		name = "monitor-fast"
	}
	dir := filepath.Join(e.opt.WorkDir, e.s.Name, name)
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	var cfg []byte
	for _, f := range e.st.Files {
		if f.Host == "" && strings.HasPrefix(f.Path, "monitoring/") {
			if err := os.WriteFile(filepath.Join(dir, filepath.Base(f.Path)), f.Content, 0o644); err != nil {
				return nil, err
			}
			if f.Path == "monitoring/prometheus.yml" {
				cfg = f.Content
			}
		}
	}
	if cfg == nil {
		return nil, fmt.Errorf("no monitoring/prometheus.yml rendered")
	}
	if fast {
		b, err := fastIntervals(cfg)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), b, 0o644); err != nil {
			return nil, err
		}
		cfg = b
	}
	var c struct {
		Global struct {
			Scrape string `yaml:"scrape_interval"`
			Eval   string `yaml:"evaluation_interval"`
		} `yaml:"global"`
	}
	if err := yaml.Unmarshal(cfg, &c); err != nil {
		return nil, fmt.Errorf("prometheus.yml: %w", err)
	}
	mon := &monitor{dir: dir}
	for _, v := range []string{c.Global.Scrape, c.Global.Eval} {
		if d, err := time.ParseDuration(v); err == nil && d > 0 && d > mon.scrape {
			mon.scrape = d
		}
	}
	if mon.scrape == 0 {
		mon.scrape = time.Minute // Prometheus's default
	}
	addr, err := e.monitorAddr()
	if err != nil {
		return nil, err
	}
	if e.monNS == "" {
		ns, _, err := e.fab.Attach("monitor", addr)
		if err != nil {
			return nil, err
		}
		if e.rip != nil {
			if err := e.rip.route(e, ns); err != nil {
				return nil, err
			}
		}
		e.monNS = ns
	}
	mon.ns = e.monNS
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", mon.ns, prom,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:9090")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	mon.cmd = cmd
	mon.done = make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(mon.done) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := waitTCP(ctx, mon.ns, "127.0.0.1:9090"); err != nil {
		mon.stop()
		b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
		return nil, fmt.Errorf("prometheus did not start: %v\n%s", err, lastLines(string(b), 5))
	}
	return mon, nil
}

// monitorAddr is where Prometheus runs: the stack's monitoring address
// (balancers admit their metrics to it alone), else a free one.
func (e *env) monitorAddr() (netip.Addr, error) {
	if a, err := netip.ParseAddr(monitoringAddress(e.s)); err == nil {
		return a, nil
	}
	used := map[netip.Addr]bool{}
	for _, a := range e.addrs {
		used[a] = true
	}
	for _, a := range extraAddrs(e.s) {
		used[a] = true
	}
	if e.clb != nil {
		used[e.clb.addr] = true
	}
	for a := e.fab.network.Masked().Addr().Next().Next(); e.fab.network.Contains(a); a = a.Next() {
		if !used[a] {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address for Prometheus in %s", e.fab.network)
}

func (mon *monitor) stop() {
	if mon.cmd != nil && mon.cmd.Process != nil {
		_ = syscall.Kill(-mon.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-mon.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-mon.cmd.Process.Pid, syscall.SIGKILL)
			<-mon.done
		}
	}
}

// api GETs a Prometheus API path and decodes its data.
func (mon *monitor) api(ctx context.Context, path string, v any) error {
	d := &nsDialer{ns: mon.ns, d: net.Dialer{Timeout: 2 * time.Second}}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:9090"+path, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var env struct {
		Status string          `json:"status"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil || env.Status != "success" {
		return fmt.Errorf("%s: %s", path, lastLines(string(b), 3))
	}
	return json.Unmarshal(env.Data, v)
}

// machineWide are the alerts on figures a container reads from the
// machine it shares with every other host of the test (CPU, memory,
// disks, the kernel's file table and OOM counter): at steady state they
// say how busy this machine is, not how a host is.
var machineWide = map[string]bool{
	"HostHighCPU": true, "HostHighMemory": true, "HostDiskSpaceLow": true, "HostDiskWillFillIn24Hours": true,
	"HostFileDescriptorsHigh": true, "HostOOMKill": true,
}

type target struct {
	Labels     map[string]string `json:"labels"`
	ScrapeURL  string            `json:"scrapeUrl"`
	Health     string            `json:"health"`
	LastError  string            `json:"lastError"`
	LastScrape time.Time         `json:"lastScrape"`
}

type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

// targets waits until every target has been scraped at least once.
func (mon *monitor) targets(ctx context.Context, wait time.Duration) ([]target, error) {
	deadline := time.Now().Add(wait)
	for {
		var data struct {
			Active []target `json:"activeTargets"`
		}
		err := mon.api(ctx, "/api/v1/targets", &data)
		if err == nil && len(data.Active) > 0 && !slices.ContainsFunc(data.Active, func(t target) bool { return t.Health == "unknown" }) {
			return data.Active, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				return data.Active, nil
			}
			return nil, err
		}
		time.Sleep(time.Second)
	}
}

// evaluatedSince waits until every rule group has been evaluated after
// t (each group runs once per evaluation interval), or for at most wait.
func (mon *monitor) evaluatedSince(ctx context.Context, t time.Time, wait time.Duration) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		var data struct {
			Groups []struct {
				LastEvaluation time.Time `json:"lastEvaluation"`
			} `json:"groups"`
		}
		err := mon.api(ctx, "/api/v1/rules", &data)
		done := err == nil && len(data.Groups) > 0
		for _, g := range data.Groups {
			done = done && g.LastEvaluation.After(t)
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// alerts lists the alerts pending or firing, but the dead man's switch
// that always fires by design.
func (mon *monitor) alerts(ctx context.Context) ([]alert, error) {
	var data struct {
		Alerts []alert `json:"alerts"`
	}
	if err := mon.api(ctx, "/api/v1/alerts", &data); err != nil {
		return nil, err
	}
	var out []alert
	for _, a := range data.Alerts {
		if a.Labels["alertname"] != "Watchdog" {
			out = append(out, a)
		}
	}
	return out, nil
}

func describeAlerts(as []alert) string {
	var parts []string
	for _, a := range as {
		l := fmt.Sprintf("host=%q", a.Labels["host"])
		for _, k := range []string{"name", "server", "instance"} {
			if v := a.Labels[k]; v != "" && (k != "instance" || a.Labels["host"] == "") {
				l += fmt.Sprintf(",%s=%q", k, v)
			}
		}
		parts = append(parts, fmt.Sprintf("%s{%s} %s", a.Labels["alertname"], l, a.State))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

// monitoring is scenario 4: Prometheus with the rendered configuration
// sees every target up and nothing firing at steady state, and a frozen
// app host raises its alert.
func (e *env) monitoring(ctx context.Context, sr *ScenarioReport) {
	if !e.s.Monitoring.Enabled {
		sr.Note = "monitoring.enabled is false: nothing is rendered to run"
		return
	}
	mon, err := e.startMonitor(false)
	if err != nil {
		sr.check("Prometheus starts with the rendered prometheus.yml", false, "%v", err)
		return
	}
	defer mon.stop()
	ts, err := mon.targets(ctx, 3*mon.scrape+10*time.Second)
	scraped := time.Now()
	if err != nil {
		sr.check("Prometheus scrapes its targets", false, "%v", err)
		return
	}
	// Exporters on the monitoring host itself probe managed services
	// outside the stack (a provider's database or Redis), which the test
	// network does not have: they are listed, not judged.
	external := map[string]bool{}
	for _, t := range ts {
		if strings.Contains(t.ScrapeURL, "//127.0.0.1:") || strings.Contains(t.ScrapeURL, "//localhost:") {
			external[t.Labels["job"]] = true
			continue
		}
		what := fmt.Sprintf("target %s (%s) is up", t.ScrapeURL, t.Labels["job"])
		sr.check(what, t.Health == "up", "%s", firstNonEmpty(t.LastError, t.Health))
	}
	var notes []string
	if len(external) > 0 {
		notes = append(notes, "not judged: "+strings.Join(slices.Sorted(mapKeys(external)), ", ")+" (probes of managed services outside the stack, from the monitoring host)")
	}
	notes = append(notes, "machine-wide alerts ("+strings.Join(slices.Sorted(mapKeys(machineWide)), ", ")+") are not judged at steady state: containers read the shared machine's figures")
	sr.Note = strings.Join(notes, "; ")
	// Rules judge the first scrapes once every group has been evaluated
	// after them.
	mon.evaluatedSince(ctx, scraped, mon.scrape+10*time.Second)
	as, err := mon.alerts(ctx)
	as = slices.DeleteFunc(as, func(a alert) bool {
		// A failed unit the stack does not own was listed by the boot
		// scenario: the container's, not the host's.
		foreign := a.Labels["alertname"] == "SystemdUnitFailed" && slices.Contains(e.foreignFailed[a.Labels["host"]], a.Labels["name"])
		return external[a.Labels["job"]] || machineWide[a.Labels["alertname"]] || foreign
	})
	// A failed unit says why in its journal.
	detail := firstNonEmpty(describeAlerts(as), fmt.Sprint(err))
	for _, a := range as {
		if m := e.hosts[a.Labels["host"]]; m != nil && a.Labels["alertname"] == "SystemdUnitFailed" {
			j, _ := m.Exec(ctx, "journalctl", "--no-pager", "-o", "short-monotonic", "-n", "6", "-u", a.Labels["name"])
			detail += "\n" + a.Labels["host"] + ": " + strings.TrimSpace(j)
		}
	}
	sr.check("no alert pending or firing at steady state", err == nil && len(as) == 0, "%s", detail)
	e.vrrpSeries(ctx, mon, sr)

	// A frozen host stops answering its scrapes: its alert goes pending.
	apps := e.hostsWith("app")
	if len(apps) == 0 {
		return
	}
	victim := apps[len(apps)-1]
	e.hosts[victim].Freeze(true)
	defer e.hosts[victim].Freeze(false)
	start := time.Now()
	var seen []alert
	for time.Since(start) < 3*mon.scrape+15*time.Second {
		as, _ := mon.alerts(ctx)
		seen = nil
		for _, a := range as {
			if a.Labels["host"] == victim || strings.Contains(a.Labels["instance"], e.addr(victim)+":") {
				seen = append(seen, a)
			}
		}
		if len(seen) > 0 {
			break
		}
		time.Sleep(time.Second)
	}
	sr.check(fmt.Sprintf("%s frozen: its alerts go pending", victim), len(seen) > 0, "%s", firstNonEmpty(describeAlerts(seen), fmt.Sprintf("none after %s", time.Since(start).Round(time.Second))))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// vrrpSeries checks what the balancers publish of their VRRP state:
// exactly one MASTER, exactly one holder of the address, the same
// balancer, and on a reserved IP the one the provider routes it to.
func (e *env) vrrpSeries(ctx context.Context, mon *monitor, sr *ScenarioReport) {
	if !keepalived.Monitored(e.s) {
		return
	}
	masters, holders, err := vrrpState(ctx, mon)
	if err != nil {
		sr.check("the balancers publish their VRRP state", false, "%v", err)
		return
	}
	ok := len(masters) == 1 && slices.Equal(masters, holders)
	detail := fmt.Sprintf("MASTER: %v; holding the address: %v", masters, holders)
	if e.rip != nil {
		ok = ok && masters[0] == e.rip.Holder()
		detail += "; the provider routes it to " + e.rip.Holder()
	}
	sr.check("one balancer is VRRP master and holds the address, by its published metrics", ok, "%s", detail)
}

// vrrpState is what Prometheus has of the balancers' published VRRP
// state now: the hosts that say they are MASTER and those that say they
// hold the address, sorted.
func vrrpState(ctx context.Context, mon *monitor) (masters, holders []string, err error) {
	hostsWhere := func(q string) ([]string, error) {
		var data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		}
		if err := mon.api(ctx, "/api/v1/query?query="+url.QueryEscape(q), &data); err != nil {
			return nil, err
		}
		var hosts []string
		for _, r := range data.Result {
			hosts = append(hosts, r.Metric["host"])
		}
		slices.Sort(hosts)
		return hosts, nil
	}
	masters, err1 := hostsWhere(keepalived.StateMetric + `{state="MASTER"} == 1`)
	holders, err2 := hostsWhere(keepalived.HeldMetric + ` == 1`)
	return masters, holders, errors.Join(err1, err2)
}
