//go:build linux

package monitoring_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/monitoring"
	"github.com/hacompile/hacompile/internal/debroot"
	"github.com/hacompile/hacompile/internal/testtool"
)

// postgresExporter is Debian 13's prometheus-postgres-exporter (0.17),
// the version the rendered files and alerts are written for: the one on
// PATH when it is that recent, else the binary (static Go) of the cached
// Debian 13 root of the release tests (make roots).
func postgresExporter(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus-postgres-exporter"); err == nil {
		out, _ := exec.Command(p, "--version").CombinedOutput()
		if m := regexp.MustCompile(`version 0\.(\d+)\.`).FindSubmatch(out); m != nil {
			if minor, _ := strconv.Atoi(string(m[1])); minor >= 17 {
				return p
			}
		}
	}
	var log bytes.Buffer
	root, err := debroot.Ensure("debian-13", debroot.ToolPackages, &log)
	if err != nil {
		testtool.Missing(t, fmt.Sprintf("Debian 13's prometheus-postgres-exporter (0.17) is not on PATH and its root cannot be built: %v\n%s", err, log.String()))
	}
	return filepath.Join(root, "usr/bin/prometheus-postgres-exporter")
}

// TestPostgresExporterLive runs Debian 13's postgres_exporter as
// rendered (monitoring/prometheus-postgres-exporter: its ARGS, and the
// password from PGPASSFILE) against a real PostgreSQL primary and a
// streaming replica on loopback, probes each the way the rendered
// prometheus.yml does (its target DSN, without a password), and finds
// every pg_ series the database alerts read, with the replica told apart.
// With a wrong password in the file the probes report pg_up 0.
func TestPostgresExporterLive(t *testing.T) {
	const password = "test-only-password"
	bin := postgresExporter(t)
	pg := testtool.StartPostgres(t, "shop", password, "shop")
	pg.StartReplica(t, "127.0.0.2")
	s := load(t, "pg", fmt.Sprintf(`
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
database: {host: "127.0.0.1", port: %d, name: "shop", user: "shop", replicas: ["127.0.0.2"], replica_pool_size: 5}
`, pg.Port))

	for _, c := range []struct {
		name, password string
		up             string
	}{{"right-password", password, "1"}, {"wrong-password", "not-the-password", "0"}} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			fs, err := monitoring.Gen{}.Generate(s, artifact.Options{Root: root})
			if err != nil {
				t.Fatal(err)
			}
			byPath := map[string]artifact.File{}
			for _, f := range fs {
				byPath[f.Path] = f
			}
			def, ok := byPath[monitoring.PostgresExporterPath]
			if !ok {
				t.Fatalf("no %s among %d files", monitoring.PostgresExporterPath, len(fs))
			}
			// The password file, as the rendered comment says: one line
			// for the user on every server, mode 0600.
			pass := filepath.Join(root, monitoring.PostgresPassFile)
			os.MkdirAll(filepath.Dir(pass), 0o755)
			if err := os.WriteFile(pass, []byte("*:*:*:shop:"+c.password+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			// The rendered environment, the listen address moved to a
			// free port.
			port := testtool.FreePort(t, "127.0.0.1")
			var env []string
			for _, l := range strings.Split(string(def.Content), "\n") {
				if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "ARGS=") {
					env = append(env, strings.ReplaceAll(l, "'", ""))
				}
			}
			if !slices.Contains(env, "PGPASSFILE="+pass) {
				t.Fatalf("environment %q does not name %s", env, pass)
			}
			var args []string
			for _, a := range argsOf(t, def) {
				args = append(args, strings.Replace(a, "127.0.0.1:9187", "127.0.0.1:"+strconv.Itoa(port), 1))
			}
			var log testtool.SyncBuffer
			cmd := exec.Command(bin, args...)
			cmd.Dir = root
			cmd.Env = append([]string{"HOME=" + root}, env...)
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

			// prometheus.yml's target parameter: the replacement
			// applied to each address.
			cfg := string(byPath[monitoring.ConfigPath].Content)
			m := regexp.MustCompile(`replacement: "(postgresql://[^"]*)"`).FindStringSubmatch(cfg)
			if m == nil {
				t.Fatalf("prometheus.yml has no postgres target replacement:\n%s", cfg)
			}
			// Every pg_ series the alerts read.
			alerts := string(byPath[monitoring.AlertsPath].Content)
			series := regexp.MustCompile(`\bpg_[a-z_]+`).FindAllString(alerts, -1)
			slices.Sort(series)
			series = slices.Compact(series)
			if !slices.Contains(series, "pg_up") || len(series) < 3 {
				t.Fatalf("the alerts read %q", series)
			}
			for _, srv := range []struct{ addr, replica string }{
				{fmt.Sprintf("127.0.0.1:%d", pg.Port), "0"},
				{fmt.Sprintf("127.0.0.2:%d", pg.Port), "1"},
			} {
				target := strings.ReplaceAll(m[1], "${1}", srv.addr)
				if strings.Contains(target, password) {
					t.Fatal("the target carries the password")
				}
				body := probe(t, port, target, &log)
				if !hasSeries(body, "pg_up", c.up) {
					t.Errorf("%s: pg_up is not %s:\n%s\n%s", srv.addr, c.up, grepPG(body), log.String())
				}
				if c.up == "0" {
					continue
				}
				for _, name := range series {
					if !hasSeries(body, name, "") {
						t.Errorf("%s: the alerts read %s, which the exporter does not serve:\n%s", srv.addr, name, grepPG(body))
					}
				}
				if !hasSeries(body, "pg_replication_is_replica", srv.replica) {
					t.Errorf("%s: pg_replication_is_replica is not %s:\n%s", srv.addr, srv.replica, grepPG(body))
				}
			}
		})
	}
}

func probe(t *testing.T, port int, target string, log *testtool.SyncBuffer) string {
	t.Helper()
	u := fmt.Sprintf("http://127.0.0.1:%d/probe?target=%s", port, url.QueryEscape(target))
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(u)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && strings.Contains(string(b), "\npg_up ") {
				return string(b)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("postgres_exporter /probe: %v\n%s", err, log.String())
		}
	}
}

// hasSeries reports whether body has a sample of name (with any labels),
// of value when value is not "".
func hasSeries(body, name, value string) bool {
	for _, l := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(l, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if value == "" || strings.HasSuffix(l, " "+value) {
			return true
		}
	}
	return false
}

func grepPG(body string) string {
	var keep []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "pg_up") || strings.HasPrefix(l, "pg_replication") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}
