package site

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestWriteStackDataIsMarshal: the stack data written a few entries at
// a time is json.Marshal's bytes of it, for every example stack, for
// entries with characters JSON escapes, and for a stack with no search
// entries; and it decodes back as kept stack data.
func TestWriteStackDataIsMarshal(t *testing.T) {
	root := testtool.ExampleRoot()
	res, err := compile.Compile([]string{filepath.Join(root, "stacks")}, root, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Prepare(res, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rb.RenderTo(func(string, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rb.g.data) != len(res.Rendered) {
		t.Fatalf("stack data of %d stacks, %d rendered", len(rb.g.data), len(res.Rendered))
	}
	odd := searchEntry{Kind: "file", Title: `a "quoted" <b>&amp;</b>`, Text: "tab\there \u2028 é", URL: `x\y`}
	for name, d := range rb.g.data {
		// Enough entries to be written in several parts.
		for len(d.Search) < 4000 {
			d.Search = append(d.Search, d.Search...)
		}
		d.Search = append(d.Search, odd)
		rb.g.data[name] = d
	}
	rb.g.data["empty"] = stackData{Card: indexStack{Name: "empty"}, Entry: searchEntry{Kind: "stack", Title: "empty", URL: "stacks/empty/index.html"}}
	for name, d := range rb.g.data {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		if err := rb.WriteStackData(&got, name); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s: written\n%.300s\nwant\n%.300s", name, got.Bytes(), want)
		}
		if back, err := DecodeStackData(got.Bytes()); err != nil || len(back.d.Search) != len(d.Search) {
			t.Errorf("%s: decoding back: %v", name, err)
		}
	}
	if rb.WriteStackData(&bytes.Buffer{}, "none") == nil || rb.HasStackData("none") {
		t.Error("stack data of a stack not rendered")
	}
}
