package outdir_test

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/outdir"
)

// TestCache: a record is used only for the same key and an out/ exactly
// as the build left it.
func TestCache(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	tree := outdir.Tree{"s/hosts/a/etc/x.conf": []byte("x\n"), "s/manifest.json": []byte("{}\n")}
	if _, err := outdir.Write(out, tree); err != nil {
		t.Fatal(err)
	}
	if _, ok := outdir.LoadCache(out, "k1"); ok {
		t.Fatal("hit before any record")
	}
	outdir.StoreCache(out, &outdir.CacheRecord{Key: "k1", Stacks: []outdir.StackSummary{{Name: "s", Hosts: 1, Files: 2}}}, nil)
	rec, ok := outdir.LoadCache(out, "k1")
	if !ok || len(rec.Stacks) != 1 || rec.Stacks[0] != (outdir.StackSummary{Name: "s", Hosts: 1, Files: 2}) || rec.Files != 2 {
		t.Fatalf("no hit after storing: %+v %v", rec, ok)
	}
	if _, ok := outdir.LoadCache(out, "k2"); ok {
		t.Error("hit for another key")
	}
	other := t.TempDir()
	if _, ok := outdir.LoadCache(other, "k1"); ok {
		t.Error("hit for another output directory")
	}

	f := filepath.Join(out, "s/hosts/a/etc/x.conf")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(f, later, later); err != nil {
		t.Fatal(err)
	}
	if _, ok := outdir.LoadCache(out, "k1"); ok {
		t.Error("hit after a file was touched")
	}
	outdir.StoreCache(out, &outdir.CacheRecord{Key: "k1"}, nil)
	if err := os.WriteFile(filepath.Join(out, "s/extra"), []byte("e"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := outdir.LoadCache(out, "k1"); ok {
		t.Error("hit with an extra file in out/")
	}
	os.Remove(filepath.Join(out, "s/extra"))
	os.Remove(f)
	if _, ok := outdir.LoadCache(out, "k1"); ok {
		t.Error("hit with a file missing from out/")
	}
}

func TestHashInputs(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "lib"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.cue"), []byte("a"), 0o644)
	os.WriteFile(filepath.Join(dir, "lib", "b.libsonnet"), []byte("b"), 0o644)
	h1, err := outdir.HashInputs([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	if h2, _ := outdir.HashInputs([]string{dir}); h2 != h1 {
		t.Fatal("hash is not stable")
	}
	os.WriteFile(filepath.Join(dir, "lib", "b.libsonnet"), []byte("B"), 0o644)
	if h3, _ := outdir.HashInputs([]string{dir}); h3 == h1 {
		t.Error("a change in a nested library does not change the hash")
	}
}

// TestWriterStamps: the stamps a writer collects as it writes (new
// directories staged, files replaced, files kept) are what reading out/
// afterwards gives, so a build can record them without walking out/.
func TestWriterStamps(t *testing.T) {
	out := t.TempDir()
	for _, tree := range []outdir.Tree{
		{"s/hosts/a/etc/x.conf": []byte("x\n"), "s/manifest.json": []byte("{}\n"), "site/index.html": []byte("<p>\n")},
		{"s/hosts/a/etc/x.conf": []byte("x2\n"), "s/manifest.json": []byte("{}\n"), "site/index.html": []byte("<p>\n")},
	} {
		w, err := outdir.NewWriter(out)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(tree); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Finish(); err != nil {
			t.Fatal(err)
		}
		read, err := outdir.Stamps(out)
		if err != nil {
			t.Fatal(err)
		}
		n, seq := w.StampsUnder("")
		got := maps.Collect(seq)
		if n != len(got) || !maps.Equal(got, read) {
			t.Errorf("writer's stamps %v, out/ holds %v", got, read)
		}
		// Under a prefix: those paths alone, in order ("s/" is not
		// "site/").
		n, seq = w.StampsUnder("s/")
		var paths []string
		for p, st := range seq {
			if !strings.HasPrefix(p, "s/") || read[p] != st {
				t.Errorf("StampsUnder(s/) yields %s %v", p, st)
			}
			paths = append(paths, p)
		}
		if want := []string{"s/hosts/a/etc/x.conf", "s/manifest.json"}; n != 2 || !slices.Equal(paths, want) {
			t.Errorf("StampsUnder(s/) = %d, %q; want %q", n, paths, want)
		}
	}
}

// TestBinaryID: the test binary is identified by its Go build ID, read
// from its ELF note, the same on every read; a file that is not an ELF
// executable falls back to its hash.
func TestBinaryID(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	id, err := outdir.BinaryID(exe)
	if err != nil || !strings.HasPrefix(id, "go-build-id:") || len(id) < len("go-build-id:")+20 {
		t.Fatalf("BinaryID(test binary) = %q, %v", id, err)
	}
	if again, _ := outdir.BinaryID(exe); again != id {
		t.Errorf("BinaryID changed between reads: %q, %q", id, again)
	}
	if out, err := exec.Command("go", "tool", "buildid", exe).Output(); err == nil {
		if want := "go-build-id:" + strings.TrimSpace(string(out)); id != want {
			t.Errorf("BinaryID = %q, go tool buildid says %q", id, want)
		}
	}
	// A build ID given by hand (Bazel's rules_go says "redacted") names
	// nothing: such a binary is hashed.
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "go.mod"), []byte("module x\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
	redacted := filepath.Join(src, "x")
	cmd := exec.Command("go", "build", "-ldflags=-buildid=redacted", "-o", redacted, ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if h, err := outdir.BinaryID(redacted); err != nil || strings.HasPrefix(h, "go-build-id:") {
		t.Errorf("BinaryID(binary with -buildid=redacted) = %q, %v; want the file's hash", h, err)
	}
	other := filepath.Join(t.TempDir(), "script")
	os.WriteFile(other, []byte("#!/bin/sh\n"), 0o755)
	h, err := outdir.BinaryID(other)
	if err != nil || strings.HasPrefix(h, "go-build-id:") || h == "" {
		t.Errorf("BinaryID(non-ELF) = %q, %v; want the file's hash", h, err)
	}
}

// TestWriterStampsDigest: the record of a build whose writer gave the
// digest of its stamps is hit as one read from disk is, and the owner
// record of a writer of part of out keeps the files out of its scope.
func TestWriterStampsDigest(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	out := t.TempDir()
	if _, err := outdir.Write(out, outdir.Tree{"b/old": []byte("old\n"), "c/f": []byte("f\n")}); err != nil {
		t.Fatal(err)
	}
	w, err := outdir.NewWriter(out, "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(outdir.Tree{"a/z": []byte("z\n"), "a/hosts/h/etc/x": []byte("x\n"), "b/new": []byte("n\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	owner, err := os.ReadFile(filepath.Join(out, outdir.OwnerFile))
	if err != nil {
		t.Fatal(err)
	}
	// b/old is gone; c/f, out of scope, stays owned; paths in order.
	files := strings.Join(strings.Fields(string(owner)), " ")
	if want := `"a/hosts/h/etc/x", "a/z", "b/new", "c/f" ]`; !strings.Contains(files, want) {
		t.Errorf("owner record %s, want the files %s", files, want)
	}

	w, err = outdir.NewWriter(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(outdir.Tree{"a/z": []byte("z\n"), "a/hosts/h/etc/x": []byte("x\n"), "b/new": []byte("n\n"), "c/f": []byte("f\n")}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	n, digest := w.StampsDigest()
	if n != 4 {
		t.Errorf("the writer's digest is of %d files, want 4", n)
	}
	outdir.StoreCacheDigest(out, &outdir.CacheRecord{Key: "k"}, n, digest)
	if _, ok := outdir.LoadCache(out, "k"); !ok {
		t.Fatal("no hit for the writer's digest")
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(out, "c/f"), later, later); err != nil {
		t.Fatal(err)
	}
	if _, ok := outdir.LoadCache(out, "k"); ok {
		t.Error("hit after a file was touched")
	}
}
