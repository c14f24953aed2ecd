package cloudinit_test

import (
	"bytes"
	"crypto/sha256"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/hacompile/hacompile/generators"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/fleet"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// A document's key (artifact.Options.Reuse) covers everything it is made
// from: of every example stack, each host's document is the same when
// every other host is gone from the stack, and the positions and the
// stack file's digest differ. So no generator's Packages or FirstBoot
// reads another host's entry, which the key leaves out.
func TestDocumentReadsOnlyItsKey(t *testing.T) {
	t.Parallel()
	docs := 0
	for _, r := range renderAll(t) {
		s := r.Stack
		for _, name := range s.HostNames() {
			var files []artifact.File
			for _, f := range r.Files {
				if f.Host == name {
					files = append(files, f)
				}
			}
			want, err := cloudinit.Document(s, s.Hosts[name], files, r.Set.Generators)
			if err != nil {
				t.Fatal(err)
			}
			alone := s.Clone()
			alone.Hosts = map[string]*schema.Host{name: alone.Hosts[name]}
			alone.Positions = nil
			alone.SourceDigest = "0000"
			got, err := cloudinit.Document(alone, alone.Hosts[name], files, r.Set.Generators)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s/%s: the document changes with the other hosts' entries, which its key leaves out", s.Name, name)
			}
			docs++
		}
	}
	if docs < 10 {
		t.Fatalf("checked %d documents; want every example stack's", docs)
	}
}

// keyRun assembles s's documents asking reuse for each, and records the
// keys asked with and the documents made.
type keyRun struct {
	mu    sync.Mutex
	keys  map[string][sha256.Size]byte // document path → key
	made  []string
	files []artifact.File // the documents Assemble returned
}

// assembleKeyed runs the cloud-init assembler over a fleet's files as a
// build does (Hand and Reuse set); reused says which documents Reuse
// finds.
func assembleKeyed(t *testing.T, s *schema.Stack, files []artifact.File, reused func(path string) bool) *keyRun {
	t.Helper()
	run := &keyRun{keys: map[string][sha256.Size]byte{}}
	opt := artifact.Options{
		Hand: func(_ *schema.Stack, f artifact.File) (artifact.File, error) {
			run.mu.Lock()
			defer run.mu.Unlock()
			run.made = append(run.made, f.Path)
			f.Handed = &artifact.Handed{SHA256: sha256.Sum256(f.Content), Size: len(f.Content)}
			f.Content = nil
			return f, nil
		},
		Reuse: func(_ *schema.Stack, f artifact.File, key [sha256.Size]byte) (artifact.File, bool, error) {
			run.mu.Lock()
			defer run.mu.Unlock()
			if _, ok := run.keys[f.Path]; ok {
				t.Errorf("%s: asked to reuse twice", f.Path)
			}
			run.keys[f.Path] = key
			if !reused(f.Path) {
				return f, false, nil
			}
			f.Handed = &artifact.Handed{SHA256: key, Size: 7}
			return f, true, nil
		},
	}
	docs, err := cloudinit.Gen{}.Assemble(s, opt, files, generators.All())
	if err != nil {
		t.Fatal(err)
	}
	run.files = docs
	slices.Sort(run.made)
	return run
}

// fleetFiles are the generators' files of a 12-host fleet, checked and
// sorted by host and path as a build gives them to Assemble.
func fleetFiles(t *testing.T) (*schema.Stack, []artifact.File) {
	t.Helper()
	s := testtool.Load(t, "stacks/fleet.cue", string(fleet.Fleet(12, "")))
	r, err := compile.Builtin().GeneratorsOnly().Render(s, artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, r.Files
}

// Each document's key changes exactly when something it is made from
// does: one host's file (its content, mode, owner, path or actions),
// one host's entry, or the stack's settings; and a document Reuse finds
// is not made.
func TestDocumentKeys(t *testing.T) {
	t.Parallel()
	s, files := fleetFiles(t)
	none := func(string) bool { return false }
	base := assembleKeyed(t, s, files, none)
	if len(base.keys) != len(s.Hosts) || len(base.made) != len(s.Hosts) {
		t.Fatalf("%d keys asked for and %d documents made, for %d hosts", len(base.keys), len(base.made), len(s.Hosts))
	}
	if again := assembleKeyed(t, s, files, none); !maps.Equal(again.keys, base.keys) {
		t.Fatal("the same inputs gave other keys")
	}
	distinct := map[[sha256.Size]byte]bool{}
	for _, k := range base.keys {
		distinct[k] = true
	}
	if len(distinct) != len(s.Hosts) {
		t.Error("two hosts' documents have the same key")
	}
	// changed reports which documents' keys differ from base's.
	changed := func(run *keyRun) []string {
		var out []string
		for p, k := range run.keys {
			if base.keys[p] != k {
				out = append(out, p)
			}
		}
		slices.Sort(out)
		return out
	}
	// A copy of the files with one of app2's changed.
	withFile := func(change func(f *artifact.File)) []artifact.File {
		fs := slices.Clone(files)
		for i := range fs {
			if fs[i].Host == "app2" && fs[i].Path == "etc/fleet/gunicorn.conf.py" {
				change(&fs[i])
				return fs
			}
		}
		t.Fatal("app2 has no etc/fleet/gunicorn.conf.py")
		return nil
	}
	app2 := []string{"cloud-init/app2.yaml"}
	for name, change := range map[string]func(f *artifact.File){
		"content": func(f *artifact.File) { f.Content = append(slices.Clone(f.Content), '#', '\n') },
		"same size content": func(f *artifact.File) {
			f.Content = slices.Clone(f.Content)
			f.Content[len(f.Content)-2] ^= 1
		},
		"mode":   func(f *artifact.File) { f.Mode = 0o600 },
		"owner":  func(f *artifact.File) { f.Owner = "fleet:fleet" },
		"path":   func(f *artifact.File) { f.Path = "etc/fleet/gunicorn2.conf.py" },
		"kind":   func(f *artifact.File) { f.Kind = "systemd" },
		"reload": func(f *artifact.File) { f.Reload = artifact.Run("true") },
	} {
		if got := changed(assembleKeyed(t, s, withFile(change), none)); !slices.Equal(got, app2) {
			t.Errorf("app2's file changed (%s): the keys of %q changed, want %q", name, got, app2)
		}
	}
	// One host's entry, its files as they were.
	c := s.Clone()
	c.Hosts["app4"].Notes = "moved to rack 4"
	if got := changed(assembleKeyed(t, c, files, none)); !slices.Equal(got, []string{"cloud-init/app4.yaml"}) {
		t.Errorf("app4's entry changed: the keys of %q changed, want app4's only", got)
	}
	// The stack's settings, and the file it comes from: every key.
	c = s.Clone()
	c.Description = "another"
	if got := changed(assembleKeyed(t, c, files, none)); len(got) != len(s.Hosts) {
		t.Errorf("the stack's description changed: %d keys changed, want all %d", len(got), len(s.Hosts))
	}
	c = s.Clone()
	c.Source = "stacks/other.cue"
	if got := changed(assembleKeyed(t, c, files, none)); len(got) != len(s.Hosts) {
		t.Errorf("the stack's file changed: %d keys changed, want all %d", len(got), len(s.Hosts))
	}
	// What Reuse finds is not made: it stands as Reuse returned it.
	run := assembleKeyed(t, s, files, func(p string) bool { return p != "cloud-init/app2.yaml" })
	if !slices.Equal(run.made, []string{"cloud-init/app2.yaml"}) {
		t.Errorf("with every other document reused, made %q, want app2's only", run.made)
	}
	for _, f := range run.files {
		if f.Path == "cloud-init/app2.yaml" {
			continue
		}
		if k := run.keys[f.Path]; f.Handed == nil || f.Handed.SHA256 != k || f.Handed.Size != 7 || f.Content != nil {
			t.Errorf("%s: reused, but Assemble returned %+v, not Reuse's file", f.Path, f.Handed)
		}
	}
}
