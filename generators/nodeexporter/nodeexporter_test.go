package nodeexporter_test

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
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

func load(t *testing.T, src string) *schema.Stack {
	t.Helper()
	return testtool.Load(t, "t.cue", src)
}

func stack(t *testing.T, port int) *schema.Stack {
	return load(t, fmt.Sprintf(`
name:   "t"
domain: "shop.example.com"
tls: mode: "certbot"
hosts: {
	lb1:  {address: "127.0.0.1", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "nginx"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
monitoring: ports: node: %d
`, port))
}

func files(t *testing.T, s *schema.Stack, opt artifact.Options) map[string]artifact.File {
	t.Helper()
	fs, err := nodeexporter.Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]artifact.File{}
	for _, f := range fs {
		if !bytes.HasPrefix(bytes.TrimPrefix(f.Content, []byte("#!/bin/sh\n")), []byte(artifact.Header("#", s))) {
			t.Errorf("%s/%s lacks the generated-by header", f.Host, f.Path)
		}
		m[f.Host+"/"+f.Path] = f
	}
	return m
}

// TestContent: every host gets the ARGS file on its own address; only
// the TLS-terminating balancer gets the certificate job.
func TestContent(t *testing.T) {
	s := stack(t, 9100)
	m := files(t, s, artifact.Options{})
	for _, want := range []string{"lb1/" + nodeexporter.ArgsPath, "app1/" + nodeexporter.ArgsPath,
		"lb1/" + nodeexporter.CertScriptPath, "lb1/" + nodeexporter.CertServicePath, "lb1/" + nodeexporter.CertTimerPath} {
		if _, ok := m[want]; !ok {
			t.Errorf("no %s", want)
		}
	}
	if len(m) != 5 {
		t.Errorf("%d files, want 5", len(m))
	}
	if a := string(m["app1/"+nodeexporter.ArgsPath].Content); !strings.Contains(a, "--web.listen-address=10.0.0.11:9100 ") ||
		!strings.Contains(a, "--collector.systemd") || !strings.Contains(a, "--collector.textfile.directory=/var/lib/prometheus/node-exporter") {
		t.Errorf("app1 ARGS:\n%s", a)
	}
}

// TestLive starts Debian's prometheus-node-exporter with the rendered
// ARGS on 127.0.0.1, runs the rendered certificate script on a real
// certificate (paths under a sandbox root) and reads back every series
// the host alerts use.
func TestLive(t *testing.T) {
	bin := testtool.Require(t, "prometheus-node-exporter", "prometheus-node-exporter")
	testtool.Require(t, "openssl", "openssl")
	root := t.TempDir()
	s := stack(t, testtool.FreePort(t, "127.0.0.1"))
	m := files(t, s, artifact.Options{Root: root})
	for _, f := range m {
		if !strings.HasPrefix(f.Path, "usr/") {
			continue
		}
		p := filepath.Join(root, f.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, f.Content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cert := filepath.Join(root, s.TLS.Certificate)
	os.MkdirAll(filepath.Dir(cert), 0o755)
	os.MkdirAll(filepath.Join(root, nodeexporter.TextfileDir), 0o755)
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10",
		"-subj", "/CN=shop.example.com", "-keyout", filepath.Join(root, "key.pem"), "-out", cert).CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(root, nodeexporter.CertScriptPath)).CombinedOutput(); err != nil {
		t.Fatalf("certificate script: %v\n%s", err, out)
	}

	args := string(m["lb1/"+nodeexporter.ArgsPath].Content)
	i := strings.Index(args, "ARGS=\"")
	fields := strings.Fields(strings.TrimSuffix(strings.TrimSpace(args[i+len("ARGS=\""):]), "\""))
	var log bytes.Buffer
	cmd := exec.Command(bin, fields...)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := nodeexporter.ListenAddress(s, s.Hosts["lb1"])
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node_exporter does not answer on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, series := range []string{"node_cpu_seconds_total{", "node_memory_MemAvailable_bytes ", "node_memory_MemTotal_bytes ",
		"node_filesystem_avail_bytes{", "node_filesystem_size_bytes{", "node_filesystem_readonly{", "node_filefd_allocated ",
		"node_filefd_maximum ", "node_vmstat_oom_kill ", `node_scrape_collector_success{collector="systemd"}`,
		nodeexporter.CertPresentMetric + `{path="` + cert + `"} 1`, nodeexporter.CertMetric + `{path="` + cert + `"} `} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
}

// TestPortClash: an exporter port another listener of the host has is an
// error that names the host and both uses.
func TestPortClash(t *testing.T) {
	for src, want := range map[string]string{
		`monitoring: ports: node: 80`:    "hosts.app1: monitoring.ports.node: monitoring.ports.node (node_exporter) 80 is also app.http_port (nginx) on this host: give one of them another port",
		`monitoring: ports: mtail: 9100`: "hosts.app1: monitoring.ports.mtail: monitoring.ports.node (node_exporter) 9100 is also monitoring.ports.mtail (mtail) on this host: give one of them another port",
	} {
		s := load(t, `
name:   "t"
domain: "shop.example.com"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "nginx"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`+src)
		if _, err := (nodeexporter.Gen{}).Generate(s, artifact.Options{}); err == nil || err.Error() != want {
			t.Errorf("%s: error %v, want %s", src, err, want)
		}
	}
}
