package site

import (
	"bytes"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestEncodeStackDataRoundTrips: the stack data encoded for every
// example stack decodes back as kept stack data, and it holds no search
// entries (those are in the stack's part of the index, kept with its
// pages).
func TestEncodeStackDataRoundTrips(t *testing.T) {
	root := testtool.ExampleRoot()
	res, err := compile.Compile([]string{filepath.Join(root, "stacks")}, root, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Prepare(res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	files := map[string][]byte{}
	if err := rb.RenderTo(func(p string, b []byte) error { mu.Lock(); defer mu.Unlock(); files[p] = b; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rb.g.data) != len(res.Rendered) {
		t.Fatalf("stack data of %d stacks, %d rendered", len(rb.g.data), len(res.Rendered))
	}
	for name, d := range rb.g.data {
		got, err := rb.EncodeStackData(name)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(got, []byte(`"search"`)) || len(got) > 64<<10 {
			t.Errorf("%s: stack data of %d bytes carries more than the card and the entry", name, len(got))
		}
		back, err := DecodeStackData(got)
		if err != nil {
			t.Errorf("%s: decoding back: %v", name, err)
		} else if !reflect.DeepEqual(back.d, d) {
			t.Errorf("%s: decoded back\n%+v\nwant\n%+v", name, back.d, d)
		}
		if _, ok := files[searchPartPath(name)]; !ok {
			t.Errorf("%s: no part of the search index at %s", name, searchPartPath(name))
		}
	}
	if _, err := rb.EncodeStackData("none"); err == nil {
		t.Error("stack data of a stack not rendered")
	}
}

// TestDecodeStackDataRefuses: what is not stack data as EncodeStackData
// encodes it is refused, a record that still carries search entries
// among it.
func TestDecodeStackDataRefuses(t *testing.T) {
	const card, entry, parts = `"card":{"Name":"s"}`, `"entry":{"k":"stack","t":"s","u":"stacks/s/index.html"}`, `"parts":["stacks/s/search-index.js"]`
	if _, err := DecodeStackData([]byte("{" + card + "," + entry + "," + parts + "}")); err != nil {
		t.Fatalf("stack data refused: %v", err)
	}
	for _, b := range []string{
		"{" + card + "," + entry + "," + parts + `,"search":[]}`,
		"{" + card + "," + entry + "," + parts + "}{}",
		"{" + card + "," + entry + "}",
		"{" + card + "," + entry + `,"parts":["stacks/t/search-index.js"]}`,
		"{" + card + "," + parts + "}",
		`{"card":{},` + entry + "," + parts + "}",
		"{" + card + "," + strings.Replace(entry, `"stack"`, `"host"`, 1) + "," + parts + "}",
		"{" + card + "," + entry,
		"",
	} {
		if _, err := DecodeStackData([]byte(b)); err == nil {
			t.Errorf("%s: decoded", b)
		}
	}
}
