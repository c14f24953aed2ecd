package push

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// A local target (hacompile apply's) goes through the same engine as a
// push over SSH: files land byte for byte with their modes, the host
// keeps its record, a second run changes nothing, and a hand edit is
// drift.
func TestLocalTarget(t *testing.T) {
	if _, err := os.Stat(SFTPServerPaths[0]); err != nil {
		testtool.Missing(t, "openssh-sftp-server")
	}
	root := t.TempDir()
	src := `name: "fleet"
domain: "fleet.example.com"
tls: mode: "none"
hosts: app1: {address: "127.0.0.1", roles: ["app"], cores: 1, memory_mb: 1024}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", bind: port: 8000}
`
	hosts, err := Targets(renderStack(t, src), TargetOptions{NoHealth: true})
	if err != nil {
		t.Fatal(err)
	}
	hosts[0].Root = root
	hosts[0].SSH = Endpoint{HostName: "127.0.0.1", Local: true}
	o := Options{
		Stack: "fleet", Hosts: hosts,
		Timeout: 5 * time.Second, CommandTimeout: 5 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
		Batch: "1", By: "test@local", PID: os.Getpid(),
	}
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if h := sum.Hosts[0]; h.Status != StatusDone || h.Created != len(hosts[0].Files) || h.Endpoint != "local" {
		t.Fatalf("first run: %+v", h)
	}
	for _, f := range hosts[0].Files {
		b, err := os.ReadFile(filepath.Join(root, f.Path))
		if err != nil || !bytes.Equal(b, f.Content) {
			t.Fatalf("%s: %v (content equal: %v)", f.Path, err, bytes.Equal(b, f.Content))
		}
		fi, _ := os.Stat(filepath.Join(root, f.Path))
		if fi.Mode().Perm() != f.Mode.Perm() {
			t.Errorf("%s: mode %v, want %v", f.Path, fi.Mode().Perm(), f.Mode.Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(root, statePath("fleet"))); err != nil {
		t.Fatalf("no record: %v", err)
	}
	sum, err = Run(context.Background(), o)
	if err != nil || sum.Hosts[0].Status != StatusUnchanged {
		t.Fatalf("second run: %v %+v", err, sum.Hosts[0])
	}
	edited := filepath.Join(root, hosts[0].Files[0].Path)
	os.WriteFile(edited, []byte("hand edit\n"), 0o644)
	o.Hosts[0].Files[0].Content = append([]byte("# changed\n"), o.Hosts[0].Files[0].Content...)
	_, err = Run(context.Background(), o)
	if err == nil {
		t.Fatal("a hand edit was not drift")
	}
	if b, _ := os.ReadFile(edited); string(b) != "hand edit\n" {
		t.Fatal("the drifted file was overwritten")
	}
}
