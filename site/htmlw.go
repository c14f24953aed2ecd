package site

import (
	"html/template"
	"strconv"
	"strings"
)

// The host pages, one per host, are most of a large fleet's runbook. They
// and the layout around every page are written here in Go rather than
// executed as templates: html/template calls its escapers through
// reflection for every value, which on a 1,000-host fleet cost a quarter
// of the build. The escaping is html/template's own, so the bytes are
// the same as the templates wrote (TestHTMLWriterMatchesTemplates).

// htmlw builds a page.
type htmlw struct{ b []byte }

// raw writes trusted HTML.
func (w *htmlw) raw(s string) { w.b = append(w.b, s...) }

// text writes s escaped for an HTML text node or a quoted attribute
// value, as html/template escapes both.
func (w *htmlw) text(s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case 0:
			rep = "\uFFFD"
		case '"':
			rep = "&#34;"
		case '&':
			rep = "&amp;"
		case '\'':
			rep = "&#39;"
		case '+':
			rep = "&#43;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		default:
			continue
		}
		w.b = append(w.b, s[last:i]...)
		w.b = append(w.b, rep...)
		last = i + 1
	}
	w.b = append(w.b, s[last:]...)
}

// url writes a link target for an href attribute as html/template does:
// an unsafe scheme becomes #ZgotmplZ, bytes outside a URL's character
// set are percent-encoded, and the result is escaped as an attribute.
func (w *htmlw) url(s string) {
	if scheme, _, ok := strings.Cut(s, ":"); ok && !strings.Contains(scheme, "/") {
		switch strings.ToLower(scheme) {
		case "http", "https", "mailto":
		default:
			w.raw("#ZgotmplZ")
			return
		}
	}
	w.text(percent(s, "!#$&*+,/:;=?@[]-._~", true))
}

// frag writes an href's fragment (after '#') as html/template does: every
// byte but letters, digits and -._~ percent-encoded.
func (w *htmlw) frag(s string) { w.text(percent(s, "-._~", false)) }

// percent encodes every byte of s but ASCII letters, digits and keep,
// and, with escapes, a % that starts an escape (%2f) already.
func percent(s, keep string, escapes bool) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(keep, c) >= 0 ||
			escapes && c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// html is the fragment written.
func (w *htmlw) html() template.HTML { return template.HTML(w.b) }

// fileTable is the table of files at the top of a host page and of the
// stack files page.
func fileTable(files []fileView) template.HTML {
	var w htmlw
	writeFileTable(&w, files)
	return w.html()
}

func writeFileTable(w *htmlw, files []fileView) {
	w.raw(`<div class="table"><table class="files"><thead><tr><th scope="col">Path</th><th scope="col">Kind</th><th scope="col">Mode</th><th scope="col">Owner</th><th scope="col">Validate</th><th scope="col">Reload</th></tr></thead>` + "\n<tbody>")
	for _, f := range files {
		w.raw(`<tr><td><a href="#`)
		w.frag(f.ID)
		w.raw(`"><code>`)
		w.text(f.Path)
		w.raw(`</code></a></td><td>`)
		w.text(f.Kind)
		w.raw(`</td><td><code>`)
		w.text(f.Mode)
		w.raw(`</code></td><td><code>`)
		w.text(f.Owner)
		w.raw(`</code></td><td>`)
		codeOrDash(w, f.Validate)
		w.raw(`</td><td>`)
		codeOrDash(w, f.Reload)
		w.raw("</td></tr>\n")
	}
	w.raw(`</tbody></table></div>`)
}

func codeOrDash(w *htmlw, s string) {
	if s == "" {
		w.raw("—")
		return
	}
	w.raw("<code>")
	w.text(s)
	w.raw("</code>")
}

// listings is each file's section: metadata, then its listing or the
// link to the listing its identical copies share.
func listings(files []fileView) template.HTML {
	var w htmlw
	writeListings(&w, files)
	return w.html()
}

func writeListings(w *htmlw, files []fileView) {
	for _, f := range files {
		w.raw(`<section class="file" id="`)
		w.text(f.ID)
		w.raw("\">\n<h3><code>")
		w.text(f.Path)
		w.raw(`</code> <a class="self" href="#`)
		w.frag(f.ID)
		w.raw(`" aria-label="Link to this file">#</a></h3>` + "\n" + `<dl class="meta"><dt>sha256</dt><dd><code class="digest">`)
		w.text(f.SHA256)
		w.raw(`</code></dd><dt>mode</dt><dd><code>`)
		w.text(f.Mode)
		w.raw(`</code></dd><dt>owner</dt><dd><code>`)
		w.text(f.Owner)
		w.raw(`</code></dd><dt>size</dt><dd>`)
		w.raw(strconv.Itoa(f.Size))
		w.raw(` bytes</dd><dt>kind</dt><dd>`)
		w.text(f.Kind)
		w.raw(`</dd>`)
		if f.Validate != "" {
			w.raw(`<dt>validate</dt><dd><code>`)
			w.text(f.Validate)
			w.raw(`</code></dd>`)
		}
		if f.Reload != "" {
			w.raw(`<dt>reload</dt><dd><code>`)
			w.text(f.Reload)
			w.raw(`</code></dd>`)
		}
		w.raw(`<dt>from</dt><dd><a href="`)
		w.url(f.SourceHref)
		w.raw(`">`)
		w.text(f.SourceText)
		w.raw("</a></dd></dl>\n")
		if f.Same != nil {
			w.raw(`<p class="same">Identical on ` + strconv.Itoa(f.Same.Count) + ` hosts: the listing is on <a href="`)
			w.url(f.Same.Href)
			w.raw(`">one page for all of them</a>.</p>`)
		} else {
			w.raw(`<div class="listing" data-lexer="`)
			w.text(f.Lexer)
			w.raw(`">`)
			w.raw(string(f.Listing))
			w.raw(`</div>`)
		}
		w.raw("\n</section>\n")
	}
}

// sizeHint is about what a page listing files takes.
func sizeHint(files []fileView) int {
	n := 8192
	for _, f := range files {
		n += 1024 + len(f.Listing)
	}
	return n
}

// writeHostBody writes the main content of a host's page.
func writeHostBody(w *htmlw, d hostData) {
	w.raw("<h1>")
	w.text(d.Name)
	w.raw(` <span class="sub">in `)
	w.text(d.Stack)
	w.raw("</span></h1>\n" + `<dl class="facts">`)
	for _, f := range d.Facts {
		w.raw("<dt>")
		w.text(f.Label)
		w.raw("</dt><dd>")
		w.raw(string(f.Value))
		w.raw("</dd>\n")
	}
	for _, c := range d.CloudInit {
		w.raw(`<dt>Provisioning</dt><dd>cloud-init user data: <a href="#`)
		w.frag(c.ID)
		w.raw(`">`)
		w.text(c.Path)
		w.raw(`</a></dd>`)
	}
	w.raw("</dl>\n<p>")
	w.raw(string(d.Push))
	w.raw("</p>\n")
	if d.Notes != "" {
		w.raw(`<section class="notes" id="notes"><h2>Notes</h2>`)
		w.raw(string(d.Notes))
		w.raw(`</section>`)
	}
	w.raw("\n" + `<section id="files">` + "\n" + `<h2>Rendered files <a class="self" href="#files" aria-label="Link to this section">#</a></h2>` + "\n")
	writeFileTable(w, d.Files)
	w.raw("\n</section>\n")
	writeListings(w, d.Files)
	if len(d.CloudInit) > 0 {
		w.raw("\n<h2>Cloud-init user data</h2>\n<p>What the host runs when it first boots, shown as its packages and first-boot commands; the files it writes are those above. It is not pushed to the host.</p>\n")
		writeListings(w, d.CloudInit)
	}
	w.raw("\n")
}

// layout is a page: the site's frame around what body writes; size is
// about how many bytes the page takes.
func layout(p page, size int, body func(w *htmlw)) []byte {
	w := htmlw{b: make([]byte, 0, size+4096)}
	w.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<meta name=\"generator\" content=\"hacompile\">\n<title>")
	w.text(p.Title)
	w.raw(" · hacompile runbook</title>\n")
	for _, l := range []string{
		`<link rel="icon" href="%sassets/favicon.svg" type="image/svg+xml">`,
		`<link rel="stylesheet" href="%sassets/hacompile.css">`,
		`<link rel="stylesheet" href="%sassets/chroma.css">`,
		`<link rel="stylesheet" href="%sassets/print.css" media="print">`,
	} {
		before, after, _ := strings.Cut(l, "%s")
		w.raw(before)
		w.url(p.Root)
		w.raw(after + "\n")
	}
	w.raw("</head>\n<body data-root=\"")
	w.text(p.Root)
	w.raw("\">\n<a class=\"skip\" href=\"#main\">Skip to content</a>\n<header class=\"top\">\n<a class=\"brand\" href=\"")
	w.url(p.Root)
	w.raw("index.html\">hacompile runbook</a>")
	if len(p.Crumbs) > 0 {
		w.raw("\n<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><ol>")
		for _, c := range p.Crumbs {
			w.raw(`<li><a href="`)
			w.url(c.Href)
			w.raw(`">`)
			w.text(c.Text)
			w.raw(`</a></li>`)
		}
		w.raw("</ol></nav>")
	}
	w.raw("\n<div class=\"search\" role=\"search\">\n<label for=\"search\" class=\"visually-hidden\">Search the runbook</label>\n<input id=\"search\" type=\"search\" placeholder=\"Search stacks, hosts, files, settings (press /)\" autocomplete=\"off\" spellcheck=\"false\" aria-controls=\"search-results\">\n<ul id=\"search-results\" class=\"search-results\" hidden></ul>\n</div>\n</header>")
	if len(p.Tabs) > 0 {
		w.raw("\n<nav class=\"tabs\" aria-label=\"Stack pages\"><ul>")
		for _, t := range p.Tabs {
			w.raw(`<li><a href="`)
			w.url(t.Href)
			w.raw(`"`)
			if t.Current {
				w.raw(` aria-current="page"`)
			}
			w.raw(`>`)
			w.text(t.Text)
			w.raw(`</a></li>`)
		}
		w.raw("</ul></nav>")
	}
	w.raw("\n<main id=\"main\">\n")
	body(&w)
	w.raw("\n</main>\n<footer class=\"foot\"><p>")
	w.raw(string(p.Footer))
	w.raw("</p></footer>\n<script src=\"")
	w.url(p.Root)
	w.raw("assets/hacompile.js\"></script>\n</body>\n</html>\n")
	return w.b
}

// hostRows is the overview's host inventory, a row per host, as its
// template wrote them.
func hostRows(rows []hostRow) template.HTML {
	w := htmlw{b: make([]byte, 0, 512*len(rows))}
	for _, r := range rows {
		w.raw(`<tr><td><a href="`)
		w.url(r.Href)
		w.raw(`">`)
		w.text(r.Name)
		w.raw(`</a>`)
		if r.Notes {
			w.raw(` <span class="badge">notes</span>`)
		}
		w.raw(`</td><td>`)
		w.text(strings.Join(r.Roles, ", "))
		w.raw(`</td><td><code>`)
		w.text(r.Address)
		w.raw(`</code></td><td>`)
		w.text(r.Size)
		w.raw(`</td><td class="num">`)
		w.raw(strconv.Itoa(r.Cores))
		w.raw(`</td><td class="num">`)
		w.raw(strconv.Itoa(r.MemoryMB))
		w.raw(` MB</td><td><code>`)
		w.text(r.SSH)
		w.raw(`</code></td><td class="num">`)
		w.raw(strconv.Itoa(r.Files))
		w.raw("</td></tr>\n")
	}
	return w.html()
}

// capRows is the overview's capacity table, a row per app host, as its
// template wrote them.
func capRows(rows []capRow) template.HTML {
	w := htmlw{b: make([]byte, 0, 256*len(rows))}
	for _, r := range rows {
		w.raw(`<tr><td><a href="`)
		w.url(r.Href)
		w.raw(`">`)
		w.text(r.Host)
		w.raw(`</a></td><td class="num">`)
		w.raw(strconv.Itoa(r.Cores))
		w.raw(`</td><td class="num">`)
		w.raw(strconv.Itoa(r.Workers))
		w.raw(`</td><td>`)
		w.text(r.PerWorker)
		w.raw(`</td><td class="num">`)
		w.raw(strconv.Itoa(r.Concurrency))
		w.raw("</td></tr>\n")
	}
	return w.html()
}
