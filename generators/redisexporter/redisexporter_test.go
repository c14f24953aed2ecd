package redisexporter_test

import (
	"bytes"
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
	"github.com/hacompile/hacompile/generators/redisexporter"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

func load(t *testing.T, src string) *schema.Stack {
	t.Helper()
	return testtool.Load(t, "t.cue", src)
}

// stack has a self-hosted Redis on cache1 that is also the broker.
func stack(t *testing.T, addr string, redisPort, exporterPort int) *schema.Stack {
	return load(t, fmt.Sprintf(`
name:   "t"
domain: "shop.example.com"
hosts: {
	app1:   {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	w1:     {address: "10.0.0.21", roles: ["worker"], cores: 1, memory_mb: 1024}
	cache1: {address: %q, roles: ["cache"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
cache: {engine: "redis", port: %d, maxmemory_policy: "noeviction"}
queue: {engine: "redis", host: %q, port: %d, db: 1}
workers: {app: "shop", queues: ["celery", "emails"]}
monitoring: ports: redis: %d
`, addr, redisPort, addr, redisPort, exporterPort))
}

func TestContent(t *testing.T) {
	s := stack(t, "10.0.0.31", 6379, 9121)
	fs, err := redisexporter.Gen{}.Generate(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].Host != "cache1" || fs[0].Path != redisexporter.ArgsPath {
		t.Fatalf("files %+v", fs)
	}
	c := string(fs[0].Content)
	for _, want := range []string{artifact.Header("#", s), "--web.listen-address=10.0.0.31:9121 ", "--redis.addr=redis://127.0.0.1:6379 ",
		"--redis.password-file=" + redisexporter.PasswordFile, "--check-single-keys=db1=celery,db1=emails\""} {
		if !strings.Contains(c, want) {
			t.Errorf("lacks %q:\n%s", want, c)
		}
	}
	// A managed cache has no host to run it on.
	m := load(t, `
name: "m"
domain: "shop.example.com"
hosts: app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
cache: {engine: "redis", host: "redis.internal"}
`)
	if fs, err := (redisexporter.Gen{}).Generate(m, artifact.Options{}); err != nil || len(fs) != 0 {
		t.Errorf("managed cache: %v %v", fs, err)
	}
}

// TestLive starts redis-server with an ACL password on loopback and
// Debian's prometheus-redis-exporter with the rendered ARGS (the password
// file under a sandbox root), and reads the series the alerts use.
func TestLive(t *testing.T) {
	bin := testtool.Require(t, "prometheus-redis-exporter", "prometheus-redis-exporter")
	root := t.TempDir()
	redisPort := testtool.FreePort(t, "127.0.0.1")
	s := stack(t, "127.0.0.1", redisPort, testtool.FreePort(t, "127.0.0.1"))
	fs, err := redisexporter.Gen{}.Generate(s, artifact.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	const password = "test-only-password"
	pw := filepath.Join(root, redisexporter.PasswordFile)
	os.MkdirAll(filepath.Dir(pw), 0o755)
	os.WriteFile(pw, []byte(`{"`+redisexporter.RedisURL(s)+`": "`+password+`"}`), 0o600)

	start := func(name string, args ...string) *bytes.Buffer {
		var log bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = &log, &log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return &log
	}
	testtool.StartRedis(t, root, redisPort, password)
	args := string(fs[0].Content)
	i := strings.Index(args, "ARGS=\"")
	log := start(bin, strings.Fields(strings.TrimSuffix(strings.TrimSpace(args[i+len("ARGS=\""):]), "\""))...)
	addr := redisexporter.ListenAddress(s, s.Hosts["cache1"])
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			if strings.Contains(body, "redis_up 1") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis_exporter on %s: %v\n%s\n%s", addr, err, body, log.String())
		}
	}
	for _, series := range []string{"redis_memory_used_bytes ", "redis_memory_max_bytes 1.048576e+07", "redis_evicted_keys_total ",
		`redis_key_size{db="db1",key="emails"}`, `redis_key_size{db="db1",key="celery"}`} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if strings.Contains(body, password) {
		t.Error("the password shows in /metrics")
	}
}
