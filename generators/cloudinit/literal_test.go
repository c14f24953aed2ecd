package cloudinit

import (
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/artifact"
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
