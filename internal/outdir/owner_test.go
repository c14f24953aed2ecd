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
