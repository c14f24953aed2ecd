package cloudinit_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/schema"
)

// newKind is an artifact kind cloud-init has never heard of, as a new
// generator package would write it: its packages and first-boot steps
// reach the document through the capability interfaces alone.
type newKind struct{}

func (newKind) Kind() string { return "newkind" }
func (newKind) Generate(*schema.Stack, artifact.Options) ([]artifact.File, error) {
	return nil, nil
}
func (newKind) Packages(_ *schema.Stack, _ *schema.Host, files []artifact.File) []string {
	return artifact.IfAny(files, "keepalived")
}
func (newKind) FirstBoot(_ *schema.Stack, _ *schema.Host, files []artifact.File) []artifact.Step {
	if len(files) == 0 {
		return nil
	}
	return []artifact.Step{
		{Phase: artifact.PhaseServices, Command: files[0].Validate.String()},
		{Phase: artifact.PhaseKernel, Command: "modprobe ip_vs"},
		{Phase: artifact.PhaseBeforeUnits, Command: "echo before units"},
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	s := &schema.Stack{Name: "s", Source: "stacks/s.cue", Hosts: map[string]*schema.Host{
		"lb": {Name: "lb", Roles: []string{"lb"}}, "db": {Name: "db", Roles: []string{"db"}}}}
	files := []artifact.File{
		{Host: "lb", Path: "etc/keepalived/keepalived.conf", Content: []byte("x\n"), Mode: 0o644, Owner: "root:root", Kind: "newkind", Validate: artifact.Run("keepalived", "-t")},
		{Host: "lb", Path: "etc/systemd/system/keepalived.service", Content: []byte("[Unit]\n"), Mode: 0o644, Owner: "root:root", Kind: "other"},
	}
	gens := []artifact.Generator{newKind{}}
	var cc struct {
		Packages   []string `yaml:"packages"`
		Runcmd     []string `yaml:"runcmd"`
		WriteFiles []struct {
			Path  string `yaml:"path"`
			Defer bool   `yaml:"defer"`
		} `yaml:"write_files"`
	}
	doc, err := cloudinit.Document(s, s.Hosts["lb"], files, gens)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(doc, &cc); err != nil {
		t.Fatal(err)
	}
	want := []string{"set -e", "modprobe ip_vs", "systemctl daemon-reload", "echo before units", "systemctl enable keepalived.service && systemctl start keepalived.service || echo 'hacompile: keepalived.service did not start: deploy the code and provision its secrets (see the runbook), then run: systemctl restart keepalived.service' >&2", "keepalived -t"}
	if strings.Join(cc.Packages, " ") != "keepalived" || strings.Join(cc.Runcmd, "\n") != strings.Join(want, "\n") {
		t.Errorf("packages %q, runcmd:\n%s\nwant:\n%s", cc.Packages, strings.Join(cc.Runcmd, "\n"), strings.Join(want, "\n"))
	}
	// Files under the package's directory wait for the package; others
	// do not.
	if len(cc.WriteFiles) != 2 || !cc.WriteFiles[0].Defer || cc.WriteFiles[1].Defer {
		t.Errorf("write_files: %+v, want only /etc/keepalived/keepalived.conf deferred", cc.WriteFiles)
	}
	// A host without the kind's files gets neither.
	if pkgs := cloudinit.Packages(s, s.Hosts["db"], nil, gens); len(pkgs) != 0 {
		t.Errorf("db packages: %q", pkgs)
	}
}

func (newKind) PackageDirs() []string { return []string{"etc/keepalived/"} }
