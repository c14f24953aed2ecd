//go:build linux

package releasetest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/haproxy"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// mnt is where a host's sandbox is bound inside the target.
const mnt = "/mnt"

// TestToolsPerRelease renders every example stack for each release and
// has that release's nginx, HAProxy, systemd and cloud-init accept
// every file: nginx -t and haproxy -c with no warning, systemd-analyze
// verify with no output, cloud-init schema "Valid".
func TestToolsPerRelease(t *testing.T) {
	t.Parallel()
	for _, rel := range releases(t) {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			tg := targetFor(t, rel)
			stacks := testtool.LoadStacksFor(t, tg.os)
			sandboxed, err := compile.RenderAll(stacks, artifact.Options{Root: mnt})
			if err != nil {
				t.Fatal(err)
			}
			plain, err := compile.RenderAll(testtool.LoadStacksFor(t, tg.os), artifact.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range sandboxed {
				t.Run(r.Stack.Name, func(t *testing.T) {
					for _, h := range slices.Sorted(func(yield func(string) bool) {
						for n := range r.Stack.Hosts {
							if !yield(n) {
								return
							}
						}
					}) {
						checkHost(t, tg, r.Stack, h, r.Files)
					}
					checkCloudInit(t, tg, plain[i])
				})
			}
		})
	}
}

// hostSandbox writes one host's files into a new sandbox directory
// (rendered with Root /mnt, where the target sees it), with what the
// tools need besides them: mime.types, nginx's log and temp
// directories, a throwaway RSA certificate where TLS is configured (an
// RSA key, so a DHE-RSA cipher could be agreed were it offered) and
// stubs for the app's executables. It returns the directory, the paths
// written and the systemd units to verify.
func hostSandbox(t *testing.T, tg target, s *schema.Stack, host string, files []artifact.File) (string, map[string]bool, []string) {
	t.Helper()
	dir := sandboxDir(t)
	have := map[string]bool{}
	var units []string
	for _, f := range files {
		if f.Host != host {
			continue
		}
		have[f.Path] = true
		write(t, filepath.Join(dir, filepath.FromSlash(f.Path)), f.Content, 0o644)
		if d, u := path.Split(f.Path); d == "etc/systemd/system/" && strings.HasSuffix(u, ".service") {
			units = append(units, u)
		} else if strings.HasPrefix(d, "etc/systemd/system/") && strings.HasSuffix(d, ".service.d/") {
			units = append(units, path.Base(strings.TrimSuffix(d, ".d/")))
		}
		stubExecutables(t, dir, f)
	}
	slices.Sort(units)
	units = slices.Compact(units)
	if have["etc/nginx/nginx.conf"] {
		for _, d := range []string{"var/log/nginx", "var/lib/nginx", "run"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		mime, err := os.ReadFile(filepath.Join(tg.root, "etc/nginx/mime.types"))
		if err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(dir, "etc/nginx/mime.types"), mime, 0o644)
		if have["etc/nginx/snippets/hacompile-tls.conf"] {
			writeCert(t, filepath.Join(dir, s.TLS.Certificate), filepath.Join(dir, s.TLS.Key), s.Domain)
		}
	}
	if have[haproxy.CertDirNote] {
		// What the certificate script leaves after the first issuance.
		writeCert(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), s.Domain)
		c, _ := os.ReadFile(filepath.Join(dir, "cert.pem"))
		k, _ := os.ReadFile(filepath.Join(dir, "key.pem"))
		write(t, filepath.Join(dir, haproxy.PEMPath(s)), append(c, k...), 0o600)
	}
	if have["etc/haproxy/haproxy.cfg"] {
		for _, d := range []string{"var/lib/haproxy", "run/haproxy"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir, have, units
}

// checkHost runs the target's tools on one host's files.
func checkHost(t *testing.T, tg target, s *schema.Stack, host string, files []artifact.File) {
	t.Helper()
	dir, have, units := hostSandbox(t, tg, s, host, files)
	if have["etc/nginx/nginx.conf"] {
		out, err := tg.run(t, dir, nil, "nginx", "-t", "-p", mnt+"/", "-c", mnt+"/etc/nginx/nginx.conf")
		if err != nil || strings.Contains(out, "[warn]") || strings.Contains(out, "[emerg]") {
			t.Errorf("%s/%s on %s: nginx -t: %v\n%s", s.Name, host, tg.os, err, out)
		}
	}
	if have["etc/haproxy/haproxy.cfg"] {
		out, err := tg.run(t, dir, nil, "haproxy", "-c", "-f", mnt+"/etc/haproxy/haproxy.cfg")
		if err != nil || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ALERT]") {
			t.Errorf("%s/%s on %s: haproxy -c: %v\n%s", s.Name, host, tg.os, err, out)
		}
	}
	if len(units) > 0 {
		// The sandbox's units are searched first, then the target's
		// own (nginx.service and haproxy.service come from their
		// packages; the drop-ins apply to them).
		env := []string{"SYSTEMD_UNIT_PATH=" + mnt + "/etc/systemd/system:", "SYSTEMD_LOG_LEVEL=notice"}
		out, err := tg.run(t, dir, env, append([]string{"systemd-analyze", "verify", "--man=no"}, units...)...)
		if err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("%s/%s on %s: systemd-analyze verify %s: %v\n%s", s.Name, host, tg.os, strings.Join(units, " "), err, out)
		}
	}
}

// checkCloudInit runs the target's cloud-init schema on every host's
// user data.
func checkCloudInit(t *testing.T, tg target, r *compile.Rendered) {
	t.Helper()
	dir := sandboxDir(t)
	for _, f := range r.Files {
		if f.Host != "" || !strings.HasPrefix(f.Path, "cloud-init/") {
			continue
		}
		write(t, filepath.Join(dir, path.Base(f.Path)), f.Content, 0o644)
		out, err := tg.run(t, dir, nil, "cloud-init", "schema", "--config-file", mnt+"/"+path.Base(f.Path))
		if err != nil || !strings.Contains(out, "Valid schema") && !strings.Contains(out, "Valid cloud-config") {
			t.Errorf("%s/%s on %s: cloud-init schema: %v\n%s", r.Stack.Name, f.Path, tg.os, err, out)
		}
	}
}

// stubExecutables puts an executable where a unit's Exec line names a
// program in the sandbox (an app's virtualenv): verify requires it to
// exist, and the test is about the units, not the app.
func stubExecutables(t *testing.T, dir string, f artifact.File) {
	t.Helper()
	if !strings.HasPrefix(f.Path, "etc/systemd/") {
		return
	}
	for _, l := range strings.Split(string(f.Content), "\n") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || !strings.HasPrefix(k, "Exec") {
			continue
		}
		prog := strings.TrimLeft(strings.Fields(v + " x")[0], "-@:+!")
		if rel, ok := strings.CutPrefix(prog, mnt+"/"); ok {
			p := filepath.Join(dir, rel)
			if _, err := os.Stat(p); os.IsNotExist(err) {
				write(t, p, []byte("#!/bin/sh\nexit 0\n"), 0o755)
			}
		}
	}
}

func write(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
}

// writeCert writes a throwaway self-signed RSA certificate and key.
func writeCert(t *testing.T, certPath, keyPath, name string) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	write(t, certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	write(t, keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
}

// TestOtherReleaseRefused is the control: files rendered for one
// release fail the other release's tools where the releases differ
// (Debian 13's "http2 on;" and X25519MLKEM768 on Debian 12's nginx 1.22
// and OpenSSL 3.0), so TestToolsPerRelease passing means something.
func TestOtherReleaseRefused(t *testing.T) {
	rels := releases(t)
	if len(rels) < 2 {
		t.Skip("one release only")
	}
	for _, pair := range [][2]string{{"debian-13", "debian-12"}} {
		renderFor, runOn := pair[0], pair[1]
		if !slices.Contains(rels, renderFor) || !slices.Contains(rels, runOn) {
			continue
		}
		tg := targetFor(t, runOn)
		rs, err := compile.RenderAll(testtool.LoadStacksFor(t, renderFor), artifact.Options{Root: mnt})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Stack.Name != "do-python-ha" {
				continue
			}
			dir, _, _ := hostSandbox(t, tg, r.Stack, "lb1", r.Files)
			out, err := tg.run(t, dir, nil, "nginx", "-t", "-p", mnt+"/", "-c", mnt+"/etc/nginx/nginx.conf")
			if err == nil {
				t.Errorf("nginx of %s accepted files rendered for %s:\n%s", runOn, renderFor, out)
			}
		}
	}
}
