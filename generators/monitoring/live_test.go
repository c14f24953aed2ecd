package monitoring_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/mtail"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/generators/redisexporter"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// liveStack puts its hosts on loopback addresses so the rendered
// exporters can run here: node_exporter on each host's address, mtail
// on the app hosts, Redis and redis_exporter on the cache host.
func liveStack(t *testing.T, ports [4]int) *schema.Stack {
	return load(t, "live", fmt.Sprintf(`
tls: mode: "none"
hosts: {
	lb1:    {address: "127.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1:   {address: "127.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	cache1: {address: "127.0.0.31", roles: ["cache"], cores: 1, memory_mb: 1024}
}
balancer: kind: "nginx"
cache: {engine: "redis", port: %d}
monitoring: ports: {node: %d, mtail: %d, redis: %d}
`, ports[0], ports[1], ports[2], ports[3]))
}

// argsOf returns the words of a Debian ARGS="..." file.
func argsOf(t *testing.T, f artifact.File) []string {
	t.Helper()
	c := string(f.Content)
	i := strings.Index(c, "ARGS=\"")
	if i < 0 {
		t.Fatalf("%s has no ARGS", f.Path)
	}
	return strings.Fields(strings.TrimSuffix(strings.TrimSpace(c[i+len("ARGS=\""):]), "\""))
}

// TestLivePrometheus runs Debian's Prometheus on the rendered
// prometheus.yml and alerts.yaml against the exporters started as
// rendered, on loopback: every target is up, and no alert but the
// Watchdog is pending or firing (alerts on this machine's own CPU,
// memory and disks aside). The scrape and evaluation intervals
// are shortened to 1s in the test's copy; nothing else is changed.
func TestLivePrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus and exporters")
	}
	prom := testtool.Require(t, "prometheus", "prometheus")
	nodeBin := testtool.Require(t, "prometheus-node-exporter", "prometheus-node-exporter")
	mtailBin := testtool.Require(t, "mtail", "mtail")
	redisExp := testtool.Require(t, "prometheus-redis-exporter", "prometheus-redis-exporter")
	// One port for each kind, free on every loopback address used.
	var ports [4]int
	for i := range ports {
		ports[i] = testtool.FreePort(t, "127.0.0.1")
	}
	s := liveStack(t, ports)
	root := t.TempDir()
	opt := artifact.Options{Root: root}
	start := func(name string, args ...string) *exec.Cmd {
		t.Helper()
		var log bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("%s:\n%s", filepath.Base(name), log.String())
			}
		})
		return cmd
	}

	nodeFiles, err := nodeexporter.Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, nodeexporter.TextfileDir), 0o755)
	for _, f := range nodeFiles {
		if f.Path == nodeexporter.ArgsPath {
			start(nodeBin, argsOf(t, f)...)
		}
	}

	var mtailCmd *exec.Cmd
	mtailFiles, err := mtail.Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	accessLog := filepath.Join(root, mtail.AccessLog)
	os.MkdirAll(filepath.Dir(accessLog), 0o755)
	os.WriteFile(accessLog, nil, 0o644)
	prog := filepath.Join(root, mtail.ProgramPath)
	os.MkdirAll(filepath.Dir(prog), 0o755)
	for _, f := range mtailFiles {
		if f.Path == mtail.ProgramPath {
			os.WriteFile(prog, f.Content, 0o644)
		}
	}
	for _, f := range mtailFiles {
		if f.Path != mtail.DefaultsPath {
			continue
		}
		env := map[string]string{}
		for _, l := range strings.Split(string(f.Content), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
				env[k] = v
			}
		}
		// What Debian's mtail.service runs with /etc/default/mtail.
		mtailCmd = start(mtailBin, "--progs", filepath.Dir(prog), "--logtostderr", "--address", env["HOST"], "--port", env["PORT"], "--logs", env["LOGS"])
	}

	const password = "test-only-password"
	redis := testtool.StartRedis(t, root, s.Cache.Port, password)
	pw := filepath.Join(root, redisexporter.PasswordFile)
	os.MkdirAll(filepath.Dir(pw), 0o755)
	os.WriteFile(pw, []byte(`{"`+redisexporter.RedisURL(s)+`": "`+password+`"}`), 0o600)
	redisFiles, err := redisexporter.Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range redisFiles {
		start(redisExp, argsOf(t, f)...)
	}

	alerts, config := generate(t, s)
	dir := writeOut(t, alerts, config)
	cfg := strings.NewReplacer("scrape_interval: 15s", "scrape_interval: 1s", "scrape_timeout: 10s", "scrape_timeout: 1s",
		"evaluation_interval: 15s", "evaluation_interval: 1s").Replace(string(config))
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644)
	promAddr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t, "127.0.0.1"))
	start(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(root, "tsdb"),
		"--web.listen-address="+promAddr)

	get := func(path string, v any) error {
		resp, err := http.Get("http://" + promAddr + path)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return json.Unmarshal(b, v)
	}
	type target struct {
		ScrapePool string            `json:"scrapePool"`
		ScrapeURL  string            `json:"scrapeUrl"`
		Health     string            `json:"health"`
		LastError  string            `json:"lastError"`
		Labels     map[string]string `json:"labels"`
	}
	var targets struct {
		Data struct {
			ActiveTargets []target `json:"activeTargets"`
		} `json:"data"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := get("/api/v1/targets", &targets)
		up := 0
		for _, tg := range targets.Data.ActiveTargets {
			if tg.Health == "up" {
				up++
			}
		}
		// node ×3, nginxlog ×1, redis ×1.
		if err == nil && up == 5 && len(targets.Data.ActiveTargets) == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("targets not all up: %v %+v", err, targets.Data.ActiveTargets)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// A few evaluations with every target up: nothing but the Watchdog.
	time.Sleep(4 * time.Second)
	var alertsResp struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := get("/api/v1/alerts", &alertsResp); err != nil {
		t.Fatal(err)
	}
	// These read this machine's own state (a CI runner is busy, its disk
	// is what it is), not the configuration under test.
	machine := map[string]bool{"HostHighCPU": true, "HostHighMemory": true, "HostDiskSpaceLow": true,
		"HostDiskWillFillIn24Hours": true, "HostFileDescriptorsHigh": true}
	watchdog := false
	for _, a := range alertsResp.Data.Alerts {
		if machine[a.Labels["alertname"]] {
			continue
		}
		if a.Labels["alertname"] == "Watchdog" && a.State == "firing" {
			watchdog = true
			continue
		}
		t.Errorf("at steady state: %s %v", a.State, a.Labels)
	}
	if !watchdog {
		t.Error("the Watchdog is not firing")
	}

	// Faults: Redis stops, and mtail on app1. Their alerts go pending
	// (they fire after for_minutes, which promtool's tests cover).
	redis.Process.Kill()
	mtailCmd.Process.Kill()
	want := map[string]bool{"RedisDown": false, "TargetDown/mtail": false}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if err := get("/api/v1/alerts", &alertsResp); err != nil {
			t.Fatal(err)
		}
		for _, a := range alertsResp.Data.Alerts {
			name := a.Labels["alertname"]
			if name == "TargetDown" {
				name += "/" + a.Labels["exporter"]
			}
			if _, ok := want[name]; ok && a.State == "pending" {
				want[name] = true
			}
		}
		if want["RedisDown"] && want["TargetDown/mtail"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the faults, pending: %v\n%+v", want, alertsResp.Data.Alerts)
		}
	}
}
