//go:build linux

package releasetest

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
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
	"github.com/hacompile/hacompile/generators/keepalived"
	"github.com/hacompile/hacompile/generators/mtail"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// mnt is where a host's sandbox is bound inside the target.
const mnt = "/mnt"

// TestToolsPerRelease renders every example stack for each release and
// has that release's nginx, HAProxy, keepalived, mtail, systemd,
// cloud-init, Prometheus and Alertmanager accept every file: nginx -t,
// haproxy -c and keepalived -t with no warning, mtail --compile_only,
// systemd-analyze verify with no output, cloud-init schema "Valid",
// promtool check config (with the rule file) and check rules, amtool
// check-config.
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
						for _, e := range checkHost(t, tg, r.Stack, h, r.Files) {
							t.Error(e)
						}
					}
					checkCloudInit(t, tg, plain[i])
					for _, e := range checkMonitoring(t, tg, r) {
						t.Error(e)
					}
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
		// Its own mode where it has one: keepalived runs only an
		// executable notify script.
		write(t, filepath.Join(dir, filepath.FromSlash(f.Path)), f.Content, cmp.Or(f.Mode.Perm(), 0o644))
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

// checkHost runs the target's tools on one host's files and returns
// what they refused.
func checkHost(t *testing.T, tg target, s *schema.Stack, host string, files []artifact.File) []string {
	t.Helper()
	var bad []string
	dir, have, units := hostSandbox(t, tg, s, host, files)
	if have["etc/nginx/nginx.conf"] {
		out, err := tg.run(t, dir, nil, "nginx", "-t", "-p", mnt+"/", "-c", mnt+"/etc/nginx/nginx.conf")
		if err != nil || strings.Contains(out, "[warn]") || strings.Contains(out, "[emerg]") {
			bad = append(bad, fmt.Sprintf("%s/%s on %s: nginx -t: %v\n%s", s.Name, host, tg.os, err, out))
		}
	}
	if have["etc/haproxy/haproxy.cfg"] {
		out, err := tg.run(t, dir, nil, "haproxy", "-c", "-f", mnt+"/etc/haproxy/haproxy.cfg")
		if err != nil || strings.Contains(out, "[WARNING]") || strings.Contains(out, "[ALERT]") {
			bad = append(bad, fmt.Sprintf("%s/%s on %s: haproxy -c: %v\n%s", s.Name, host, tg.os, err, out))
		}
	}
	if have[keepalived.ConfigPath] {
		// keepalived -t looks for the VRRP interface, which the
		// check's private network namespace has as one end of a veth
		// pair (made there, gone with it).
		env := []string{"HACOMPILE_TEST_LINK=" + s.Balancer.VRRP.Interface}
		out, err := tg.run(t, dir, env, "keepalived", "-t", "-l", "-f", mnt+"/"+keepalived.ConfigPath)
		if err != nil || strings.Contains(out, "WARNING") {
			bad = append(bad, fmt.Sprintf("%s/%s on %s: keepalived -t: %v\n%s", s.Name, host, tg.os, err, out))
		}
	}
	if have[mtail.ProgramPath] {
		out, err := tg.run(t, dir, nil, "mtail", "--compile_only", "--logtostderr", "--progs", mnt+"/etc/mtail")
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s/%s on %s: mtail --compile_only: %v\n%s", s.Name, host, tg.os, err, out))
		}
	}
	if len(units) > 0 {
		// The sandbox's units are searched first, then the target's
		// own (nginx.service and haproxy.service come from their
		// packages; the drop-ins apply to them).
		env := []string{"SYSTEMD_UNIT_PATH=" + mnt + "/etc/systemd/system:", "SYSTEMD_LOG_LEVEL=notice"}
		out, err := tg.run(t, dir, env, append([]string{"systemd-analyze", "verify", "--man=no"}, units...)...)
		if err != nil || strings.TrimSpace(out) != "" {
			bad = append(bad, fmt.Sprintf("%s/%s on %s: systemd-analyze verify %s: %v\n%s", s.Name, host, tg.os, strings.Join(units, " "), err, out))
		}
	}
	return bad
}

// checkMonitoring runs the target's promtool and amtool on the stack's
// monitoring files (Prometheus's configuration with its rule file, and
// Alertmanager's), when it has them, and returns what they refused.
func checkMonitoring(t *testing.T, tg target, r *compile.Rendered) []string {
	t.Helper()
	var bad []string
	dir := sandboxDir(t)
	have := map[string]bool{}
	for _, f := range r.Files {
		if in, name := path.Split(f.Path); f.Host == "" && in == "monitoring/" {
			write(t, filepath.Join(dir, name), f.Content, 0o644)
			have[name] = true
		}
	}
	for _, c := range []struct {
		file, want string
		argv       []string
	}{
		{"prometheus.yml", "SUCCESS: 1 rule files found", []string{"promtool", "check", "config", mnt + "/prometheus.yml"}},
		{"alerts.yaml", "SUCCESS:", []string{"promtool", "check", "rules", mnt + "/alerts.yaml"}},
		{"alertmanager.yml", "SUCCESS", []string{"amtool", "check-config", mnt + "/alertmanager.yml"}},
	} {
		if !have[c.file] {
			continue
		}
		out, err := tg.run(t, dir, nil, c.argv...)
		if err != nil || !strings.Contains(out, c.want) {
			bad = append(bad, fmt.Sprintf("%s on %s: %s: %v\n%s", r.Stack.Name, tg.os, strings.Join(c.argv, " "), err, out))
		}
	}
	return bad
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

// TestChecksRefuseBroken is the control of the keepalived, mtail,
// promtool and amtool checks: on each release, a balancer's
// keepalived.conf with a keyword keepalived lacks, an app host's mtail
// program counting into an undeclared variable, a rule whose expression
// does not parse, a Prometheus configuration naming a rule file that is
// not there and an Alertmanager configuration with a field it lacks are
// each refused by the tool that reads them (a broken rule by promtool
// check config too, which loads the rule file).
func TestChecksRefuseBroken(t *testing.T) {
	t.Parallel()
	for _, rel := range releases(t) {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			tg := targetFor(t, rel)
			rs, err := compile.RenderAll(testtool.LoadStacksFor(t, tg.os), artifact.Options{Root: mnt})
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]*compile.Rendered{}
			for _, r := range rs {
				byName[r.Stack.Name] = r
			}
			for _, b := range []struct {
				stack, host, path, old, new, tool string
			}{
				{"multi-app", "lb1", keepalived.ConfigPath, "    advert_int ", "    bogus_keyword 3\n    advert_int ", "keepalived -t"},
				{"do-python-ha", "app3", mtail.ProgramPath, "\n}", "\n  undeclared_total++\n}", "mtail --compile_only"},
				{"multi-app", "", "monitoring/alerts.yaml", "expr: ", "expr: sum(( ", "promtool check rules"},
				{"multi-app", "", "monitoring/prometheus.yml", `"alerts.yaml"`, `"missing.yaml"`, "promtool check config"},
				{"multi-app", "", "monitoring/alertmanager.yml", "route:\n", "route:\n  bogus_field: 1\n", "amtool check-config"},
			} {
				r := byName[b.stack]
				if r == nil {
					t.Fatalf("no stack %s: update the test", b.stack)
				}
				files := slices.Clone(r.Files)
				found := false
				for i, f := range files {
					if f.Host == b.host && f.Path == b.path && strings.Contains(string(f.Content), b.old) {
						files[i].Content = []byte(strings.Replace(string(f.Content), b.old, b.new, 1))
						found = true
					}
				}
				if !found {
					t.Fatalf("%s: no %q in %s of %s/%s: update the test", b.tool, b.old, b.path, b.stack, b.host)
				}
				var bad []string
				if b.host != "" {
					bad = checkHost(t, tg, r.Stack, b.host, files)
				} else {
					bad = checkMonitoring(t, tg, &compile.Rendered{Stack: r.Stack, Files: files})
				}
				if !slices.ContainsFunc(bad, func(e string) bool { return strings.Contains(e, b.tool) }) {
					t.Errorf("%s: a broken %s was not refused by it: %q", b.tool, b.path, bad)
				}
			}
		})
	}
}

// TestAlertmanagerURLFile holds osrelease's Alertmanager facts to each
// release's amtool: a webhook receiver and a dead man's switch named by
// url_file render on a release whose Alertmanager reads it (and that
// release's amtool accepts the file), and are refused, at the field,
// on one whose does not, whose amtool refuses the same file written by
// hand.
func TestAlertmanagerURLFile(t *testing.T) {
	t.Parallel()
	for _, rel := range releases(t) {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			tg := targetFor(t, rel)
			var s *schema.Stack
			for _, x := range testtool.LoadStacksFor(t, tg.os) {
				if x.Name == "multi-app" {
					s = x
				}
			}
			if s == nil {
				t.Fatal("no multi-app stack")
			}
			s.Monitoring.Alertmanager = &schema.Alertmanager{Receiver: "oncall", Kind: "webhook",
				URLFile: "/etc/prometheus/oncall-url", WatchdogURLFile: "/etc/prometheus/watchdog-url"}
			rs, err := compile.RenderAll([]*schema.Stack{s}, artifact.Options{Root: mnt})
			reads := osrelease.MustLookup(tg.os).AlertmanagerURLFile()
			if !reads {
				if err == nil || !strings.Contains(err.Error(), "monitoring.alertmanager.url_file") || !strings.Contains(err.Error(), "reads no url_file") {
					t.Fatalf("url_file on %s: want it refused at monitoring.alertmanager.url_file, got %v", tg.os, err)
				}
				// What would have been written: the release's amtool
				// refuses it, so the refusal is the release's.
				s.Monitoring.Alertmanager.URLFile, s.Monitoring.Alertmanager.WatchdogURLFile = "", ""
				s.Monitoring.Alertmanager.URL = "https://alerts.example.com/hook"
				if rs, err = compile.RenderAll([]*schema.Stack{s}, artifact.Options{Root: mnt}); err != nil {
					t.Fatal(err)
				}
				for i, f := range rs[0].Files {
					if f.Path == "monitoring/alertmanager.yml" {
						rs[0].Files[i].Content = []byte(strings.Replace(string(f.Content), `- url: "https://alerts.example.com/hook"`, `- url_file: "/etc/prometheus/oncall-url"`, 1))
					}
				}
				bad := checkMonitoring(t, tg, rs[0])
				if !slices.ContainsFunc(bad, func(e string) bool { return strings.Contains(e, "amtool") && strings.Contains(e, "url_file") }) {
					t.Errorf("%s: amtool accepted url_file, which osrelease says its Alertmanager does not read: %q", tg.os, bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range rs[0].Files {
				if f.Path == "monitoring/alertmanager.yml" {
					for _, want := range []string{`- url_file: "/etc/prometheus/oncall-url"`, `- url_file: "/etc/prometheus/watchdog-url"`, `receiver: "watchdog"`} {
						if !strings.Contains(string(f.Content), want) {
							t.Errorf("%s: alertmanager.yml lacks %s:\n%s", tg.os, want, f.Content)
						}
					}
				}
			}
			for _, e := range checkMonitoring(t, tg, rs[0]) {
				t.Error(e)
			}
		})
	}
}
