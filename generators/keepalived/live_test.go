package keepalived

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// netns is a network namespace the test creates and removes.
type netns string

func (n netns) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", string(n)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v\n%s", n, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// hasAddr reports whether addr is on the namespace's VRRP interface.
func (n netns) hasAddr(t *testing.T, addr string) bool {
	out, err := exec.Command("ip", "-n", string(n), "-brief", "address", "show", "dev", "vrrp0").CombinedOutput()
	return err == nil && bytes.Contains(out, []byte(" "+addr+"/"))
}

// pair creates two namespaces joined by a veth pair whose ends are both
// named vrrp0, with the given addresses.
func pair(t *testing.T, addrA, addrB string) (netns, netns) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testtool.Missing(t, "ip (iproute2) not installed")
	}
	id := fmt.Sprintf("hcka%d", os.Getpid())
	a, b := netns(id+"a"), netns(id+"b")
	for _, n := range []netns{a, b} {
		if out, err := exec.Command("ip", "netns", "add", string(n)).CombinedOutput(); err != nil {
			t.Skipf("cannot create a network namespace: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", string(n)).Run() })
	}
	if out, err := exec.Command("ip", "link", "add", id+"x", "netns", string(a), "type", "veth", "peer", "name", id+"y", "netns", string(b)).CombinedOutput(); err != nil {
		t.Fatalf("veth: %v %s", err, out)
	}
	for n, l := range map[netns]string{a: id + "x", b: id + "y"} {
		n.run(t, "link", "set", l, "name", "vrrp0")
	}
	for n, addr := range map[netns]string{a: addrA, b: addrB} {
		n.run(t, "address", "add", addr+"/24", "dev", "vrrp0")
		n.run(t, "link", "set", "vrrp0", "up")
		n.run(t, "link", "set", "lo", "up")
	}
	return a, b
}

// runKeepalived starts keepalived (VRRP only, in the foreground) in ns
// on cfg; it returns the process, stopped at the end of the test.
func runKeepalived(t *testing.T, bin string, ns netns, cfg, dir string) *exec.Cmd {
	t.Helper()
	log := filepath.Join(dir, "keepalived.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", string(ns), bin, "--dont-fork", "--log-console", "--vrrp",
		"--use-file", cfg, "--pid", filepath.Join(dir, "k.pid"), "--vrrp_pid", filepath.Join(dir, "v.pid"))
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
			return
		default:
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			b, _ := os.ReadFile(log)
			t.Logf("%s keepalived log:\n%s", ns, b)
		}
	})
	return cmd
}

// waitFor polls cond until it holds or limit passes; it returns how long
// it took, or -1.
func waitFor(limit time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for time.Since(start) < limit {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}

// TestLiveFailover runs the rendered keepalived.conf of two balancers,
// each in a network namespace of its own joined by a veth pair, and
// measures how long the virtual address takes to move when the master is
// lost (its keepalived killed, as when the host dies) and when its
// balancer daemon stops (the tracked check fails). The check script is
// the one thing changed: it tests for a file instead of asking systemd.
func TestLiveFailover(t *testing.T) {
	bin := testtool.Require(t, "keepalived", "keepalived")
	if testing.Short() {
		t.Skip("starts keepalived")
	}
	a, b := pair(t, "10.99.0.5", "10.99.0.6")
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Load("stacks/live.cue", []byte(`
name:   "live"
domain: "shop.example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "10.99.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	lb2:  {address: "10.99.0.6", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.99.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.99.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {kind: "haproxy", failover: "keepalived", vrrp: {virtual_address: "10.99.0.4", router_id: 77, interface: "vrrp0"}}
app: {runtime: "perl", psgi: "/srv/shop/app.psgi", working_dir: "/srv/shop"}
`))
	if err != nil {
		t.Fatal(err)
	}
	const vip = "10.99.0.4"
	// start runs both balancers and returns the master's process, its
	// check file and namespace, and the backup's namespace. Started
	// together, either may win the first election (nopreempt: priorities
	// 150 and 140 differ in their wait by 20 ms).
	start := func(t *testing.T) (*exec.Cmd, string, netns, netns) {
		files, err := Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		alive := map[string]string{}
		var cmds []*exec.Cmd
		for _, h := range []struct {
			name string
			ns   netns
		}{{"lb1", a}, {"lb2", b}} {
			dir := t.TempDir()
			os.Chmod(dir, 0o755)
			alive[h.name] = filepath.Join(dir, "alive")
			os.WriteFile(alive[h.name], nil, 0o644)
			var cfg string
			for _, f := range files {
				if f.Host == h.name && f.Path == ConfigPath {
					cfg = string(f.Content)
				}
			}
			from := `script "/usr/bin/systemctl is-active --quiet haproxy.service"`
			if !strings.Contains(cfg, from) {
				t.Fatalf("no %s in\n%s", from, cfg)
			}
			cfg = strings.Replace(cfg, from, `script "/usr/bin/test -e `+alive[h.name]+`"`, 1)
			p := filepath.Join(dir, "keepalived.conf")
			os.WriteFile(p, []byte(cfg), 0o644)
			cmds = append(cmds, runKeepalived(t, bin, h.ns, p, dir))
		}
		if d := waitFor(10*time.Second, func() bool { return a.hasAddr(t, vip) || b.hasAddr(t, vip) }); d < 0 {
			t.Fatal("no balancer took the virtual address")
		}
		time.Sleep(time.Second)
		if a.hasAddr(t, vip) && b.hasAddr(t, vip) {
			t.Fatal("both balancers hold the virtual address")
		}
		if a.hasAddr(t, vip) {
			return cmds[0], alive["lb1"], a, b
		}
		return cmds[1], alive["lb2"], b, a
	}

	t.Run("master lost", func(t *testing.T) {
		master, _, mns, bns := start(t)
		syscall.Kill(-master.Process.Pid, syscall.SIGKILL)
		d := waitFor(5*time.Second, func() bool { return bns.hasAddr(t, vip) })
		t.Logf("master lost: the backup holds %s %v after the master's keepalived was killed", vip, d)
		if d < 0 || d > 3*time.Second {
			t.Errorf("the backup took the address after %v, want within 3s", d)
		}
		// A killed keepalived leaves the address behind; a lost host would not answer for it.
		mns.run(t, "address", "del", vip+"/24", "dev", "vrrp0")
	})

	t.Run("balancer daemon stopped", func(t *testing.T) {
		_, alive, mns, bns := start(t)
		os.Remove(alive)
		d := waitFor(6*time.Second, func() bool { return bns.hasAddr(t, vip) && !mns.hasAddr(t, vip) })
		t.Logf("daemon stopped: the backup holds %s %v after the master's balancer stopped; the master released it", vip, d)
		if d < 0 || d > 3500*time.Millisecond {
			t.Errorf("the address moved after %v, want within 3.5s (two checks a second apart, then at once)", d)
		}
	})
}
