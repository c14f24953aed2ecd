package keepalived

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// nsSeq tells apart the namespaces of tests running side by side.
var nsSeq atomic.Int32

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

// joined creates a namespace per address, each with an interface named
// vrrp0 holding that address, all on one bridge in a namespace of its
// own: a private network that nothing else shares.
func joined(t *testing.T, addrs ...string) []netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		testtool.Missing(t, "ip (iproute2) not installed")
	}
	// Unique per call: the live tests run side by side.
	id := fmt.Sprintf("hck%d%c", os.Getpid(), 'a'+rune(nsSeq.Add(1)))
	add := func(n netns) {
		if out, err := exec.Command("ip", "netns", "add", string(n)).CombinedOutput(); err != nil {
			t.Skipf("cannot create a network namespace: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", string(n)).Run() })
	}
	hub := netns(id + "hub")
	add(hub)
	hub.run(t, "link", "add", "br0", "type", "bridge")
	hub.run(t, "link", "set", "br0", "up")
	var out []netns
	for i, addr := range addrs {
		n := netns(fmt.Sprintf("%s%c", id, 'a'+i))
		add(n)
		in, port := fmt.Sprintf("%sx%d", id, i), fmt.Sprintf("%sy%d", id, i)
		if b, err := exec.Command("ip", "link", "add", in, "netns", string(n), "type", "veth", "peer", "name", port, "netns", string(hub)).CombinedOutput(); err != nil {
			t.Fatalf("veth: %v %s", err, b)
		}
		hub.run(t, "link", "set", port, "master", "br0", "up")
		n.run(t, "link", "set", in, "name", "vrrp0")
		n.run(t, "address", "add", addr+"/24", "dev", "vrrp0")
		n.run(t, "link", "set", "vrrp0", "up")
		n.run(t, "link", "set", "lo", "up")
		out = append(out, n)
	}
	return out
}

// runKeepalived starts keepalived (VRRP only, in the foreground) in ns
// on cfg; it returns the process, stopped at the end of the test.
func runKeepalived(t *testing.T, bin string, ns netns, cfg, dir string) *exec.Cmd {
	t.Helper()
	return startKeepalived(t, bin, ns, cfg, dir, filepath.Join(dir, "k.pid"), filepath.Join(dir, "v.pid"))
}

// startKeepalived is runKeepalived with its log in dir and its pid files
// where given.
func startKeepalived(t *testing.T, bin string, ns netns, cfg, dir, pid, vrrpPid string) *exec.Cmd {
	t.Helper()
	log := filepath.Join(dir, "keepalived.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", string(ns), bin, "--dont-fork", "--log-console", "--vrrp",
		"--use-file", cfg, "--pid", pid, "--vrrp_pid", vrrpPid)
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

// TestLiveFailover runs the rendered keepalived.conf of two balancers,
// each in a network namespace of its own joined by a veth pair, and
// measures how long the virtual address takes to move when the master is
// lost (its keepalived killed, as when the host dies) and when its
// balancer daemon stops (the tracked check fails). The check script is
// the one thing changed: it tests for a file instead of asking systemd.
func TestLiveFailover(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "keepalived", "keepalived")
	if testing.Short() {
		t.Skip("starts keepalived")
	}
	ns := joined(t, "10.99.0.5", "10.99.0.6", "10.99.0.7")
	a, b, foreign := ns[0], ns[1], ns[2]
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
monitoring: enabled: false
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
	var startWith func(t *testing.T, check bool) (*exec.Cmd, string, netns, netns)
	start := func(t *testing.T) (*exec.Cmd, string, netns, netns) { return startWith(t, true) }
	startWith = func(t *testing.T, check bool) (*exec.Cmd, string, netns, netns) {
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
			if !check {
				cfg = strings.Replace(cfg, "    check_unicast_src\n", "", 1)
			}
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

	// A balancer that is not this stack's on the same network (a copy of
	// the stack left running elsewhere, a staging clone) with this
	// stack's router id and address, the highest priority and these
	// balancers as its peers: check_unicast_src drops its
	// advertisements, and the master keeps the address. Without
	// check_unicast_src it takes the address away. (keepalived already
	// ignores an advertisement for other addresses, with a log line.)
	for _, check := range []bool{true, false} {
		t.Run(fmt.Sprintf("foreign VRRP, check_unicast_src %v", check), func(t *testing.T) {
			_, _, mns, bns := startWith(t, check)
			dir := t.TempDir()
			os.Chmod(dir, 0o755)
			cfg := fmt.Sprintf(`global_defs {
    router_id other-stack
}
vrrp_instance other {
    state MASTER
    priority 254
    interface vrrp0
    virtual_router_id %d
    version 3
    advert_int 0.5
    unicast_src_ip 10.99.0.7
    unicast_peer {
        10.99.0.5
        10.99.0.6
    }
    virtual_ipaddress {
        10.99.0.4/24 dev vrrp0
    }
}
`, s.Balancer.VRRP.RouterID)
			p := filepath.Join(dir, "keepalived.conf")
			os.WriteFile(p, []byte(cfg), 0o644)
			runKeepalived(t, bin, foreign, p, dir)
			lost := waitFor(4*time.Second, func() bool { return !mns.hasAddr(t, vip) && !bns.hasAddr(t, vip) })
			if check && lost >= 0 {
				t.Errorf("the foreign advertisements took the address from this stack's balancers after %v", lost)
			}
			if !check && lost < 0 {
				t.Errorf("without check_unicast_src the foreign advertisements changed nothing: the test proves nothing")
			}
			t.Logf("check_unicast_src %v: this stack's balancers lost the address: %v", check, lost >= 0)
		})
	}
}
