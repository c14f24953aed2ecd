package site

import (
	"bytes"
	"html/template"
	"strings"
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

// TestOverviewRowsMatchTemplates: the overview's host and capacity rows,
// written in Go, are byte for byte what its template wrote, on every
// seed string in every field and with and without notes.
func TestOverviewRowsMatchTemplates(t *testing.T) {
	hosts := template.Must(template.New("h").Funcs(template.FuncMap{"join": strings.Join}).Parse(`{{range .}}<tr><td><a href="{{.Href}}">{{.Name}}</a>{{if .Notes}} <span class="badge">notes</span>{{end}}</td><td>{{join .Roles ", "}}</td><td><code>{{.Address}}</code></td><td>{{.Size}}</td><td class="num">{{.Cores}}</td><td class="num">{{.MemoryMB}} MB</td><td><code>{{.SSH}}</code></td><td class="num">{{.Files}}</td></tr>
{{end}}`))
	caps := template.Must(template.New("c").Parse(`{{range .}}<tr><td><a href="{{.Href}}">{{.Host}}</a></td><td class="num">{{.Cores}}</td><td class="num">{{.Workers}}</td><td>{{.PerWorker}}</td><td class="num">{{.Concurrency}}</td></tr>
{{end}}`))
	var hrs []hostRow
	var crs []capRow
	for i, s := range htmlwSeeds {
		hrs = append(hrs, hostRow{Name: s, Href: s, Address: s, Size: s, SSH: s, Roles: []string{s, "app"}, Cores: i, MemoryMB: -i, Files: i * 7, Notes: i%2 == 0})
		crs = append(crs, capRow{Host: s, Href: s, Workers: i, PerWorker: s, Concurrency: i * 3, Cores: -i})
	}
	for _, tc := range []struct {
		name string
		tmpl *template.Template
		data any
		got  template.HTML
	}{
		{"hosts", hosts, hrs, hostRows(hrs)},
		{"capacity", caps, crs, capRows(crs)},
	} {
		var b bytes.Buffer
		if err := tc.tmpl.Execute(&b, tc.data); err != nil {
			t.Fatal(err)
		}
		if string(tc.got) != b.String() {
			t.Errorf("%s rows:\n got %s\nwant %s", tc.name, tc.got, b.String())
		}
	}
}
