package keepalived

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/internal/testtool"
)

// liveBalancer is one balancer of TestLiveStateMetric: its namespace,
// its sandbox root (the rendered files under it) and its keepalived.
type liveBalancer struct {
	name  string
	ns    netns
	root  string
	alive string
	cmd   *exec.Cmd
}

func (b *liveBalancer) prom() []byte {
	out, _ := os.ReadFile(filepath.Join(b.root, nodeexporter.TextfileDir, PromFile))
	return out
}

// timer runs the state script as the timer does: no arguments, in the
// balancer's namespace.
func (b *liveBalancer) timer(t *testing.T) {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", string(b.ns), filepath.Join(b.root, StatePath)).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: the state script (timer): %v\n%s", b.name, err, out)
	}
}

// TestLiveStateMetric runs the rendered keepalived.conf and state script
// of two balancers under Debian's keepalived, each in a network
// namespace of its own: the textfile node_exporter reads says MASTER and
// holding the address on the master, BACKUP and not holding it on the
// other; a master whose keepalived stops (systemctl stop: SIGTERM) or is
// killed flips the other to MASTER holding the address, and the stopped
// one to no state; a master whose balancer daemon stops says FAULT.
func TestLiveStateMetric(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "keepalived", "keepalived")
	testtool.Require(t, "flock", "util-linux")
	if testing.Short() {
		t.Skip("starts keepalived")
	}
	ns := joined(t, "10.98.0.5", "10.98.0.6")
	s := testtool.Load(t, "stacks/livestate.cue", `
name:   "livestate"
domain: "shop.example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.98.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	lb2:  {address: "10.98.0.6", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.98.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.98.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {kind: "haproxy", failover: "keepalived", vrrp: {virtual_address: "10.98.0.4", router_id: 78, interface: "vrrp0"}}
monitoring: address: "10.98.0.2"
app: {runtime: "perl", psgi: "/srv/shop/app.psgi", working_dir: "/srv/shop"}
`)
	const vip = "10.98.0.4"
	inst := InstanceName(s)

	// start renders each balancer's files into a sandbox of its own,
	// starts keepalived on them and returns the balancers, master first.
	start := func(t *testing.T) (master, backup *liveBalancer) {
		var lbs []*liveBalancer
		for i, name := range []string{"lb1", "lb2"} {
			root := t.TempDir()
			os.Chmod(root, 0o755)
			files, err := Gen{}.Generate(s, artifact.Options{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			var own []artifact.File
			for _, f := range files {
				if f.Host == name {
					own = append(own, f)
				}
			}
			if !slices.ContainsFunc(own, func(f artifact.File) bool { return f.Path == StatePath }) {
				t.Fatalf("%s: no %s among the rendered files", name, StatePath)
			}
			testtool.WriteTree(t, root, own...)
			for _, d := range []string{"run", nodeexporter.TextfileDir} {
				os.MkdirAll(filepath.Join(root, d), 0o755)
			}
			for d := filepath.Join(root, "usr/local/sbin"); strings.HasPrefix(d, root); d = filepath.Dir(d) {
				os.Chmod(d, 0o755)
			}
			b := &liveBalancer{name: name, ns: ns[i], root: root, alive: filepath.Join(root, "alive")}
			os.WriteFile(b.alive, nil, 0o644)
			cfgPath := filepath.Join(root, ConfigPath)
			cfg, _ := os.ReadFile(cfgPath)
			from := `script "/usr/bin/systemctl is-active --quiet haproxy.service"`
			want := `notify "` + filepath.Join(root, StatePath) + `"`
			if !bytes.Contains(cfg, []byte(from)) || !bytes.Contains(cfg, []byte(want)) {
				t.Fatalf("%s: want %s and %s in\n%s", name, from, want, cfg)
			}
			cfg = bytes.Replace(cfg, []byte(from), []byte(`script "/usr/bin/test -e `+b.alive+`"`), 1)
			os.WriteFile(cfgPath, cfg, 0o644)
			b.cmd = startKeepalived(t, bin, b.ns, cfgPath, root, filepath.Join(root, PIDFile), filepath.Join(root, "run/vrrp.pid"))
			lbs = append(lbs, b)
		}
		if d := waitFor(10*time.Second, func() bool { return lbs[0].ns.hasAddr(t, vip) || lbs[1].ns.hasAddr(t, vip) }); d < 0 {
			t.Fatal("no balancer took the virtual address")
		}
		if lbs[1].ns.hasAddr(t, vip) {
			lbs[0], lbs[1] = lbs[1], lbs[0]
		}
		return lbs[0], lbs[1]
	}
	// expect waits until b's textfile has want's samples.
	expect := func(t *testing.T, b *liveBalancer, within time.Duration, state string, held int, why string) {
		t.Helper()
		want := wantSamples(inst, vip, state, true, held)
		ok := func() bool { return slices.Equal(samples(b.prom()), want) }
		if !ok() && waitFor(within, ok) < 0 {
			t.Fatalf("%s: %s: textfile\n%s\nwant samples\n%s", b.name, why, b.prom(), strings.Join(want, "\n"))
		}
		checkMetrics(t, b.prom())
	}
	steady := func(t *testing.T, master, backup *liveBalancer) {
		t.Helper()
		expect(t, master, 5*time.Second, "MASTER", 1, "master")
		expect(t, backup, 5*time.Second, "BACKUP", 0, "backup")
		// The timer's run re-checks and writes the same, also when
		// keepalived announced nothing since the script arrived (it ran
		// before a push brought the script): the address says who is master.
		for _, b := range []*liveBalancer{master, backup} {
			b.timer(t)
			os.Remove(filepath.Join(b.root, StateFile))
		}
		expect(t, master, 0, "MASTER", 1, "master, after the timer's run")
		expect(t, backup, 0, "BACKUP", 0, "backup, after the timer's run")
		for _, b := range []*liveBalancer{master, backup} {
			b.timer(t)
		}
		expect(t, master, 0, "MASTER", 1, "master, with no state file")
		expect(t, backup, 0, "BACKUP", 0, "backup, with no state file")
		t.Logf("steady: %s\n%s", master.name, master.prom())
	}

	t.Run("master stopped", func(t *testing.T) {
		master, backup := start(t)
		steady(t, master, backup)
		// systemctl stop keepalived: SIGTERM.
		syscall.Kill(master.cmd.Process.Pid, syscall.SIGTERM)
		expect(t, backup, 5*time.Second, "MASTER", 1, "the backup after the master stopped")
		expect(t, master, 5*time.Second, "STOP", 0, "the stopped master")
		master.timer(t)
		expect(t, master, 0, "STOP", 0, "the stopped master, after the timer's run")
		t.Logf("after the stop: %s\n%s", backup.name, backup.prom())
	})

	t.Run("master killed", func(t *testing.T) {
		master, backup := start(t)
		steady(t, master, backup)
		syscall.Kill(-master.cmd.Process.Pid, syscall.SIGKILL)
		expect(t, backup, 5*time.Second, "MASTER", 1, "the backup after the master was killed")
		// The killed keepalived said nothing and left the address
		// configured: the timer finds it in no state, holding the
		// address (KeepalivedAddressHolderMismatch).
		master.timer(t)
		expect(t, master, 0, "STOP", 1, "the killed master, after the timer's run")
		master.ns.run(t, "address", "del", vip+"/24", "dev", "vrrp0")
		master.timer(t)
		expect(t, master, 0, "STOP", 0, "the killed master without the address")
	})

	t.Run("balancer daemon stopped", func(t *testing.T) {
		master, backup := start(t)
		steady(t, master, backup)
		os.Remove(master.alive)
		expect(t, master, 6*time.Second, "FAULT", 0, "the master whose daemon stopped")
		expect(t, backup, 6*time.Second, "MASTER", 1, "the backup")
	})
}
