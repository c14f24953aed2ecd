package site_test

import (
	"html/template"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/schema"
	"github.com/hacompile/hacompile/site"
)

// TestReference: the reference page has a row for every field of
// #Stack (schema.SchemaFields, which a schema test checks against CUE's
// evaluator) with its type, default and doc comment, and the index
// links to it.
func TestReference(t *testing.T) {
	files := exampleSite(t)
	page := string(files[site.ReferencePage])
	if page == "" {
		t.Fatal("no reference page")
	}
	fields, _, err := schema.SchemaFields()
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Count(page, "<tr id=\"f-")
	if rows != len(fields) {
		t.Errorf("%d rows for %d fields", rows, len(fields))
	}
	// html/template's escaping of text.
	esc := func(s string) string { return strings.ReplaceAll(template.HTMLEscapeString(s), "+", "&#43;") }
	for _, f := range fields {
		if !strings.Contains(page, "<td><code>"+esc(f.Path)+"</code>") {
			t.Errorf("no row for %s", f.Path)
		}
		if f.Doc != "" && !strings.Contains(page, "<td>"+esc(f.Doc)+"</td></tr>") {
			t.Errorf("%s: doc missing", f.Path)
		}
	}
	for _, want := range []string{
		`<tr id="f-app.worker_class"><td><code>app.worker_class</code><br><small>when <code>runtime == &#34;python&#34;</code></small></td><td><code>&#34;sync&#34; | &#34;gthread&#34; | &#34;gevent&#34; | &#34;uvicorn&#34;</code></td><td><code>&#34;sync&#34;</code></td>`,
		`<tr id="f-balancer.health.interval"><td><code>balancer.health.interval</code></td><td><code><a href="#t-seconds">#Seconds</a></code></td><td><code>1 when <code>kind == &#34;haproxy&#34;</code>; 1 when <code>kind == &#34;nginx&#34;</code>; 10 when <code>kind == &#34;cloud&#34;</code></code></td>`,
		`<tr id="f-cache.engine">`,
		`<tr id="f-workers.beat.enabled">`,
		`<tr id="f-rate_limit.locations-.path"><td><code>rate_limit.locations[].path</code> <span class="badge">required</span>`,
		`<dt id="t-seconds"><code>#Seconds</code></dt><dd><code>int &amp; &gt;=1 &amp; &lt;=86400</code><br>Seconds, as whole numbers`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if !strings.Contains(string(files["index.html"]), `<a href="reference.html">stack file reference</a>`) {
		t.Error("the index does not link the reference")
	}
}
