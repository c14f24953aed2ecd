package cloudinit_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/par"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

type cloudConfig struct {
	Packages   []string    `yaml:"packages"`
	Users      []yaml.Node `yaml:"users"`
	WriteFiles []struct {
		Path        string `yaml:"path"`
		Owner       string `yaml:"owner"`
		Permissions string `yaml:"permissions"`
		Encoding    string `yaml:"encoding"`
		Content     string `yaml:"content"`
		Defer       bool   `yaml:"defer"`
	} `yaml:"write_files"`
	RunCmd []string `yaml:"runcmd"`
}

func renderAll(t *testing.T) []*compile.Rendered {
	t.Helper()
	rs, err := compile.RenderAll(testtool.LoadStacks(t), artifact.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestWriteFilesExact decodes every host's cloud-config and requires its
// write_files to be the host's file set: same paths, bytes, modes, owners.
func TestWriteFilesExact(t *testing.T) {
	t.Parallel()
	for _, r := range renderAll(t) {
		docs := map[string][]byte{}
		hostFiles := map[string][]artifact.File{}
		for _, f := range r.Files {
			if f.Host == "" && strings.HasPrefix(f.Path, "cloud-init/") {
				docs[strings.TrimSuffix(strings.TrimPrefix(f.Path, "cloud-init/"), ".yaml")] = f.Content
			} else if f.Host != "" {
				hostFiles[f.Host] = append(hostFiles[f.Host], f)
			}
		}
		if len(docs) != len(r.Stack.Hosts) {
			t.Fatalf("%s: %d cloud-init documents for %d hosts", r.Stack.Name, len(docs), len(r.Stack.Hosts))
		}
		for host, doc := range docs {
			if !bytes.HasPrefix(doc, []byte("#cloud-config\n")) {
				t.Errorf("%s/%s: does not start with #cloud-config", r.Stack.Name, host)
			}
			var cc cloudConfig
			if err := yaml.Unmarshal(doc, &cc); err != nil {
				t.Fatalf("%s/%s: %v", r.Stack.Name, host, err)
			}
			want := hostFiles[host]
			if len(cc.WriteFiles) != len(want) || len(want) == 0 {
				t.Fatalf("%s/%s: %d write_files, host has %d files", r.Stack.Name, host, len(cc.WriteFiles), len(want))
			}
			for i, wf := range cc.WriteFiles {
				f := want[i]
				content := []byte(wf.Content)
				if wf.Encoding == "b64" {
					var err error
					if content, err = base64.StdEncoding.DecodeString(wf.Content); err != nil {
						t.Fatal(err)
					}
				}
				if wf.Path != "/"+f.Path || !bytes.Equal(content, f.Content) ||
					wf.Permissions != fmt.Sprintf("%#04o", f.Mode.Perm()) || wf.Owner != f.Owner {
					t.Errorf("%s/%s: write_files[%d] = %s %s %s (%d bytes), want /%s %#04o %s (%d bytes)",
						r.Stack.Name, host, i, wf.Path, wf.Permissions, wf.Owner, len(content), f.Path, f.Mode.Perm(), f.Owner, len(f.Content))
				}
			}
			if cc.RunCmd[0] != "set -e" {
				t.Errorf("%s/%s: runcmd does not stop on failure: %q", r.Stack.Name, host, cc.RunCmd)
			}
		}
	}
}

// TestSchema runs cloud-init's own schema validation on every document.
func TestSchema(t *testing.T) {
	t.Parallel()
	ci := testtool.Require(t, "cloud-init", "cloud-init")
	dir := t.TempDir()
	var docs []string
	for _, r := range renderAll(t) {
		for _, f := range r.Files {
			if f.Host != "" || !strings.HasPrefix(f.Path, "cloud-init/") {
				continue
			}
			p := filepath.Join(dir, r.Stack.Name+"-"+filepath.Base(f.Path))
			if err := os.WriteFile(p, f.Content, 0o644); err != nil {
				t.Fatal(err)
			}
			docs = append(docs, p)
		}
	}
	if len(docs) == 0 {
		t.Fatal("no cloud-init documents checked")
	}
	// One cloud-init process per document, as many at once as there are
	// cores: each is mostly Python starting up.
	par.Each(len(docs), func(i int) {
		out, err := exec.Command(ci, "schema", "--config-file", docs[i]).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Valid cloud-config") {
			t.Errorf("%s: cloud-init schema: %v\n%s", filepath.Base(docs[i]), err, out)
		}
	})
}

// TestLiteralFallback feeds contents that YAML's literal style cannot
// carry exactly and requires them to come back byte for byte.
func TestLiteralFallback(t *testing.T) {
	s := &schema.Stack{Name: "s", Source: "stacks/s.cue", Hosts: map[string]*schema.Host{"h": {Name: "h", Roles: []string{"lb"}}}}
	contents := []string{"no final newline", "trailing spaces   \n", "two newlines\n\n", "  leading spaces\n", "crlf\r\n", "tab\tinside\n", "\x00binary\xff", "", "#!/bin/sh\necho ok\n"}
	var files []artifact.File
	for i, c := range contents {
		files = append(files, artifact.File{Host: "h", Path: fmt.Sprintf("etc/f%d", i), Content: []byte(c), Mode: 0o640, Owner: "root:adm"})
	}
	doc, err := cloudinit.Document(s, s.Hosts["h"], files, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cc cloudConfig
	if err := yaml.Unmarshal(doc, &cc); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	for i, wf := range cc.WriteFiles {
		got := []byte(wf.Content)
		if wf.Encoding == "b64" {
			got, _ = base64.StdEncoding.DecodeString(wf.Content)
		}
		if string(got) != contents[i] || wf.Permissions != "0640" || !wf.Defer {
			t.Errorf("file %d: got %q perm %s defer %v, want %q 0640 deferred (owner not root)", i, got, wf.Permissions, wf.Defer, contents[i])
		}
	}
}
