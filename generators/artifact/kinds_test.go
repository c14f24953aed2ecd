package artifact

import (
	"reflect"
	"testing"

	"github.com/hacompile/hacompile/schema"
)

type kindGen string

func (k kindGen) Kind() string                                  { return string(k) }
func (kindGen) Generate(*schema.Stack, Options) ([]File, error) { return nil, nil }

// GroupByKind groups a host's files as OfKind does, generator by
// generator, whatever the order of files and kinds.
func TestGroupByKindIsOfKind(t *testing.T) {
	gens := []Generator{kindGen("a"), kindGen("b"), kindGen("c"), kindGen("a"), kindGen("d")}
	files := []File{{Kind: "b", Path: "1"}, {Kind: "a", Path: "2"}, {Kind: "x", Path: "3"}, {Kind: "b", Path: "4"}, {Kind: "a", Path: "5"}, {Kind: "d", Path: "6"}}
	for _, fs := range [][]File{nil, files, files[:1], files[2:3]} {
		got := GroupByKind(gens, fs)
		for i, g := range gens {
			if want := OfKind(fs, g.Kind()); !reflect.DeepEqual(got[i], want) {
				t.Errorf("files %v, generator %d (%s): %v, want %v", fs, i, g.Kind(), got[i], want)
			}
		}
		// Appending to one kind's files must not write over another's.
		if len(got[0]) > 0 {
			_ = append(got[0], File{Kind: "z"})
			if want := OfKind(fs, "b"); !reflect.DeepEqual(got[1], want) {
				t.Errorf("append to a's files changed b's: %v", got[1])
			}
		}
	}
}
