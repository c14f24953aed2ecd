package outdir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/outdir"
)

// TestWriteOwnsOnlyItsFiles: a non-empty directory hacompile did not
// write (a project with .git) is refused and left untouched; in one it
// owns, only files it wrote are removed, a file put there by hand stays.
func TestWriteOwnsOnlyItsFiles(t *testing.T) {
	tree := outdir.Tree{"s/hosts/a/etc/x.conf": []byte("x\n"), "s/manifest.json": []byte("{}\n")}

	project := t.TempDir()
	for _, f := range []string{".git/HEAD", "README.md"} {
		os.MkdirAll(filepath.Dir(filepath.Join(project, f)), 0o755)
		if err := os.WriteFile(filepath.Join(project, f), []byte("mine\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := outdir.Write(project, tree)
	if err == nil || !strings.Contains(err.Error(), "hacompile did not write it") || !strings.Contains(err.Error(), "hint:") {
		t.Errorf("Write into a project: %v", err)
	}
	for _, f := range []string{".git/HEAD", "README.md"} {
		if _, err := os.Stat(filepath.Join(project, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(project, "s")); err == nil {
		t.Error("wrote into a directory it refused")
	}

	owned := t.TempDir()
	if _, err := outdir.Write(owned, tree); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(owned, "s", "notes.txt")
	if err := os.WriteFile(mine, []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	delete(tree, "s/hosts/a/etc/x.conf")
	stats, err := outdir.Write(owned, tree)
	if err != nil {
		t.Fatal(err)
	}
	if st := *stats["s"]; st != (outdir.Stats{Unchanged: 1, Removed: 1}) {
		t.Errorf("stats %+v, want 1 unchanged, 1 removed", st)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Errorf("a file hacompile did not write was removed: %v", err)
	}

	// A directory laid out as out/ is, without the record (an out/ of a
	// build from before the record), is not taken for hacompile's: it
	// is refused, untouched (TestWriteRefusesUnrecorded).
	legacy := t.TempDir()
	os.MkdirAll(filepath.Join(legacy, "s"), 0o755)
	os.MkdirAll(filepath.Join(legacy, "site"), 0o755)
	os.WriteFile(filepath.Join(legacy, "s", "manifest.json"), []byte("{}\n"), 0o644)
	os.WriteFile(filepath.Join(legacy, "site", "index.html"), []byte("<p>\n"), 0o644)
	if _, err := outdir.Write(legacy, tree); err == nil || !strings.Contains(err.Error(), "hacompile did not write it") {
		t.Errorf("Write into an earlier build's out/ without its record: %v", err)
	}
	if _, err := os.Stat(filepath.Join(legacy, outdir.OwnerFile)); err == nil {
		t.Error("wrote a record into a directory it refused")
	}
}

// TestWriteKeepsOthersFile: a file hacompile did not write, at a path a
// later build makes, is not replaced: the build fails naming it and
// leaves out/ as it was. The same content there is taken as the build's.
func TestWriteKeepsOthersFile(t *testing.T) {
	dir := t.TempDir()
	first := outdir.Tree{"s/a.conf": []byte("a\n")}
	if _, err := outdir.Write(dir, first); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "s", "b.conf")
	if err := os.WriteFile(mine, []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := outdir.Tree{"s/a.conf": []byte("a2\n"), "s/b.conf": []byte("b\n")}
	_, err := outdir.Write(dir, second)
	if err == nil || !strings.Contains(err.Error(), "b.conf: this build makes a file here, and the one there is not hacompile's") {
		t.Fatalf("Write over a file hacompile did not write: %v", err)
	}
	for p, want := range map[string]string{"s/b.conf": "mine\n", "s/a.conf": "a\n"} {
		if b, _ := os.ReadFile(filepath.Join(dir, p)); string(b) != want {
			t.Errorf("%s: %q, want %q (out/ as it was)", p, b, want)
		}
	}
	// The build's own content there: taken as written, and owned.
	os.WriteFile(mine, []byte("b\n"), 0o644)
	if _, err := outdir.Write(dir, second); err != nil {
		t.Fatal(err)
	}
	if _, err := outdir.Write(dir, first); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine); !os.IsNotExist(err) {
		t.Errorf("b.conf, the build's since, was not removed with it: %v", err)
	}
}
