package cloudinit_test

import (
	"bytes"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/schema"
)

// TestCheckOnlyKeepsEveryFile assembles every test stack twice, as a
// build and as vet (artifact.Options.CheckOnly): the same documents by
// path, mode and owner, none with content when only checked.
func TestCheckOnlyKeepsEveryFile(t *testing.T) {
	t.Parallel()
	for _, r := range renderAll(t) {
		var files []artifact.File
		for _, f := range r.Files {
			if f.Kind != "cloud-init" && f.Kind != "aws" {
				files = append(files, f)
			}
		}
		built, err := cloudinit.Gen{}.Assemble(r.Stack, artifact.Options{}, files, r.Set.Generators)
		if err != nil {
			t.Fatal(err)
		}
		checked, err := cloudinit.Gen{}.Assemble(r.Stack, artifact.Options{CheckOnly: true}, files, r.Set.Generators)
		if err != nil {
			t.Fatalf("%s: checking fails where building does not: %v", r.Stack.Name, err)
		}
		if len(built) != len(checked) || len(built) != len(r.Stack.Hosts) {
			t.Fatalf("%s: %d documents built, %d checked, %d hosts", r.Stack.Name, len(built), len(checked), len(r.Stack.Hosts))
		}
		for i, b := range built {
			c := checked[i]
			if b.Path != c.Path || b.Mode != c.Mode || b.Owner != c.Owner || b.Host != c.Host || len(b.Content) == 0 || c.Content != nil {
				t.Errorf("%s: built %s %v %q (%d bytes), checked %s %v %q (%d bytes)", r.Stack.Name, b.Path, b.Mode, b.Owner, len(b.Content), c.Path, c.Mode, c.Owner, len(c.Content))
			}
		}
	}
}

// needs is a generator that asks for packages and first-boot steps.
type needs struct {
	pkgs  []string
	steps []artifact.Step
}

func (needs) Kind() string { return "needs" }
func (needs) Generate(*schema.Stack, artifact.Options) ([]artifact.File, error) {
	return nil, nil
}
func (n needs) Packages(*schema.Stack, *schema.Host, []artifact.File) []string { return n.pkgs }
func (needs) PackageDirs() []string                                            { return nil }
func (n needs) FirstBoot(*schema.Stack, *schema.Host, []artifact.File) []artifact.Step {
	return n.steps
}

// TestCheckFailsAsDocument puts a string that is not UTF-8 in every
// place of a document that quotes one (a file's path and owner, a
// package, a first-boot step, the app's user, directory and group):
// Check returns exactly Document's error, and both accept what
// Document writes (file contents of any bytes, base64 then).
func TestCheckFailsAsDocument(t *testing.T) {
	const bad = "bad\xff"
	file := func(p, owner string, content string) artifact.File {
		return artifact.File{Host: "h", Path: p, Content: []byte(content), Mode: 0o644, Owner: owner}
	}
	type doc struct {
		name  string
		app   schema.App
		files []artifact.File
		gen   needs
		fails bool
	}
	good := schema.App{User: "app", Group: "app", WorkingDir: "/srv/app"}
	cases := []doc{
		{name: "good", app: good, files: []artifact.File{file("etc/a", "root:root", "a\n"), file("etc/b", "app:app", "\xff\x00 bytes")},
			gen: needs{pkgs: []string{"nginx"}, steps: []artifact.Step{{Phase: artifact.PhaseServices, Command: "systemctl restart nginx"}}}},
		{name: "path", app: good, files: []artifact.File{file("etc/"+bad, "root:root", "a\n")}, fails: true},
		{name: "owner", app: good, files: []artifact.File{file("etc/a", bad+":root", "a\n")}, fails: true},
		{name: "package", app: good, gen: needs{pkgs: []string{bad}}, fails: true},
		{name: "kernel step", app: good, gen: needs{steps: []artifact.Step{{Phase: artifact.PhaseKernel, Command: bad}}}, fails: true},
		{name: "service step", app: good, gen: needs{steps: []artifact.Step{{Phase: artifact.PhaseServices, Command: bad}}}, fails: true},
		{name: "user", app: schema.App{User: bad, Group: "app", WorkingDir: "/srv/app"}, fails: true},
		{name: "home", app: schema.App{User: "app", Group: "app", WorkingDir: "/srv/" + bad}, fails: true},
		{name: "group", app: schema.App{User: "app", Group: bad, WorkingDir: "/srv/app"}, fails: true},
		// The first bad string is the one reported, by both.
		{name: "two", app: schema.App{User: "u\xfe", Group: "app", WorkingDir: "/srv/app"}, gen: needs{pkgs: []string{bad}}, fails: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := &schema.Host{Name: "h", Roles: []string{"app"}}
			s := &schema.Stack{Name: "s", Source: "stacks/s.cue", Hosts: map[string]*schema.Host{"h": h}, App: c.app}
			gens := []artifact.Generator{c.gen}
			d, derr := cloudinit.Document(s, h, c.files, gens)
			cerr := cloudinit.Check(s, h, c.files, gens)
			if (derr != nil) != c.fails {
				t.Fatalf("Document: %v, want failure %v", derr, c.fails)
			}
			if derr == nil && (cerr != nil || !bytes.HasPrefix(d, []byte("#cloud-config\n"))) {
				t.Fatalf("Check: %v where Document wrote %d bytes", cerr, len(d))
			}
			if derr != nil && (cerr == nil || cerr.Error() != derr.Error()) {
				t.Fatalf("Check: %v, Document: %v", cerr, derr)
			}
		})
	}
}
