package cloudinit_test

import (
	"bytes"
	"testing"

	"github.com/hacompile/hacompile/generators"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
)

// Assemble writes the contents many hosts share (nginx.conf, units,
// error pages) once for all documents: each document is still the one
// Document writes for its host alone.
func TestAssembleSharedContentsAsDocument(t *testing.T) {
	s, sorted := fleetFiles(t)
	gens := generators.All()
	byHost := map[string][]artifact.File{}
	for _, f := range sorted {
		byHost[f.Host] = append(byHost[f.Host], f)
	}
	docs, err := cloudinit.Gen{}.Assemble(s, artifact.Options{}, sorted, gens)
	if err != nil {
		t.Fatal(err)
	}
	shared := 0
	for i, n := range s.HostNames() {
		want, err := cloudinit.Document(s, s.Hosts[n], byHost[n], gens)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(docs[i].Content, want) {
			t.Errorf("%s: Assemble's document differs from Document's", n)
		}
		for _, f := range byHost[n] {
			for _, o := range byHost[s.HostNames()[0]] {
				if len(f.Content) > 0 && len(o.Content) > 0 && &f.Content[0] == &o.Content[0] && n != s.HostNames()[0] {
					shared++
				}
			}
		}
	}
	if shared == 0 {
		t.Fatal("no host shares a content with the first: the test proves nothing")
	}
}
