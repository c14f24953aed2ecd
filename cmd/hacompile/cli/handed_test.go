package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/cmd/hacompile/cli"
	"github.com/hacompile/hacompile/internal/fleet"
)

// A full build writes each cloud-init document to out/ as the compile
// makes it (artifact.Options.Hand). When the compile fails after that —
// here a second stack, rendered after the first one's documents were
// written, whose sysctl generator refuses a key the stack sets — out/ is
// left as it was: an existing out/ byte for byte, with nothing staged
// left behind, and an out/ that did not exist (nor its parents) not
// made at all.
func TestFailedBuildAfterHandedDocuments(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", filepath.Join(t.TempDir(), "cache"))
	dir := t.TempDir()
	stacks := filepath.Join(dir, "stacks")
	if err := os.MkdirAll(stacks, 0o755); err != nil {
		t.Fatal(err)
	}
	good := fleet.Fleet(12, "")
	if err := os.WriteFile(filepath.Join(stacks, "a.cue"), good, 0o644); err != nil {
		t.Fatal(err)
	}
	bad := strings.NewReplacer(
		`name:        "fleet"`, `name:        "fleet2"`,
		"router_id: 50", "router_id: 51",
		"fleet.example.com", "fleet2.example.com",
		`"net.core.somaxconn": 32768`, `"net.core.somaxconn": 32768, "vm.overcommit_memory": 1`,
	).Replace(string(good))
	writeBad := func() {
		t.Helper()
		if err := os.WriteFile(filepath.Join(stacks, "b.cue"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	failing := func(out string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		cmd := cli.New(&stdout, &stderr)
		cmd.SetArgs([]string{"build", "--out", out, stacks})
		err := cmd.Execute()
		// The generator's refusal, at render time: the rules passed, and
		// the first stack's documents were written before it.
		if err == nil || !strings.Contains(err.Error(), "b.cue:") || !strings.Contains(err.Error(), "fleet2/sysctl: hacompile sets vm.overcommit_memory") {
			t.Fatalf("build: %v, want the sysctl generator's error\n%s", err, stderr.String())
		}
	}

	writeBad()
	fresh := filepath.Join(dir, "new", "out")
	failing(fresh)
	if _, err := os.Lstat(filepath.Join(dir, "new")); err == nil {
		t.Errorf("a failed first build left %s", filepath.Join(dir, "new"))
	}

	if err := os.Remove(filepath.Join(stacks, "b.cue")); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if code, _, stderr := hc(t, "build", "--out", out, stacks); code != 0 {
		t.Fatalf("build of the good stack: exit %d\n%s", code, stderr)
	}
	before := readTree(t, out)
	if len(before) < 100 {
		t.Fatalf("the good stack rendered %d files", len(before))
	}
	// Change the good stack, so its documents differ from out/'s and the
	// failed build would have written new ones.
	if err := os.WriteFile(filepath.Join(stacks, "a.cue"), fleet.Fleet(13, ""), 0o644); err != nil {
		t.Fatal(err)
	}
	writeBad()
	failing(out)
	after := readTree(t, out)
	for p, b := range before {
		if after[p] != b {
			t.Errorf("%s: changed by a failed build", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: left by a failed build", p)
		}
	}
}
