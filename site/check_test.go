package site_test

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"net/url"
	"path"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// A Go checker for what the site promises: well-formed HTML (every
// element closed in order, unique ids, no block inside a paragraph, a
// language and one title), relative links only, and no broken link:
// every relative href/src names a generated file, every #fragment an id
// of the page it points into. The search index's links too.

var voidElements = map[string]bool{
	"area": true, "base": true, "br": true, "col": true, "embed": true, "hr": true, "img": true,
	"input": true, "link": true, "meta": true, "source": true, "track": true, "wbr": true,
}

// blockInP are elements that end a paragraph implicitly: inside a <p>
// they mean the author's markup is not what the browser builds.
var blockInP = map[string]bool{
	"div": true, "pre": true, "table": true, "ul": true, "ol": true, "dl": true, "section": true, "p": true,
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true, "figure": true, "details": true,
	"header": true, "footer": true, "nav": true, "main": true, "blockquote": true, "form": true,
}

type pageInfo struct {
	ids   map[string]bool
	links []string // href and src values
}

// checkHTML parses one page and returns its ids and links, reporting
// every well-formedness problem.
func checkHTML(name string, b []byte) (pageInfo, []string) {
	info := pageInfo{ids: map[string]bool{}}
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !bytes.HasPrefix(b, []byte("<!DOCTYPE html>\n")) {
		fail("does not start with <!DOCTYPE html>")
	}
	z := html.NewTokenizer(bytes.NewReader(b))
	var stack []string
	titles, charset, lang := 0, false, false
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			if z.Err() != io.EOF {
				fail("tokenizer: %v", z.Err())
			}
			break
		}
		tok := z.Token()
		inSVG := slices.Contains(stack, "svg")
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			seen := map[string]bool{}
			for _, a := range tok.Attr {
				if seen[a.Key] {
					fail("<%s> repeats attribute %s", tok.Data, a.Key)
				}
				seen[a.Key] = true
				switch a.Key {
				case "id":
					if info.ids[a.Val] {
						fail("duplicate id %q", a.Val)
					}
					info.ids[a.Val] = true
				case "href", "src":
					info.links = append(info.links, a.Val)
				case "lang":
					lang = lang || tok.Data == "html"
				case "charset":
					charset = true
				}
				if strings.HasPrefix(a.Key, "on") {
					fail("<%s> has an event handler attribute %s", tok.Data, a.Key)
				}
			}
			if tok.Data == "title" && !inSVG {
				titles++
			}
			if tok.Data == "img" && !seen["alt"] {
				fail("<img> without alt")
			}
			if blockInP[tok.Data] && slices.Contains(stack, "p") && !inSVG {
				fail("<%s> inside <p>", tok.Data)
			}
			if tok.Data == "a" && slices.Contains(stack, "a") {
				fail("<a> inside <a>")
			}
			if tt == html.SelfClosingTagToken {
				if !inSVG && !voidElements[tok.Data] && tok.Data != "svg" {
					fail("<%s/> is not a void element", tok.Data)
				}
				continue
			}
			if !voidElements[tok.Data] || inSVG {
				stack = append(stack, tok.Data)
			}
		case html.EndTagToken:
			if voidElements[tok.Data] && !inSVG {
				fail("</%s> closes a void element", tok.Data)
				continue
			}
			if len(stack) == 0 || stack[len(stack)-1] != tok.Data {
				fail("</%s> does not close the open element (open: %s)", tok.Data, strings.Join(stack, " > "))
				if i := slices.Index(stack, tok.Data); i >= 0 {
					stack = stack[:i]
				}
				continue
			}
			stack = stack[:len(stack)-1]
		}
	}
	if len(stack) > 0 {
		fail("elements left open: %s", strings.Join(stack, " > "))
	}
	if titles != 1 {
		fail("%d <title> elements", titles)
	}
	if !charset || !lang {
		fail("missing <meta charset> or <html lang>")
	}
	return info, errs
}

// siteProblems checks every page and link of a rendered site.
func siteProblems(files map[string][]byte) (problems []string, checked int) {
	errorf := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	pages := map[string]pageInfo{}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if !strings.HasSuffix(p, ".html") {
			continue
		}
		info, errs := checkHTML(p, files[p])
		for _, e := range errs {
			errorf("%s: %s", p, e)
		}
		pages[p] = info
	}
	if len(pages) == 0 {
		errorf("no pages")
	}
	resolve := func(from, link string) error {
		u, err := url.Parse(link)
		switch {
		case err != nil:
			return err
		case u.Scheme == "http" || u.Scheme == "https" || u.Scheme == "mailto":
			return nil // an external link the reader may follow; nothing loads it
		case u.Scheme != "" || u.Host != "" || strings.HasPrefix(u.Path, "/"):
			return fmt.Errorf("not a relative link")
		}
		target := from
		if u.Path != "" {
			target = path.Join(path.Dir(from), u.Path)
			if _, ok := files[target]; !ok {
				return fmt.Errorf("no such file %s", target)
			}
		}
		if u.Fragment != "" {
			info, ok := pages[target]
			if !ok {
				return fmt.Errorf("fragment into %s, which is not a page", target)
			}
			if !info.ids[u.Fragment] {
				return fmt.Errorf("no id %q in %s", u.Fragment, target)
			}
		}
		return nil
	}
	n := 0
	for _, p := range slices.Sorted(maps.Keys(pages)) {
		for _, l := range pages[p].links {
			n++
			if err := resolve(p, l); err != nil {
				errorf("%s: link %q: %v", p, l, err)
			}
		}
		// Nothing a page loads may come from the network.
		for _, l := range pages[p].links {
			if strings.HasPrefix(l, "http") && bytes.Contains(files[p], []byte(`src="`+l)) {
				errorf("%s loads %s from the network", p, l)
			}
		}
	}
	// The search index's links.
	entries, err := readSearchIndex(files)
	if err != nil {
		errorf("%v", err)
	}
	for _, e := range entries {
		n++
		u := e.U
		if e.K == "directive" {
			// "#<file section>:<line>": the script marks the line of
			// the section's listing.
			i := strings.LastIndex(u, ":")
			if i < 0 || !strings.Contains(u, "#") {
				errorf("search entry %q (directive): %s names no line", e.T, u)
				continue
			}
			u = u[:i]
		}
		if err := resolve("index.html", u); err != nil {
			errorf("search entry %q (%s): %v", e.T, e.K, err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		b := files[p]
		if strings.HasSuffix(p, ".css") && (bytes.Contains(b, []byte("@import")) || bytes.Contains(b, []byte("url(http"))) {
			errorf("%s loads from the network", p)
		}
	}
	return problems, n
}

func TestSiteValidAndLinked(t *testing.T) {
	problems, n := siteProblems(exampleSite(t))
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("%d links and search entries checked", n)
}

// TestCheckerCatches feeds the checker a site with one of each problem,
// so a green TestSiteValidAndLinked means something.
func TestCheckerCatches(t *testing.T) {
	page := func(body string) []byte {
		return []byte("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>t</title></head><body>" + body + "</body></html>\n")
	}
	files := map[string][]byte{
		"index.html":             page(`<p id="a">x</p><p id="a"><a href="missing.html">m</a> <a href="sub/p.html#nope">f</a> <a href="/abs.html">abs</a></p>`),
		"sub/p.html":             page(`<div id="ok"><p>unclosed <div>block</div></p><a href="../index.html#a">back</a> <img src="../x.png"></div>`),
		"assets/search-index.js": []byte("window.HACOMPILE_SEARCH = [{\"k\":\"host\",\"t\":\"h\",\"u\":\"sub/gone.html\"}];\nwindow.HACOMPILE_SEARCH_PARTS = [\"sub/search-index.js\"];\n"),
		"sub/search-index.js":    []byte("(window.HACOMPILE_SEARCH_PART = window.HACOMPILE_SEARCH_PART || {})[\"sub/search-index.js\"] = [{\"k\":\"file\",\"t\":\"f\",\"u\":\"sub/p.html#gone\"}];\n"),
	}
	problems, _ := siteProblems(files)
	got := strings.Join(problems, "\n")
	for _, want := range []string{
		`index.html: duplicate id "a"`,
		`index.html: link "missing.html": no such file missing.html`,
		`index.html: link "sub/p.html#nope": no id "nope" in sub/p.html`,
		`index.html: link "/abs.html": not a relative link`,
		`sub/p.html: <div> inside <p>`,
		`sub/p.html: <img> without alt`,
		`sub/p.html: link "../x.png": no such file x.png`,
		`search entry "h" (host): no such file sub/gone.html`,
		`search entry "f" (file): no id "gone" in sub/p.html`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("checker missed %q; it said:\n%s", want, got)
		}
	}
	// A part the index lists and the site lacks.
	files["assets/search-index.js"] = []byte("window.HACOMPILE_SEARCH = [];\nwindow.HACOMPILE_SEARCH_PARTS = [\"sub/search-index.js\",\"gone/search-index.js\"];\n")
	problems, _ = siteProblems(files)
	if got, want := strings.Join(problems, "\n"), "assets/search-index.js lists gone/search-index.js: no such file"; !strings.Contains(got, want) {
		t.Errorf("checker missed %q; it said:\n%s", want, got)
	}
}

// TestEveryPageReachable: a reader who opens index.html reaches every
// page by following links (the "what changed" page of each stack by its
// Changes tab, the field reference, every shared file), not only
// through the search.
func TestEveryPageReachable(t *testing.T) {
	files := exampleSite(t)
	seen := map[string]bool{"index.html": true}
	queue := []string{"index.html"}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		info, _ := checkHTML(p, files[p])
		for _, l := range info.links {
			u, err := url.Parse(l)
			if err != nil || u.Scheme != "" || u.Path == "" {
				continue
			}
			target := path.Join(path.Dir(p), u.Path)
			if strings.HasSuffix(target, ".html") && !seen[target] && files[target] != nil {
				seen[target] = true
				queue = append(queue, target)
			}
		}
	}
	n := 0
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(p, ".html") {
			n++
			if !seen[p] {
				t.Errorf("%s: no link leads to it from index.html", p)
			}
		}
	}
	if !seen["stacks/do-python-ha/changes.html"] || n < 100 {
		t.Fatalf("%d pages, %d reached", n, len(seen))
	}
}
