package rabbitmq_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/rabbitmq"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

func stack(t *testing.T, extra string) *schema.Stack {
	t.Helper()
	return testtool.Load(t, "t.cue", `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: {
	lb1:  {address: "127.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "127.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	w1:   {address: "127.0.0.21", roles: ["worker"], cores: 1, memory_mb: 1024}
	mq1:  {address: "127.0.0.41", roles: ["queue"], cores: 1, memory_mb: 1024}
}
balancer: kind: "nginx"
monitoring: address: "127.0.0.2"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
workers: app: "shop"
`+extra)
}

// TestFiles: the queue host alone gets the node's configuration (AMQP
// on its private address, distribution on loopback, the stack's alarms,
// metrics per queue), the plugin list, and the setup script and unit;
// a managed broker renders nothing.
func TestFiles(t *testing.T) {
	t.Parallel()
	s := stack(t, `queue: {engine: "rabbitmq", vhost: "shop", memory_high_watermark_percent: 50, disk_free_limit_mb: 100}`)
	files, err := rabbitmq.Gen{}.Generate(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range files {
		if f.Host != "mq1" {
			t.Errorf("%s on %s", f.Path, f.Host)
		}
		got[f.Path] = string(f.Content)
	}
	for _, want := range []string{"listeners.tcp.1 = 127.0.0.41:5672\n", "distribution.listener.interface = 127.0.0.1\n",
		"vm_memory_high_watermark.relative = 0.5\n", "disk_free_limit.absolute = 100MB\n", "prometheus.tcp.ip = 127.0.0.41\n",
		"prometheus.return_per_object_metrics = true\n"} {
		if !strings.Contains(got[rabbitmq.ConfPath], want) {
			t.Errorf("rabbitmq.conf lacks %q:\n%s", want, got[rabbitmq.ConfPath])
		}
	}
	if !strings.HasSuffix(got[rabbitmq.PluginsPath], "\n[rabbitmq_prometheus].\n") {
		t.Errorf("enabled_plugins %q", got[rabbitmq.PluginsPath])
	}
	if strings.Contains(strings.Join([]string{got[rabbitmq.ConfPath], got[rabbitmq.SetupPath]}, ""), "password =") {
		t.Error("a password in a rendered file")
	}
	m := stack(t, `queue: {engine: "rabbitmq", host: "mq.example.com"}`)
	if fs, err := (rabbitmq.Gen{}).Generate(m, artifact.Options{}); err != nil || len(fs) != 0 {
		t.Errorf("managed broker: %d files, %v", len(fs), err)
	}
}

// TestLive starts Debian's RabbitMQ on the rendered configuration (its
// AMQP and metrics listeners on the queue host's loopback address) and
// runs the rendered setup script against it: without the password file
// it says so and creates nothing; with it, the app's user can log in
// with that password and may use the vhost, and a second run (as after
// a restart) changes nothing. The metrics the alerts read are served.
func TestLive(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "rabbitmq-server", "rabbitmq-server")
	const lib = "/usr/lib/rabbitmq/bin/"
	if _, err := os.Stat(lib + "rabbitmqctl"); err != nil {
		testtool.Missing(t, "Debian's rabbitmq-server layout ("+lib+") not found")
	}
	if testing.Short() {
		t.Skip("starts RabbitMQ")
	}
	dir := t.TempDir()
	port, epmd, dist := testtool.FreePort(t, "127.0.0.41"), testtool.FreePort(t, "127.0.0.1"), testtool.FreePort(t, "127.0.0.1")
	pw := filepath.Join(dir, "broker-password")
	s := stack(t, fmt.Sprintf(`queue: {engine: "rabbitmq", vhost: "shop", port: %d, password_file: %q, disk_free_limit_mb: 50}`, port, pw))
	ctl, env := runNode(t, s, dir, dist, epmd)
	setup := func() (string, error) {
		c := exec.Command(filepath.Join(dir, rabbitmq.SetupPath))
		c.Env = env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	out, err := setup()
	if err != nil || !strings.Contains(out, pw+" is missing") {
		t.Errorf("setup without the password file: %v %s", err, out)
	}
	if users, _ := ctl("-q", "list_users"); strings.Contains(users, "shop") {
		t.Errorf("a user was created without the password file:\n%s", users)
	}
	os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600)
	for i := range 2 {
		if out, err := setup(); err != nil || !strings.Contains(out, "user shop may use vhost shop") {
			t.Fatalf("setup run %d: %v %s", i+1, err, out)
		}
	}
	if out, err := ctl("authenticate_user", "shop", "s3cret-pw"); err != nil {
		t.Errorf("the app's user cannot log in with the provisioned password: %v %s", err, out)
	}
	if _, err := ctl("authenticate_user", "shop", "wrong"); err == nil {
		t.Error("a wrong password is accepted")
	}
	if out, _ := ctl("-q", "list_permissions", "-p", "shop"); !strings.Contains(out, "shop\t.*\t.*\t.*") {
		t.Errorf("permissions on vhost shop:\n%s", out)
	}
	if out, _ := exec.Command("ss", "-Htln", fmt.Sprintf("sport = :%d", port)).Output(); !strings.Contains(string(out), fmt.Sprintf("127.0.0.41:%d", port)) {
		t.Errorf("AMQP is not on the queue host's address: %s", out)
	}
	body := metrics(t, dir)
	for _, series := range []string{"rabbitmq_alarms_memory_used_watermark ", "rabbitmq_alarms_free_disk_space_watermark ", "# TYPE rabbitmq_queue_messages_ready "} {
		if !strings.Contains(string(body), series) {
			t.Errorf("metrics lack %q", series)
		}
	}
}

// metrics is what the node run from dir (runNode) exports to Prometheus.
func metrics(t *testing.T, dir string) []byte {
	t.Helper()
	conf, _ := os.ReadFile(filepath.Join(dir, rabbitmq.ConfPath))
	var mport string
	for _, l := range strings.Split(string(conf), "\n") {
		if v, ok := strings.CutPrefix(l, "prometheus.tcp.port = "); ok {
			mport = v
		}
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.41:" + mport + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return body
}

// runNode renders s into dir, starts Debian's RabbitMQ on the rendered
// configuration (distribution on port dist, epmd on port epmd, metrics
// on a free port) and waits until it is up; ctl runs rabbitmqctl on it,
// env is its environment with a rabbitmqctl on PATH that reaches it.
func runNode(t *testing.T, s *schema.Stack, dir string, dist, epmd int, edits ...func(conf string) string) (func(args ...string) (string, error), []string) {
	t.Helper()
	const lib = "/usr/lib/rabbitmq/bin/"
	files, err := rabbitmq.Gen{}.Generate(s, artifact.Options{Root: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		p := filepath.Join(dir, f.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		content := string(f.Content)
		if f.Path == rabbitmq.ConfPath {
			// The metrics port is fixed in the product; a free one here.
			content = strings.Replace(content, fmt.Sprintf("prometheus.tcp.port = %d", rabbitmq.MetricsPort), "prometheus.tcp.port = "+fmt.Sprint(testtool.FreePort(t, "127.0.0.41")), 1)
			content += fmt.Sprintf("distribution.listener.port_range.min = %d\ndistribution.listener.port_range.max = %d\n", dist, dist)
			for _, edit := range edits {
				content = edit(content)
			}
		}
		if err := os.WriteFile(p, []byte(content), f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	node := fmt.Sprintf("hct%d@localhost", os.Getpid())
	env := append(os.Environ(), "HOME="+dir, "RABBITMQ_NODENAME="+node, fmt.Sprintf("ERL_EPMD_PORT=%d", epmd),
		"RABBITMQ_CONFIG_FILE="+filepath.Join(dir, rabbitmq.ConfPath), "RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(dir, rabbitmq.PluginsPath),
		"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "mnesia"), "RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"))
	srv := exec.Command(lib + "rabbitmq-server")
	srv.Env = env
	log, _ := os.Create(filepath.Join(dir, "server.log"))
	srv.Stdout, srv.Stderr = log, log
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c := exec.Command(lib+"rabbitmqctl", "-n", node, "stop")
		c.Env = env
		if c.Run() != nil {
			srv.Process.Kill()
		}
		srv.Wait()
		// The node started an epmd daemon on port epmd (it outlives the
		// node): stop it through its own port, with no node left on it.
		k := exec.Command("/usr/bin/epmd", "-kill")
		k.Env = env
		if out, err := k.CombinedOutput(); err != nil {
			t.Errorf("stopping the node's epmd: %v %s", err, out)
		}
	})
	// rabbitmqctl as the script finds it on PATH, pointed at this node.
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "rabbitmqctl"), []byte("#!/bin/sh\nexec "+lib+"rabbitmqctl -n "+node+" \"$@\"\n"), 0o755)
	env = append(env, "PATH="+bin+":"+os.Getenv("PATH"))
	ctl := func(args ...string) (string, error) {
		c := exec.Command(lib+"rabbitmqctl", append([]string{"-n", node}, args...)...)
		c.Env = env
		out, err := c.CombinedOutput()
		return string(out), err
	}
	// The node registers with epmd a few seconds after it starts.
	for end := time.Now().Add(90 * time.Second); ; time.Sleep(time.Second) {
		out, err := ctl("await_startup", "--timeout", "60")
		if err == nil {
			break
		}
		if time.Now().After(end) {
			b, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("node did not start: %v %s\n%s", err, out, b)
		}
	}
	return ctl, env
}

// TestLiveTLS: with queue.tls, the node speaks AMQP over TLS only, with
// the provisioned certificate: a client verifying it against the CA
// completes a handshake (TLS 1.2 or 1.3), and the plain port is closed.
func TestLiveTLS(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "rabbitmq-server", "rabbitmq-server")
	testtool.Require(t, "openssl", "openssl")
	if testing.Short() {
		t.Skip("starts RabbitMQ")
	}
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	os.MkdirAll(tlsDir, 0o755)
	for _, args := range [][]string{
		{"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=test CA", "-keyout", tlsDir + "/ca.key", "-out", tlsDir + "/ca.pem"},
		{"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=mq1", "-keyout", tlsDir + "/key.pem", "-out", tlsDir + "/req.csr"},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v %s", args, err, out)
		}
	}
	os.WriteFile(tlsDir+"/ext", []byte("subjectAltName=IP:127.0.0.41\n"), 0o644)
	if out, err := exec.Command("openssl", "x509", "-req", "-in", tlsDir+"/req.csr", "-CA", tlsDir+"/ca.pem", "-CAkey", tlsDir+"/ca.key",
		"-CAcreateserial", "-days", "2", "-extfile", tlsDir+"/ext", "-out", tlsDir+"/cert.pem").CombinedOutput(); err != nil {
		t.Fatalf("signing: %v %s", err, out)
	}
	port, epmd, dist := testtool.FreePort(t, "127.0.0.41"), testtool.FreePort(t, "127.0.0.1"), testtool.FreePort(t, "127.0.0.1")
	s := stack(t, fmt.Sprintf(`queue: {engine: "rabbitmq", vhost: "shop", tls: true, port: %d, disk_free_limit_mb: 50,
	tls_cert_file: %q, tls_key_file: %q, tls_ca_file: %q}`, port, tlsDir+"/cert.pem", tlsDir+"/key.pem", tlsDir+"/ca.pem"))
	if !strings.Contains(s.Queue.TLSCertFile, "cert.pem") {
		t.Fatalf("queue: %+v", s.Queue)
	}
	runNode(t, s, dir, dist, epmd)
	out, err := exec.Command("openssl", "s_client", "-connect", fmt.Sprintf("127.0.0.41:%d", port), "-CAfile", tlsDir+"/ca.pem",
		"-verify_return_error", "-brief").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Verification: OK") || !regexp.MustCompile(`Protocol version: TLSv1\.[23]`).Match(out) {
		t.Errorf("TLS handshake with the broker: %v\n%s", err, out)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.41:5672", time.Second); err == nil {
		c.Close()
		t.Error("plain AMQP answers on 5672 with queue.tls")
	}
}

// grepLines is the lines of b that contain s.
func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
