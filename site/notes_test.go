package site_test

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/site"
)

// notesStack is a small valid stack whose notes try every way of
// getting markup or script into the page.
const notesStack = `name:   "web"
domain: "example.com"
tls: mode: "none"
notes: """
	# Web notes

	Plain **Markdown** works, and so does ` + "`code`" + `.

	<script>window.pwned = 1</script>

	<img src="x" onerror="window.pwned = 2">

	Inline <b onclick="window.pwned = 3">bold?</b> and a [link](javascript:window.pwned=4).

	` + "```sh\n\tsystemctl status web\n\t```" + `
	"""
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048, notes: "Host note <iframe src=\"https://example.net\"></iframe> <script>window.pwned = 5</script>"}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 2, memory_mb: 2048}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app"}
`

// TestNotesEscaped: users' Markdown renders, and raw HTML in it is shown
// as text, never as markup: no script, iframe, img or event handler
// reaches a page, and no javascript: link.
func TestNotesEscaped(t *testing.T) {
	res, opt := compileStack(t, notesStack)
	files, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	stack := string(files["stacks/web/index.html"])
	host := string(files["stacks/web/hosts/app1.html"])
	for _, want := range []string{
		"<h1>Web notes</h1>", "<strong>Markdown</strong>", "<code>code</code>",
		"&lt;script&gt;window.pwned = 1&lt;/script&gt;",
		"&lt;img src=&#34;x&#34; onerror=&#34;window.pwned = 2&#34;&gt;",
		"&lt;b onclick=&#34;window.pwned = 3&#34;&gt;",
		`class="chroma"`, // the fenced block is highlighted
	} {
		if !strings.Contains(stack, want) {
			t.Errorf("stack page lacks %q", want)
		}
	}
	if !strings.Contains(host, "&lt;iframe src=&#34;https://example.net&#34;&gt;&lt;/iframe&gt;") || !strings.Contains(host, "&lt;script&gt;window.pwned = 5&lt;/script&gt;") {
		t.Error("host page does not show its note's HTML as text")
	}
	for name, page := range map[string]string{"stack": stack, "host": host} {
		if n := strings.Count(page, "<script"); n != 1 {
			t.Errorf("%s page has %d <script> tags, want the 1 of the layout", name, n)
		}
		for _, bad := range []string{"<iframe", "<img", "onerror=\"", "onclick=\"", "javascript:"} {
			if strings.Contains(page, bad) {
				t.Errorf("%s page contains %q", name, bad)
			}
		}
	}
	problems, _ := siteProblems(files)
	for _, p := range problems {
		t.Error(p)
	}
}

// TestReservedName: a stack named "site" would write into out/site/.
func TestReservedName(t *testing.T) {
	// compile.Load refuses the name first (TestStackNames); the site
	// keeps its own guard for a result made otherwise.
	res, opt := compileStack(t, notesStack)
	res.Rendered[0].Stack.Name = "site"
	_, err := site.Render(res, opt)
	if err == nil || !strings.Contains(err.Error(), `stack name "site" is reserved for the runbook site (out/site/)`) {
		t.Fatalf("got %v", err)
	}
}

// TestSourceChanged: the site shows the stack file the build compiled,
// or fails.
func TestSourceChanged(t *testing.T) {
	res, _ := compileStack(t, notesStack)
	_, err := site.Render(res, site.Options{Source: func(string) ([]byte, error) { return []byte("changed"), nil }})
	if err == nil || !strings.Contains(err.Error(), "changed while the build ran") {
		t.Fatalf("got %v", err)
	}
}
