package site

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
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
		back, err := DecodeStackData(got.Bytes())
		if err != nil {
			t.Errorf("%s: decoding back: %v", name, err)
			continue
		}
		// Read back without the decoder's reflection, as the decoder
		// reads it.
		var want2 stackData
		if err := json.Unmarshal(got.Bytes(), &want2); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back.d, want2) {
			t.Errorf("%s: decoded back differs from json.Unmarshal's", name)
		}
	}
	if rb.WriteStackData(&bytes.Buffer{}, "none") == nil || rb.HasStackData("none") {
		t.Error("stack data of a stack not rendered")
	}
}

// TestDecodeStackDataIsTheDecoders: the search entries read without
// encoding/json are what it reads, for strings of every kind, and what
// is not as WriteStackData writes it is the decoder's to read or refuse:
// DecodeStackData takes what the decoder takes, and refuses what it
// refuses.
func TestDecodeStackDataIsTheDecoders(t *testing.T) {
	head := `{"card":{"Name":"s"},"entry":{"k":"stack","t":"s","u":"stacks/s/index.html"},"search":`
	for _, search := range []string{
		`null`,
		`[]`,
		`[{"k":"file","t":"a","u":"b"}]`,
		`[{"k":"file","t":"a","x":"c","u":"b"},{"k":"page","t":"x\"y","u":"\u003cb\u003e"}]`,
		`[{"k":"file","t":"é \u2028 \t","u":"b"}]`,
		`[{"k":"file","t":"a","x":"","u":"b"}]`,                     // an empty x, which appendEntryJSON never writes
		`[{"k":"file","u":"b","t":"a"}]`,                            // another order
		`[{"k":"file","t":"a","u":"b","z":"c"}]`,                    // an unknown field
		`[{"k":"file","t":"a","u":"b"} ,{"k":"f","t":"a","u":"b"}]`, // a space
		`[{"k":"file","t":"a` + "\t" + `b","u":"b"}]`,               // an escape
		`[{"k":"file","t":"a` + "	" + `b","u":"b"}]`,                // a raw tab: not JSON
		`[{"k":"file","t":"a","u":"b"}`,                             // unclosed
		`[{"k":"file","t":"\ud800","u":"b"}]`,                       // a lone surrogate
		"[{\"k\":\"file\",\"t\":\"\xff\",\"u\":\"b\"}]",             // not UTF-8
		`[{"k":1,"t":"a","u":"b"}]`,
	} {
		b := []byte(head + search + "}")
		var want stackData
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		werr := dec.Decode(&want)
		got, err := DecodeStackData(b)
		switch {
		case (werr != nil) != (err != nil):
			t.Errorf("%s: DecodeStackData: %v, the decoder: %v", search, err, werr)
		case err == nil && !reflect.DeepEqual(got.d, want):
			t.Errorf("%s: DecodeStackData read %+v, the decoder %+v", search, got.d.Search, want.Search)
		}
	}
}
