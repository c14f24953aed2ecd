package nginx

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// The sandbox: a render with Options.Root pointing into a test
// directory, written out as the host would hold it, with throwaway
// certificates, so the real nginx can check and run it.

// inlineStacks cover what the example stacks do not: TLS off, the
// modern profile, a TCP port bind, Perl, an lb host that is also an app
// host, provisioned certificate files, HSTS off, a name long enough to
// outgrow nginx's default server_names hash bucket.
var inlineStacks = map[string]string{
	"plain-perl": `
name: "plain-perl"
domain: "plain.example.org"
tls: mode: "none"
hosts: {
	lb1: {address: "192.0.2.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	web1: {address: "192.0.2.11", roles: ["app"], cores: 2, memory_mb: 2048}
	web2: {address: "192.0.2.12", roles: ["app", "worker"], cores: 2, memory_mb: 2048}
	jobs1: {address: "192.0.2.20", roles: ["worker"], cores: 2, memory_mb: 2048}
}
balancer: {kind: "nginx", algorithm: "source", keepalive: 0, trusted_proxies: ["198.51.100.0/24", "2001:db8::/32"]}
app: {
	name: "blog"
	runtime: "perl"
	psgi: "/srv/blog/app.psgi"
	working_dir: "/srv/blog"
	bind: port: 5000
	http_port: 8080
	error_pages: "/srv/blog/errors"
	static: [{url: "/assets/", dir: "/srv/blog/public/assets/", expires: "max"}]
}
`,
	"modern-cloud": `
name: "modern-cloud"
domain: "` + strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + `.example.com"
aliases: ["www.example.net"]
tls: {mode: "certbot", profile: "modern"}
hosts: {
	app1: {address: "203.0.113.11", roles: ["app"], size: "c-2"}
	app2: {address: "203.0.113.12", roles: ["app"], size: "c-2"}
}
balancer: {kind: "cloud", trusted_proxies: ["10.0.0.0/8"]}
app: {name: "api", runtime: "python", module: "api.wsgi:application", working_dir: "/srv/api", bind: port: 8000}
`,
	"files-combined": `
name: "files-combined"
domain: "combined.example.com"
tls: {mode: "files", certificate: "/etc/ssl/hacompile/combined.pem", key: "/etc/ssl/private/combined.key", hsts: false}
hosts: {
	edge: {address: "192.0.2.50", roles: ["lb", "app"], cores: 2, memory_mb: 2048}
	app2: {address: "192.0.2.51", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: {kind: "nginx", algorithm: "roundrobin", max_fails: 5, fail_timeout: 20}
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop", http_port: 8080,
	static: [{url: "/static/", dir: "/srv/shop/static"}, {url: "/media/", dir: "/srv/shop/media", expires: "7d"}]}
tuning: {nofile: 200000, nginx_worker_connections: 50000}
`,
}

// loadSource validates a CUE stack source with the real schema.
func loadSource(t testing.TB, name, src string) *schema.Stack {
	t.Helper()
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Load("test/"+name+".cue", []byte(src))
	if err != nil {
		t.Fatalf("stack %s: %v", name, err)
	}
	// Rendered for this machine's release: the tests run its nginx.
	return testtool.ForHost(s)[0]
}

func loadInline(t testing.TB, name string) *schema.Stack {
	t.Helper()
	return loadSource(t, name, inlineStacks[name])
}

func optionsFor(root string) artifact.Options { return artifact.Options{Root: root} }

// hostFiles groups rendered files by host: host → path → content.
func hostFiles(t testing.TB, files []artifact.File) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	for _, f := range files {
		if out[f.Host] == nil {
			out[f.Host] = map[string]string{}
		}
		if _, dup := out[f.Host][f.Path]; dup {
			t.Fatalf("%s: %s rendered twice", f.Host, f.Path)
		}
		out[f.Host][f.Path] = string(f.Content)
	}
	return out
}

// certMode says what certificates the sandbox gets.
type certMode int

const (
	// selfSigned: a lone self-signed certificate, as a quick test
	// setup would have; nginx cannot staple OCSP for it and says so.
	selfSigned certMode = iota
	// caChain: a leaf naming an OCSP responder, plus its issuing CA in
	// the same file, as a public CA's fullchain.pem is laid out.
	caChain
)

// writeSandbox writes one host's files under root, with what nginx
// needs besides them: mime.types, the log and temp directories, and
// certificates where TLS is configured. It returns the CA pool that
// verifies the sandbox certificate.
func writeSandbox(t testing.TB, s *schema.Stack, root string, files map[string]string, mode certMode) *x509.CertPool {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"var/log/nginx", "var/lib/nginx", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mime, err := os.ReadFile("/etc/nginx/mime.types")
	if err != nil {
		t.Fatalf("nginx's mime.types: %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/nginx/mime.types"), mime, 0o644); err != nil {
		t.Fatal(err)
	}
	var pool *x509.CertPool
	if _, ok := files[TLSSnippetPath]; ok {
		// A certificate per set of host names, with several apps.
		for _, v := range s.CertificateViews() {
			pool = writeCerts(t, root+v.TLS.Certificate, root+v.TLS.Key, append([]string{v.Domain}, v.Aliases...), mode)
		}
	}
	return pool
}

// writeCerts creates a throwaway certificate and key.
func writeCerts(t testing.TB, certPath, keyPath string, names []string, mode certMode) *x509.CertPool {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	leafKey := newKey()
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: names[0][:min(len(names[0]), 64)]},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	pool := x509.NewCertPool()
	var chain []byte
	switch mode {
	case selfSigned:
		der, err := x509.CreateCertificate(rand.Reader, leaf, leaf, &leafKey.PublicKey, leafKey)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		pool.AddCert(c)
		chain = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	case caChain:
		caKey := newKey()
		ca := &x509.Certificate{
			SerialNumber:          big.NewInt(1),
			Subject:               pkix.Name{CommonName: "hacompile test CA"},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
			KeyUsage:              x509.KeyUsageCertSign,
			IsCA:                  true,
			BasicConstraintsValid: true,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		caCert, _ := x509.ParseCertificate(caDER)
		pool.AddCert(caCert)
		leaf.OCSPServer = []string{"http://127.0.0.1:9/"}
		der, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range map[string][]byte{
		certPath: chain,
		keyPath:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pool
}

// nginxTest runs nginx -t on the sandbox and returns its output lines.
// nginx -t binds every listen address, and the stack's addresses are not
// this machine's (nor is port 80 free for a wildcard bind), so it runs
// in a private network namespace that may bind any address.
func nginxTest(t testing.TB, nginx, root string) ([]string, error) {
	t.Helper()
	return nginxTestConf(t, nginx, root, ConfPath)
}

// nginxTestConf is nginxTest of the configuration at conf (a path in
// the sandbox) rather than nginx.conf.
func nginxTestConf(t testing.TB, nginx, root, conf string) ([]string, error) {
	t.Helper()
	unshare := requireNetns(t)
	cmd := exec.Command(unshare, "--net", "--", "/bin/sh", "-c",
		`echo 1 >/proc/sys/net/ipv4/ip_nonlocal_bind && exec "$0" "$@"`,
		nginx, "-t", "-p", root+"/", "-c", root+"/"+conf)
	out, err := cmd.CombinedOutput()
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n"), err
}

var netns struct {
	once sync.Once
	path string
	err  error
}

// requireNetns returns unshare's path once a private network namespace
// is known to work here (it needs root), or stops the test the way
// testtool.Require does: a skip, or a failure under CI=true.
func requireNetns(t testing.TB) string {
	t.Helper()
	unshare := testtool.Require(t, "unshare", "util-linux")
	netns.once.Do(func() {
		out, err := exec.Command(unshare, "--net", "--", "/bin/sh", "-c", "echo 1 >/proc/sys/net/ipv4/ip_nonlocal_bind").CombinedOutput()
		if err != nil {
			netns.err = fmt.Errorf("nginx -t binds the stack's listen addresses, so it runs in a private network namespace, which failed here (run the tests as root): unshare --net: %v %s", err, out)
		}
		netns.path = unshare
	})
	if netns.err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(netns.err)
		}
		t.Skip(netns.err)
	}
	return netns.path
}

// freePort returns a TCP port that was free on addr a moment ago.
func freePort(t testing.TB, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// runNginx starts nginx in the foreground on a sandbox configuration
// and returns the function that stops it (gracefully, by its own pid).
func runNginx(t testing.TB, nginx, root, conf string, listens ...string) func() {
	t.Helper()
	cmd := exec.Command(nginx, "-p", root+"/", "-c", conf, "-g", "daemon off;")
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	if len(listens) == 0 {
		// The configuration's own listen directives are the readiness
		// signal; callers of the plain form wait on their first request.
		listens = listenAddrs(t, conf)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, a := range listens {
		for {
			c, err := net.DialTimeout("tcp", a, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-exited:
				t.Fatalf("nginx exited: %v\n%s", err, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				stop()
				t.Fatalf("nginx did not listen on %s: %s", a, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return stop
}

// listenAddrs reads the listen addresses of a plain test configuration.
func listenAddrs(t testing.TB, conf string) []string {
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := parseConf(conf, string(b))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	walk(ds, func(d *directive) {
		if d.name == "listen" {
			out = append(out, d.args[0])
		}
	})
	return out
}

// client is an HTTP client that dials every request to addr (from
// local, when set) whatever the URL says, like a balancer would.
func client(addr, local string, tlsConf func(*http.Transport)) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableCompression: true,
	}
	if tlsConf != nil {
		tlsConf(tr)
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// get fetches url with the default client and returns the body.
func get(t testing.TB, url string, hdr http.Header) (string, *http.Response) {
	t.Helper()
	return do(t, http.DefaultClient, "GET", url, hdr)
}

func do(t testing.TB, c *http.Client, method, url string, hdr http.Header) (string, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Add(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), resp
}

// openTempDirs lets nginx's unprivileged workers reach files the test
// put under t.TempDir, which Go creates private.
func openTempDirs(t testing.TB, root string) {
	t.Helper()
	for d := root; d != "/" && d != "." && strings.HasPrefix(d, os.TempDir()); d = filepath.Dir(d) {
		if d == filepath.Clean(os.TempDir()) {
			break
		}
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func mustf(t testing.TB, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Errorf(format, args...)
	}
}
