package site

import (
	"bytes"
	"html/template"
	"testing"
)

// TestHTMLWriterMatchesTemplates: the Go-written pages escape text,
// attributes and links exactly as html/template did, so moving the host
// pages and the layout out of templates changed no byte.
func TestHTMLWriterMatchesTemplates(t *testing.T) {
	for _, s := range htmlwSeeds {
		if got, want := htmlwAll(s), templateAll(t, s); got != want {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	}
}

// FuzzHTMLWriter: on any string, the writer escapes as html/template.
func FuzzHTMLWriter(f *testing.F) {
	for _, s := range htmlwSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := htmlwAll(s), templateAll(t, s); got != want {
			t.Fatalf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}

var htmlwSeeds = []string{
	"", "plain", `<script>alert("x")</script>`, "a+b & c's", "nul\x00byte", "ünïcode ✓",
	"../same/etc-nginx-nginx-conf-4f94581cc159.html", "../source.html#L18", "a b.html#x y",
	"javascript:alert(1)", "JavaScript:x", "https://example.com/a?b=c&d", "mailto:ops@example.com",
	"data:text/html,x", "file-etc-x", "100%", "%zz", "[::1]:80", " javascript:x", "\tjava\nscript:x",
}

var htmlwTemplate = template.Must(template.New("t").Parse(`<p title="{{.}}">{{.}}</p><a href="{{.}}">x</a><a href="../p.html#{{.}}">y</a>`))

// templateAll is what html/template writes for s in text, an attribute,
// a link and a fragment; htmlwAll the same with the writer.
func templateAll(t testing.TB, s string) string {
	var b bytes.Buffer
	if err := htmlwTemplate.Execute(&b, s); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func htmlwAll(s string) string {
	var w htmlw
	w.raw(`<p title="`)
	w.text(s)
	w.raw(`">`)
	w.text(s)
	w.raw(`</p><a href="`)
	w.url(s)
	w.raw(`">x</a><a href="../p.html#`)
	w.frag(s)
	w.raw(`">y</a>`)
	return string(w.b)
}
