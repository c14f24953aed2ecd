package haproxy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// testPassword is what tests put in HAPROXY_STATS_PASSWORD; it must
// never show up in a rendered file.
const testPassword = "s3cret-T3st-pa55word"

// load validates an in-test stack.
func load(t testing.TB, src string) *schema.Stack {
	t.Helper()
	// Rendered for this machine's release: the tests run its haproxy.
	return testtool.ForHost(testtool.Load(t, "t.cue", src))[0]
}

// stackSrc is a two-app, one-balancer stack; extra is CUE appended at
// the top level (CUE unifies repeated fields, so it can refine tls,
// balancer or app).
func stackSrc(extra string) string {
	return `
name:   "t"
domain: "shop.example.com"
aliases: ["www.shop.example.com"]
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 2, memory_mb: 2048}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: kind: "haproxy"
monitoring: address: "10.0.0.2"
app: {runtime: "perl", psgi: "/srv/shop/app.psgi", working_dir: "/srv/shop"}
` + extra
}

// cases are the in-test stacks every sandbox test runs: each TLS mode and
// profile, each algorithm, both places TLS can terminate.
var cases = []struct{ name, extra string }{
	{"certbot-intermediate-roundrobin", `tls: {mode: "certbot", profile: "intermediate", email: "ops@example.com"}`},
	{"certbot-modern-leastconn", `tls: {mode: "certbot", profile: "modern"}
balancer: algorithm: "leastconn"`},
	{"files-intermediate-source", `tls: {mode: "files", certificate: "/etc/ssl/shop/chain.pem", key: "/etc/ssl/private/shop.key"}
balancer: algorithm: "source"`},
	{"files-modern-combined-pem", `tls: {mode: "files", profile: "modern", hsts: false, certificate: "/etc/ssl/private/shop.pem", key: "/etc/ssl/private/shop.pem"}`},
	{"none-roundrobin", `tls: mode: "none"`},
	{"none-source-no-slowstart", `tls: mode: "none"
balancer: {algorithm: "source", slowstart: 0, stats: {address: "10.0.0.5", port: 9000, uri: "/haproxy", user: "ops"}}`},
	{"certbot-passthrough-leastconn", `tls: {mode: "certbot", terminate: "app"}
balancer: algorithm: "leastconn"`},
}

// exampleStacks are the example stacks with an HAProxy balancer.
func exampleStacks(t *testing.T) []*schema.Stack {
	t.Helper()
	var out []*schema.Stack
	for _, s := range testtool.LoadStacksFor(t, testtool.HostOS()) {
		if s.Balancer.Kind == "haproxy" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatal("no example stack uses an HAProxy balancer (stacks/do-perl-ha.cue should)")
	}
	return out
}

// generate renders s and returns the first balancer host's files by path.
func generate(t testing.TB, s *schema.Stack, opt artifact.Options) map[string]artifact.File {
	t.Helper()
	files, err := Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	host := s.HostsWithRole("lb")[0].Name
	out := map[string]artifact.File{}
	for _, f := range files {
		if err := artifact.CheckPath(f.Path); err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if f.Kind != "haproxy" {
			t.Errorf("%s: Kind %q, want haproxy", f.Path, f.Kind)
		}
		if f.Host == host {
			out[f.Path] = f
		}
	}
	if _, ok := out[ConfigPath]; !ok {
		t.Fatalf("no %s for host %s", ConfigPath, host)
	}
	return out
}

// sandbox is a stack rendered under a temporary root, with everything
// around it that a real balancer host would have: the chroot and socket
// directories, a throwaway certificate and key where the stack says,
// and the combined PEM built by the rendered script itself.
type sandbox struct {
	root  string
	s     *schema.Stack
	files map[string]artifact.File
	ca    *x509.Certificate // issuer of the throwaway certificate
	// systemctlLog records the fake systemctl's calls.
	systemctlLog string
}

func newSandbox(t *testing.T, s *schema.Stack) *sandbox {
	t.Helper()
	sb := &sandbox{root: t.TempDir(), s: s}
	opt := sb.opt()
	sb.files = generate(t, s, opt)
	for p, f := range sb.files {
		dst := filepath.Join(sb.root, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{chrootDir, filepath.Dir(adminSocket)} {
		if err := os.MkdirAll(opt.P(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if terminatesTLS(s) {
		sb.ca = writeCert(t, s, opt.P(s.TLS.Certificate), opt.P(s.TLS.Key))
		out, err := sb.runCertScript(t, nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", certScriptPath(s), err, out)
		}
	}
	return sb
}

func (sb *sandbox) opt() artifact.Options { return artifact.Options{Root: sb.root} }

func (sb *sandbox) path(p string) string { return sb.opt().P(p) }

// runCertScript runs the rendered certificate script with a fake
// systemctl first on PATH, which logs its arguments and says haproxy is
// active, so the real service manager is never touched.
func (sb *sandbox) runCertScript(t *testing.T, env []string) ([]byte, error) {
	t.Helper()
	testtool.Require(t, "openssl", "openssl")
	bin := filepath.Join(sb.root, "fakebin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	sb.systemctlLog = filepath.Join(sb.root, "systemctl.log")
	fake := "#!/bin/sh\necho \"$*\" >>" + sb.systemctlLog + "\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/sh", sb.path("/"+certScriptPath(sb.s)))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	cmd.Env = append(cmd.Env, env...)
	return cmd.CombinedOutput()
}

// writeCert writes a self-signed ECDSA certificate for the stack's
// names to certPath (as a chain: leaf then CA) and its key to keyPath;
// when both are one path, the file holds both, as tls.mode "files"
// allows.
func writeCert(t testing.TB, s *schema.Stack, certPath, keyPath string) *x509.Certificate {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hacompile test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: s.Domain},
		DNSNames:     append([]string{s.Domain}, s.Aliases...),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})...)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	files := map[string][]byte{certPath: chain, keyPath: keyPEM}
	if certPath == keyPath {
		files = map[string][]byte{certPath: append(chain, keyPEM...)}
	}
	for p, b := range files {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca
}

// haproxyCheck runs haproxy -c on the sandbox configuration with the
// stats password in the environment and returns its output lines that
// are warnings or alerts.
func (sb *sandbox) haproxyCheck(t *testing.T) (problems []string, err error) {
	t.Helper()
	bin := testtool.Require(t, "haproxy", "haproxy")
	cmd := exec.Command(bin, "-c", "-f", sb.path("/"+ConfigPath))
	cmd.Env = append(os.Environ(), PasswordVar+"="+testPassword)
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "[WARNING]") || strings.Contains(l, "[ALERT]") {
			problems = append(problems, l)
		}
	}
	if err != nil {
		err = fmt.Errorf("%v\n%s", err, out)
	}
	return problems, err
}

func (sb *sandbox) config() string { return string(sb.files[ConfigPath].Content) }

func artifactOptions() artifact.Options { return artifact.Options{} }
