package outdir_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/outdir"
)

// writeFiles makes the files of files under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// checkFiles fails unless every file of files is under dir as it was
// made.
func checkFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil {
			t.Errorf("a file hacompile did not write is gone: %v", err)
		} else if string(b) != content {
			t.Errorf("%s: %q, want %q: hacompile wrote over a file it did not write", p, b, content)
		}
	}
}

// TestWriteRefusesUnrecorded: a non-empty directory without the owner
// record is refused, whatever its layout, and left untouched — a
// website's directory whose every top entry is a directory with an
// index.html, and an out/ of hacompile's that lost its record, with
// files added by hand. Nothing tells the files hacompile wrote there
// from others. Both through the listing a build makes from the record
// and through the one that reads every directory (--no-cache).
func TestWriteRefusesUnrecorded(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	tree := outdir.Tree{
		"s/hosts/a/etc/x.conf": []byte("x\n"),
		"s/manifest.json":      []byte("{}\n"),
		"site/index.html":      []byte("<p>\n"),
	}
	for _, listing := range []struct {
		name  string
		start func(string) *outdir.Listing
	}{{"StartListing", outdir.StartListing}, {"StartListingAll", outdir.StartListingAll}} {
		t.Run(listing.name+"/www", func(t *testing.T) {
			www := filepath.Join(t.TempDir(), "www")
			site := map[string]string{"blog/index.html": "b\n", "blog/2024-post.html": "p\n", "about/index.html": "a\n"}
			writeFiles(t, www, site)
			_, err := outdir.WriteListed(listing.start(www), tree)
			want := www + " is not empty and hacompile did not write it (no .hacompile.owned; it holds " + filepath.Join(www, "about", "index.html") + ")"
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "\nhacompile: hint: name a new or empty directory with --out") {
				t.Errorf("Write into a website's directory: %v, want %q… and a hint", err, want)
			}
			checkFiles(t, www, site)
			for _, p := range []string{"s", "site", outdir.OwnerFile} {
				if _, err := os.Lstat(filepath.Join(www, p)); err == nil {
					t.Errorf("wrote %s into a directory it refused", p)
				}
			}
		})
		t.Run(listing.name+"/lost-record", func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if _, err := outdir.Write(out, tree); err != nil {
				t.Fatal(err)
			}
			mine := map[string]string{"s/hosts/a/precious.txt": "mine\n", "site/mine.html": "mine\n"}
			writeFiles(t, out, mine)
			if err := os.Remove(filepath.Join(out, outdir.OwnerFile)); err != nil {
				t.Fatal(err)
			}
			// The next build no longer makes x.conf, and makes
			// manifest.json differently.
			next := outdir.Tree{"s/manifest.json": []byte("{\"v\": 2}\n"), "site/index.html": []byte("<p>\n")}
			_, err := outdir.WriteListed(listing.start(out), next)
			want := out + " is not empty and hacompile did not write it (no .hacompile.owned; it holds " + filepath.Join(out, "s", "hosts", "a", "etc", "x.conf") + ")"
			if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "delete it and build again") {
				t.Errorf("Write into an out/ that lost its record: %v, want %q… and how to proceed", err, want)
			}
			checkFiles(t, out, mine)
			checkFiles(t, out, map[string]string{"s/hosts/a/etc/x.conf": "x\n", "s/manifest.json": "{}\n"})
			if _, err := os.Lstat(filepath.Join(out, outdir.OwnerFile)); err == nil {
				t.Error("wrote a record into a directory it refused")
			}
		})
	}
}

// TestWriteTakesStagingLeftovers: a directory without the record that
// holds only what a build killed before its renames left at its top (a
// staging directory) is hacompile's: the leftovers go, and the build
// writes there and records what it wrote.
func TestWriteTakesStagingLeftovers(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	writeFiles(t, out, map[string]string{".hacompile-1-s/hosts/a/etc/x.conf": "old\n"})
	if _, err := outdir.Write(out, outdir.Tree{"s/manifest.json": []byte("{}\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(out, ".hacompile-1-s")); err == nil {
		t.Error("the staging directory a killed build left is still there")
	}
	b, err := os.ReadFile(filepath.Join(out, outdir.OwnerFile))
	if err != nil || !strings.Contains(string(b), `"s/manifest.json"`) {
		t.Errorf("owner record %q (%v), want one naming s/manifest.json", b, err)
	}
}

// TestWriteUnwritable: a directory no file can be made in is refused
// before anything is written, with one error naming it (not one for
// each file).
func TestWriteUnwritable(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := filepath.Join(t.TempDir(), "out")
	if err := os.Mkdir(out, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(out, 0o755) })
	if f, err := os.Create(filepath.Join(out, "probe")); err == nil {
		f.Close()
		t.Skip("a directory of mode 0555 is writable here (root)")
	}
	tree := outdir.Tree{"s/a": []byte("a\n"), "s/b": []byte("b\n"), "t/c": []byte("c\n")}
	_, err := outdir.Write(out, tree)
	if err == nil || err.Error() != "cannot write in "+out+": permission denied" {
		t.Errorf("Write into a read-only directory: %v, want %q", err, "cannot write in "+out+": permission denied")
	}
}
