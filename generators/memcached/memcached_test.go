package memcached_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/memcached"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

func stack(t *testing.T, cache string) *schema.Stack {
	t.Helper()
	return testtool.Load(t, "t.cue", `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: {
	lb1:    {address: "127.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1:   {address: "127.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	cache1: {address: "127.0.0.31", roles: ["cache"], cores: 2, memory_mb: 2048}
}
balancer: kind: "nginx"
monitoring: enabled: false
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
`+cache)
}

// TestFiles: a Memcached without a host runs on the cache host, on its
// private address and loopback, TCP only, with the stack's memory share
// and connections; a managed one (given by host) renders nothing.
func TestFiles(t *testing.T) {
	t.Parallel()
	s := stack(t, `cache: {engine: "memcached", memory_percent: 50, max_connections: 2000}`)
	files, err := memcached.Gen{}.Generate(s, artifact.Options{})
	if err != nil || len(files) != 1 || files[0].Host != "cache1" || files[0].Path != memcached.ConfPath {
		t.Fatalf("files %+v, %v", files, err)
	}
	conf := string(files[0].Content)
	for _, want := range []string{"\n-l 127.0.0.31,127.0.0.1\n", "\n-p 11211\n", "\n-U 0\n", "\n-m 1024\n", "\n-c 2000\n", "\n-t 2\n", "\n-u memcache\n"} {
		if !strings.Contains(conf, want) {
			t.Errorf("memcached.conf lacks %q:\n%s", want, conf)
		}
	}
	m := stack(t, `cache: {engine: "memcached", host: "mc.example.com"}`)
	if fs, err := (memcached.Gen{}).Generate(m, artifact.Options{}); err != nil || len(fs) != 0 {
		t.Errorf("managed Memcached: %d files, %v", len(fs), err)
	}
}

// TestLive starts Debian's memcached with the options of the rendered
// file (on the cache host's loopback address and a free port): it
// stores and returns an item over TCP, says it has the rendered memory (10% of 2048 MB: 204 MB)
// and connection limits, and does not answer on UDP.
func TestLive(t *testing.T) {
	t.Parallel()
	bin := testtool.Require(t, "memcached", "memcached")
	port := testtool.FreePort(t, "127.0.0.31")
	s := stack(t, fmt.Sprintf(`cache: {engine: "memcached", port: %d, memory_percent: 10, max_connections: 100}`, port))
	files, err := memcached.Gen{}.Generate(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, l := range strings.Split(string(files[0].Content), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			args = append(args, strings.Fields(l)...)
		}
	}
	if os.Geteuid() != 0 {
		// -u is for root only.
		for i := range args {
			if args[i] == "-u" {
				args = append(args[:i], args[i+2:]...)
				break
			}
		}
	}
	cmd := exec.Command(bin, args...)
	log, _ := os.Create(filepath.Join(t.TempDir(), "log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.31:%d", port)
	var c net.Conn
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err = net.Dial("tcp", addr); err == nil || time.Now().After(end) {
			break
		}
	}
	if err != nil {
		t.Fatalf("memcached does not listen on %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "set k 0 60 5\r\nhello\r\nget k\r\nstats settings\r\n")
	var out strings.Builder
	for !strings.Contains(out.String(), "END\r\n"+"STAT") || !strings.HasSuffix(out.String(), "END\r\n") {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading: %v\n%s", err, out.String())
		}
		out.WriteString(l)
	}
	got := out.String()
	for _, want := range []string{"STORED\r\n", "VALUE k 0 5\r\nhello\r\n", "STAT maxbytes 213909504\r\n", "STAT maxconns 100\r\n", "STAT udpport 0\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("memcached said no %q:\n%s", want, got)
		}
	}
}
