package cloudinit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// FuzzPlainLines proves the literal blocks sound: whatever plainLines
// accepts, written into a document, a YAML parser reads back exactly; and
// what it refuses still comes back exactly, through base64.
func FuzzPlainLines(f *testing.F) {
	for _, s := range []string{"a\n", "server {\n    listen 80;\n}\n", "x\n\n\ty\n", "#!/bin/sh\nset -eu\n", "key: value # c\n", "---\n...\n", "- a\n  - b\n", "\"q\" 'q'\n", "\n0\n", "no newline", "trailing \n"} {
		f.Add([]byte(s))
	}
	s := &schema.Stack{Name: "s", Source: "stacks/s.cue", Hosts: map[string]*schema.Host{"h": {Name: "h", Roles: []string{"lb"}}}}
	f.Fuzz(func(t *testing.T, b []byte) {
		doc, err := Document(s, s.Hosts["h"], []artifact.File{{Host: "h", Path: "etc/f", Content: b, Mode: 0o644, Owner: "root:root"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var cc struct {
			WriteFiles []struct {
				Encoding, Content string
			} `yaml:"write_files"`
		}
		if err := yaml.Unmarshal(doc, &cc); err != nil {
			t.Fatalf("document does not parse: %v\n%s", err, doc)
		}
		if len(cc.WriteFiles) != 1 {
			t.Fatalf("%d write_files", len(cc.WriteFiles))
		}
		got := cc.WriteFiles[0]
		if plainLines(b) != (got.Encoding == "") {
			t.Fatalf("plainLines %v but encoding %q", plainLines(b), got.Encoding)
		}
		if got.Encoding == "" && got.Content != string(b) {
			t.Fatalf("literal block gives %q, want %q", got.Content, b)
		}
	})
}

// TestLiteralBlocksCloudInit reads literal blocks back with cloud-init's
// own YAML loader (Debian's python3 and cloud-init package): shell
// scripts with tab-indented lines stay literal blocks and come back
// exactly, and what plainLines refuses is base64.
func TestLiteralBlocksCloudInit(t *testing.T) {
	py := testtool.Require(t, "/usr/bin/python3", "python3")
	if err := exec.Command(py, "-c", "import cloudinit.util").Run(); err != nil {
		testtool.Missing(t, "cloud-init's Python package not found; install it with: apt-get install -y cloud-init")
	}
	contents := []string{
		"#!/bin/sh\nif [ -s x ]; then\n\texit 0\nfi\n",
		"a\n\t\tb\n  \tc\n\t  d\n",
		"x\n\n\ty\n",
		"\tfirst line tab\n",
		" first line space\n",
		"trailing tab\t\n",
		"in\x01valid\n",
	}
	s := &schema.Stack{Name: "s", Source: "stacks/s.cue", Hosts: map[string]*schema.Host{"h": {Name: "h", Roles: []string{"lb"}}}}
	var files []artifact.File
	for i, c := range contents {
		files = append(files, artifact.File{Host: "h", Path: fmt.Sprintf("etc/f%d", i), Content: []byte(c), Mode: 0o644, Owner: "root:root"})
	}
	doc, err := Document(s, s.Hosts["h"], files, nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", `import sys, json, base64
from cloudinit import util
d = util.load_yaml(sys.stdin.read())
print(json.dumps([[f["path"], f.get("encoding", ""), base64.b64decode(f["content"]).decode() if f.get("encoding") else f["content"]] for f in d["write_files"]]))`)
	cmd.Stdin = bytes.NewReader(doc)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cloud-init's loader: %v\n%s\n%s", err, out, doc)
	}
	var got [][3]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(contents) {
		t.Fatalf("%d files back, want %d", len(got), len(contents))
	}
	for i, g := range got {
		if g[0] != "/"+files[i].Path || g[2] != contents[i] {
			t.Errorf("%s: got %q back, want %q", files[i].Path, g[2], contents[i])
		}
		literal := g[1] == ""
		if want := i < 3; literal != want {
			t.Errorf("%q: literal block %v, want %v", contents[i], literal, want)
		}
	}
}
