package appenv_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestExampleStack: seed 003's settings, written out by hand, on every
// app and worker host and nowhere else; no secret in them; a POSIX
// shell reads them back as written.
func TestExampleStack(t *testing.T) {
	want := []string{
		"DATABASE_ENGINE=postgresql", "DATABASE_HOST=db.internal.example.com", "DATABASE_PORT=5432",
		"DATABASE_NAME=myapp", "DATABASE_USER=myapp", "DATABASE_PASSWORD_FILE=/etc/myapp/secrets/database-password",
		"DATABASE_SSLMODE=verify-full", "DATABASE_URL=postgresql://myapp@db.internal.example.com:5432/myapp?sslmode=verify-full",
		"DATABASE_POOL_SIZE=5", "DATABASE_MAX_OVERFLOW=5",
		"CACHE_ENGINE=redis", "CACHE_HOST=10.40.0.31", "CACHE_PORT=6379", "CACHE_URL=redis://10.40.0.31:6379/0",
		"CACHE_PASSWORD_FILE=/etc/myapp/secrets/cache-password",
		"QUEUE_URL=amqp://myapp@10.40.0.41:5672/myapp", "QUEUE_PASSWORD_FILE=/etc/myapp/secrets/broker-password",
	}
	for _, s := range testtool.LoadStacks(t) {
		files, err := appenv.Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var hosts []string
		var settings artifact.File
		for _, f := range files {
			if f.Path == appenv.Path(&s.App) {
				hosts = append(hosts, f.Host)
				settings = f
			}
		}
		var wantHosts []string
		for _, n := range s.HostNames() {
			if h := s.Hosts[n]; appenv.Needed(s) && (h.Has("app") || h.Has("worker")) {
				wantHosts = append(wantHosts, n)
			}
		}
		if !slices.Equal(hosts, wantHosts) {
			t.Errorf("%s: settings on %q, want %q", s.Name, hosts, wantHosts)
		}
		if s.Name != "python-celery-cache" {
			continue
		}
		content := string(settings.Content)
		var got []string
		for _, l := range strings.Split(content, "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				got = append(got, l)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("settings:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// sh reads each value back exactly.
		p := filepath.Join(t.TempDir(), "settings.env")
		if err := os.WriteFile(p, settings.Content, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("/bin/sh", "-c", `set -a; . "$0"; printf '%s|%s|%s' "$QUEUE_URL" "$DATABASE_PASSWORD_FILE" "$DATABASE_URL"`, p).CombinedOutput()
		if err != nil || string(out) != "amqp://myapp@10.40.0.41:5672/myapp|/etc/myapp/secrets/database-password|postgresql://myapp@db.internal.example.com:5432/myapp?sslmode=verify-full" {
			t.Errorf("sh reads %q (%v)", out, err)
		}
	}
}
