package sysctl_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/sysctl"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestKeysExist requires every key the example stacks set to exist under
// /proc/sys on this kernel: a misspelt key is silently ignored by
// sysctl --system at boot, so it must be caught here.
func TestKeysExist(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/core/somaxconn"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("/proc/sys is not readable: %v", err)
		}
		t.Skipf("/proc/sys is not readable: %v", err)
	}
	checked := 0
	for _, s := range testtool.LoadStacks(t) {
		files, err := sysctl.Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != len(s.Hosts) {
			t.Fatalf("%s: %d sysctl files for %d hosts", s.Name, len(files), len(s.Hosts))
		}
		for _, f := range files {
			sc := bufio.NewScanner(bytes.NewReader(f.Content))
			for sc.Scan() {
				line := sc.Text()
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				key, value, ok := strings.Cut(line, " = ")
				if !ok || value == "" {
					t.Errorf("%s: malformed line %q", s.Name, line)
					continue
				}
				p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
				if _, err := os.Stat(p); err != nil {
					t.Errorf("%s: sysctl key %s does not exist (%s)", s.Name, key, p)
				}
				checked++
			}
			if f.Reload.String() != "sysctl --system" {
				t.Errorf("reload action = %q", f.Reload.String())
			}
		}
	}
	if checked < 8 {
		t.Fatalf("only %d keys checked", checked)
	}
}

// TestPerHost: each host reserves the ports its own services listen on
// (in the ephemeral range), in the kernel's list syntax, which a network
// namespace's kernel accepts and reads back unchanged; only a
// self-hosted Redis host allows memory overcommit; and a stack may not
// set either key itself.
func TestPerHost(t *testing.T) {
	s := testtool.Load(t, "t.cue", `
name:   "t"
domain: "example.com"
tls: {mode: "certbot", email: "ops@example.com"}
hosts: {
	lb1:    {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1:   {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	cache1: {address: "10.0.0.31", roles: ["cache"], cores: 1, memory_mb: 1024}
}
balancer: kind: "haproxy"
monitoring: address: "10.0.0.2"
cache: engine: "redis"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", bind: port: 8001, http_port: 8080}
tuning: sysctl: "net.ipv4.ip_local_port_range": "1024 65535"
`)
	files, err := sysctl.Gen{}.Generate(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		got[f.Host] = string(f.Content)
	}
	for host, want := range map[string]string{
		"lb1":    "net.ipv4.ip_local_reserved_ports = 8404-8405,8888,9100\n",
		"app1":   "net.ipv4.ip_local_reserved_ports = 8001,8080,9100\n",
		"cache1": "net.ipv4.ip_local_reserved_ports = 6379,9100,9121\n",
	} {
		if !strings.Contains(got[host], want) {
			t.Errorf("%s: want %q in\n%s", host, want, got[host])
		}
		if over := strings.Contains(got[host], "vm.overcommit_memory = 1\n"); over != (host == "cache1") {
			t.Errorf("%s: vm.overcommit_memory set: %v", host, over)
		}
	}
	for _, key := range []string{sysctl.ReservedPortsKey, sysctl.OvercommitKey} {
		s2 := testtool.Load(t, "t.cue", "name: \"t\"\ndomain: \"example.com\"\nhosts: web1: {address: \"10.0.0.10\", roles: [\"app\"], cores: 1, memory_mb: 1024}\n"+
			"balancer: kind: \"cloud\"\napp: {runtime: \"python\", module: \"wsgi:app\", working_dir: \"/srv/app\", bind: port: 8000}\n"+
			"tuning: sysctl: \""+key+"\": \"1\"\n")
		if _, err := (sysctl.Gen{}).Generate(s2, artifact.Options{}); err == nil || !strings.Contains(err.Error(), "remove it") {
			t.Errorf("a stack setting %s: %v", key, err)
		}
	}

	// The kernel's own reading of the value, in a network namespace of
	// the test's (the setting is per namespace).
	if os.Geteuid() != 0 {
		testtool.Missing(t, "needs root for a network namespace")
	}
	testtool.Require(t, "unshare", "util-linux")
	testtool.Require(t, "sysctl", "procps")
	const v = "3903,8001,8080,9100"
	out, err := exec.Command("unshare", "--net", "sh", "-c", "sysctl -q -w net.ipv4.ip_local_reserved_ports="+v+" && cat /proc/sys/net/ipv4/ip_local_reserved_ports").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != v {
		t.Errorf("the kernel read %q back as %q (%v)", v, out, err)
	}
}
