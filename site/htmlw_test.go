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
	tmpl := template.Must(template.New("t").Parse(`<p title="{{.}}">{{.}}</p><a href="{{.}}">x</a><a href="../p.html#{{.}}">y</a>`))
	for _, s := range []string{
		"", "plain", `<script>alert("x")</script>`, "a+b & c's", "nul\x00byte", "ünïcode ✓",
		"../same/etc-nginx-nginx-conf-4f94581cc159.html", "../source.html#L18", "a b.html#x y",
		"javascript:alert(1)", "JavaScript:x", "https://example.com/a?b=c&d", "mailto:ops@example.com",
		"data:text/html,x", "file-etc-x", "100%", "%zz", "[::1]:80",
	} {
		var want bytes.Buffer
		if err := tmpl.Execute(&want, s); err != nil {
			t.Fatal(err)
		}
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
		if string(w.b) != want.String() {
			t.Errorf("%q:\n got %s\nwant %s", s, w.b, want.String())
		}
	}
}
