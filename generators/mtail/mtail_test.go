package mtail_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/mtail"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

func load(t *testing.T, balancer string) *schema.Stack {
	t.Helper()
	return testtool.Load(t, "t.cue", `
name:   "t"
domain: "shop.example.com"
hosts: {
	lb1:  {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "`+balancer+`"
monitoring: address: "10.0.0.2"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`)
}

// TestWhere: mtail runs on the app hosts of an nginx-balanced stack,
// bound to each one's address, and not where HAProxy counts responses.
func TestWhere(t *testing.T) {
	fs, err := mtail.Gen{}.Generate(load(t, "nginx"), artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range fs {
		got = append(got, f.Host+"/"+f.Path)
		if f.Path == mtail.DefaultsPath && !strings.Contains(string(f.Content), "HOST="+map[string]string{"app1": "10.0.0.11", "app2": "10.0.0.12"}[f.Host]+"\nPORT=3903\n") {
			t.Errorf("%s: %s", f.Host, f.Content)
		}
	}
	if strings.Join(got, " ") != "app1/etc/default/mtail app1/etc/mtail/nginx.mtail app2/etc/default/mtail app2/etc/mtail/nginx.mtail" {
		t.Errorf("files %q", got)
	}
	if fs, _ := (mtail.Gen{}).Generate(load(t, "haproxy"), artifact.Options{}); len(fs) != 0 {
		t.Errorf("HAProxy stack: %d files", len(fs))
	}
}

// TestCounts compiles the rendered program with Debian's mtail and runs
// it once over access-log lines in nginx's log_format hacompile (nginx
// escapes " and bytes outside printable ASCII in a field as \xXX).
func TestCounts(t *testing.T) {
	bin := testtool.Require(t, "mtail", "mtail")
	s := load(t, "nginx")
	dir := t.TempDir()
	prog := filepath.Join(dir, "nginx.mtail")
	if err := os.WriteFile(prog, mtail.Program(s), 0o644); err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "access.log")
	lines := []string{
		`10.0.0.5 - - [04/Dec/2026:23:00:00 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8.0" rt=0.001 uct=0.000 urt=0.001 ua=127.0.0.1:8000`,
		`10.0.0.5 - - [04/Dec/2026:23:00:01 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "HAProxy" rt=0.001 uct=0.000 urt=0.001 ua=127.0.0.1:8000`,
		`10.0.0.5 - bob [04/Dec/2026:23:00:02 +0000] "POST /a\x22b HTTP/1.1" 502 157 "https://x/" "Mozilla/5.0 (X11)" rt=0.002 uct=- urt=- ua=127.0.0.1:8000`,
		`10.0.0.5 - - [04/Dec/2026:23:00:03 +0000] "\x16\x03\x01" 400 157 "-" "-" rt=0.000 uct=- urt=- ua=-`,
	}
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--one_shot", "--one_shot_format", "prometheus", "--progs", prog, "--logs", log).CombinedOutput()
	if err != nil {
		t.Fatalf("mtail: %v\n%s", err, out)
	}
	for _, want := range []string{
		mtail.Metric + `{prog="nginx.mtail",status="200"} 2`,
		mtail.Metric + `{prog="nginx.mtail",status="400"} 1`,
		mtail.Metric + `{prog="nginx.mtail",status="502"} 1`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("mtail output lacks %s:\n%s", want, out)
		}
	}
}
