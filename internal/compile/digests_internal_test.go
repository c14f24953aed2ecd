package compile

import (
	"crypto/sha256"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Digests finds a file by host and path whether or not r.Files is in
// that order, and only when the size matches.
func TestDigestsOfAnyOrder(t *testing.T) {
	files := []artifact.File{
		{Host: "b", Path: "etc/x", Content: []byte("bx")},
		{Host: "", Path: "cloud-init/b.yaml", Content: []byte("cb")},
		{Host: "a", Path: "etc/y", Content: []byte("ayy")},
		{Host: "a", Path: "etc/x", Content: []byte("ax")},
	}
	for _, sorted := range []bool{false, true} {
		fs := append([]artifact.File(nil), files...)
		if sorted {
			fs = []artifact.File{files[1], files[3], files[2], files[0]}
		}
		d := DigestsOf(&Rendered{Stack: &schema.Stack{Name: "s"}, Files: fs})
		for _, f := range files {
			sum, ok := d.Of(f)
			if !ok || sum != sha256.Sum256(f.Content) {
				t.Errorf("sorted %v: Of(%s %s) = %x, %v", sorted, f.Host, f.Path, sum, ok)
			}
			if i, ok := d.Index(f); !ok || fs[i].Host != f.Host || fs[i].Path != f.Path {
				t.Errorf("sorted %v: Index(%s %s) = %d, %v", sorted, f.Host, f.Path, i, ok)
			}
		}
		for _, f := range []artifact.File{{Host: "a", Path: "etc/z"}, {Host: "c", Path: "etc/x"}, {Host: "b", Path: "etc/x", Content: []byte("longer")}} {
			if _, ok := d.Of(f); ok {
				t.Errorf("sorted %v: Of(%s %s, %d bytes) found a digest", sorted, f.Host, f.Path, len(f.Content))
			}
		}
	}
}
