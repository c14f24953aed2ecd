package jsonnet

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

func link(target string) *fstest.MapFile {
	return &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink}
}

func file(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }

// sandboxFS is a repository with a stacks directory, a library
// directory and files that no import may read.
var sandboxFS = fstest.MapFS{
	"repo/stacks/shop.jsonnet":         file("{}"),
	"repo/stacks/lib/a.libsonnet":      file("'stacks/lib/a'"),
	"repo/stacks/lib/b.libsonnet":      file("import 'a.libsonnet'"),
	"repo/stacks/lib/inside.libsonnet": link("a.libsonnet"),
	"repo/stacks/lib/abs.libsonnet":    link("/repo/vendor/v.libsonnet"),
	"repo/stacks/lib/out.libsonnet":    link("../../secret.libsonnet"),
	"repo/stacks/lib/up.libsonnet":     link("../../../../etc/passwd"),
	"repo/stacks/lib/loop.libsonnet":   link("loop.libsonnet"),
	"repo/stacks/vendored":             link("../vendor"),
	"repo/stacks/a.libsonnet":          file("'stacks/a'"),
	"repo/vendor/v.libsonnet":          file("'vendor/v'"),
	"repo/vendor/a.libsonnet":          file("'vendor/a'"),
	"repo/vendor2/a.libsonnet":         file("'vendor2/a'"),
	"repo/vendor/up.libsonnet":         file("import '../secret.libsonnet'"),
	"repo/secret.libsonnet":            file("'secret'"),
}

// TestImporterSandbox proves that imports resolve from the importing
// file's directory and then the library paths (right-most first), and
// that nothing outside the stack's directory and the library paths is
// read: not through "..", not through an absolute path, not through a
// symbolic link.
func TestImporterSandbox(t *testing.T) {
	src := Source{Name: "stacks/shop.jsonnet", FS: sandboxFS, Path: "repo/stacks/shop.jsonnet"}
	imp := newImporter(src, []string{"repo/vendor2", "repo/vendor"})
	tests := []struct {
		from, path string
		found, err string
	}{
		{"stacks/shop.jsonnet", "lib/a.libsonnet", "stacks/lib/a.libsonnet", ""},
		{"stacks/shop.jsonnet", "lib/b.libsonnet", "stacks/lib/b.libsonnet", ""},
		{"stacks/lib/b.libsonnet", "a.libsonnet", "stacks/lib/a.libsonnet", ""},
		// Not next to the importer: the right-most library path wins.
		{"stacks/shop.jsonnet", "v.libsonnet", "vendor/v.libsonnet", ""},
		{"stacks/lib/b.libsonnet", "v.libsonnet", "vendor/v.libsonnet", ""},
		{"stacks/shop.jsonnet", "a.libsonnet", "stacks/a.libsonnet", ""},
		{"", "a.libsonnet", "stacks/a.libsonnet", ""},
		{"stacks/shop.jsonnet", "/repo/vendor/v.libsonnet", "vendor/v.libsonnet", ""},
		{"stacks/shop.jsonnet", "lib/inside.libsonnet", "stacks/lib/a.libsonnet", ""},
		{"stacks/shop.jsonnet", "lib/abs.libsonnet", "vendor/v.libsonnet", ""},
		{"stacks/shop.jsonnet", "vendored/v.libsonnet", "vendor/v.libsonnet", ""},
		{"stacks/shop.jsonnet", "lib/../a.libsonnet", "stacks/a.libsonnet", ""},

		{"stacks/shop.jsonnet", "../secret.libsonnet", "", `cannot import "../secret.libsonnet": it is outside the stack's directory and the library paths (-J)`},
		{"stacks/shop.jsonnet", "../../../etc/passwd", "", `cannot import "../../../etc/passwd": it is outside the stack's directory and the library paths (-J)`},
		{"stacks/shop.jsonnet", "/repo/secret.libsonnet", "", `cannot import "/repo/secret.libsonnet": it is outside the stack's directory and the library paths (-J)`},
		{"stacks/shop.jsonnet", "/etc/passwd", "", `cannot import "/etc/passwd": it is outside the stack's directory and the library paths (-J)`},
		{"vendor/v.libsonnet", "../secret.libsonnet", "", `cannot import "../secret.libsonnet": it is outside the stack's directory and the library paths (-J)`},
		{"stacks/shop.jsonnet", "lib/out.libsonnet", "", `cannot import "lib/out.libsonnet": it links to a file outside the stack's directory and the library paths (-J)`},
		{"stacks/shop.jsonnet", "lib/up.libsonnet", "", `cannot import "lib/up.libsonnet": it links to a file outside the stack's directory and the library paths (-J)`},
		{"stacks/shop.jsonnet", "lib/loop.libsonnet", "", `cannot import "lib/loop.libsonnet": repo/stacks/lib/loop.libsonnet: too many levels of symbolic links`},
		{"stacks/shop.jsonnet", "nope.libsonnet", "", `cannot import "nope.libsonnet": no such file in the stack's directory or the library paths (-J)`},
		{"stacks/shop.jsonnet", "lib", "", `cannot import "lib": is a directory`},
		{"stacks/shop.jsonnet", "", "", `cannot import "": empty path`},
	}
	for _, tt := range tests {
		c, found, err := imp.Import(tt.from, tt.path)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("Import(%q, %q): error %v, want %s", tt.from, tt.path, err, tt.err)
			}
			continue
		}
		if err != nil || found != tt.found {
			t.Errorf("Import(%q, %q) = %q, %v; want %q", tt.from, tt.path, found, err, tt.found)
			continue
		}
		again, _, _ := imp.Import(tt.from, tt.path)
		if again != c {
			t.Errorf("Import(%q, %q): a second import returned other Contents", tt.from, tt.path)
		}
	}

	// A stack that was not read from a file system imports nothing.
	none := newImporter(Source{Name: "stacks/x.jsonnet"}, nil)
	if _, _, err := none.Import("stacks/x.jsonnet", "a.libsonnet"); err == nil {
		t.Error("import without a file system succeeded")
	}
}

// TestImporterDisk runs the sandbox on a real directory with real
// symbolic links, through os.DirFS("/") as builds read stacks.
func TestImporterDisk(t *testing.T) {
	dir := t.TempDir()
	mustWrite := func(p, s string) {
		t.Helper()
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite("stacks/shop.jsonnet", "{}")
	mustWrite("stacks/lib/a.libsonnet", "{}")
	mustWrite("secret.libsonnet", "{}")
	for name, target := range map[string]string{
		"stacks/lib/out.libsonnet": filepath.Join(dir, "secret.libsonnet"),
		"stacks/lib/in.libsonnet":  "a.libsonnet",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Skip("no symbolic links here:", err)
		}
	}
	fsPath := strings.TrimPrefix(filepath.ToSlash(dir), "/")
	imp := newImporter(Source{Name: "stacks/shop.jsonnet", FS: os.DirFS("/"), Path: fsPath + "/stacks/shop.jsonnet"}, nil)
	if _, found, err := imp.Import("stacks/shop.jsonnet", "lib/in.libsonnet"); err != nil || found != "stacks/lib/a.libsonnet" {
		t.Errorf("link inside the stacks directory: %q, %v", found, err)
	}
	if _, _, err := imp.Import("stacks/shop.jsonnet", "lib/out.libsonnet"); err == nil || !strings.Contains(err.Error(), "links to a file outside") {
		t.Errorf("link out of the stacks directory: %v", err)
	}
	if _, _, err := imp.Import("stacks/shop.jsonnet", "/"+fsPath+"/secret.libsonnet"); err == nil || !strings.Contains(err.Error(), "is outside") {
		t.Errorf("absolute path out of the stacks directory: %v", err)
	}
}

// TestNames proves that files found in the file system are named the
// way the stack file is: relative to the same directory.
func TestNames(t *testing.T) {
	tests := []struct{ name, fsPath, other, want string }{
		{"stacks/shop.jsonnet", "home/u/repo/stacks/shop.jsonnet", "home/u/repo/stacks/lib/a.libsonnet", "stacks/lib/a.libsonnet"},
		{"stacks/shop.jsonnet", "home/u/repo/stacks/shop.jsonnet", "usr/share/jsonnet/k.libsonnet", "../../../usr/share/jsonnet/k.libsonnet"},
		{"../other/shop.jsonnet", "home/u/other/shop.jsonnet", "home/u/other/lib/a.libsonnet", "../other/lib/a.libsonnet"},
		{"/abs/shop.jsonnet", "abs/shop.jsonnet", "abs/lib/a.libsonnet", "/abs/lib/a.libsonnet"},
		{"shop.jsonnet", "shop.jsonnet", "lib/a.libsonnet", "lib/a.libsonnet"},
		{"stacks/shop.jsonnet", "stacks/shop.jsonnet", "vendor/a.libsonnet", "vendor/a.libsonnet"},
	}
	for _, tt := range tests {
		if got := newNames(tt.name, tt.fsPath).show(tt.other); got != tt.want {
			t.Errorf("names(%q, %q).show(%q) = %q, want %q", tt.name, tt.fsPath, tt.other, got, tt.want)
		}
	}
}

// FuzzImport feeds the sandbox arbitrary import paths: whatever it
// resolves is a file inside the stack's directory or a library path,
// read from there, never the secret next to them.
func FuzzImport(f *testing.F) {
	for _, p := range []string{"lib/a.libsonnet", "../secret.libsonnet", "/repo/secret.libsonnet", "lib/out.libsonnet",
		"vendored/../../secret.libsonnet", "lib/loop.libsonnet", "./lib//a.libsonnet", "/", ".", "..", "lib/up.libsonnet"} {
		f.Add("stacks/shop.jsonnet", p)
		f.Add("vendor/v.libsonnet", p)
	}
	f.Fuzz(func(t *testing.T, from, p string) {
		imp := newImporter(Source{Name: "stacks/shop.jsonnet", FS: sandboxFS, Path: "repo/stacks/shop.jsonnet"}, []string{"repo/vendor"})
		imp.Import("stacks/shop.jsonnet", "/repo/vendor/v.libsonnet") // makes vendor/v.libsonnet a known importer
		c, found, err := imp.Import(from, p)
		if err != nil {
			return
		}
		real := imp.path[found]
		if !strings.HasPrefix(real, "repo/stacks/") && !strings.HasPrefix(real, "repo/vendor/") {
			t.Fatalf("Import(%q, %q) read %s (%s)", from, p, real, found)
		}
		if c.String() == "'secret'" {
			t.Fatalf("Import(%q, %q) read the secret through %s", from, p, real)
		}
	})
}
