package site_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/png"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/site"
)

// TestChromium loads every page of the example site in headless
// Chromium over a loopback server: no failed request, no console error,
// no exception; screenshots of the index, a stack and a host page are
// not blank; typing a host name into search lists the host, and Enter
// opens it. The same checks then run from file://, where the search
// index must load without fetch().
func TestChromium(t *testing.T) {
	files := examplesInParts(t)
	// A bound against a hung browser, not a measure of speed: loading
	// every page took 87 s on a 2-core machine busy with other packages'
	// tests.
	ctx, tb, srv := openSite(t, files, 4*time.Minute)

	pages := slices.Sorted(maps.Keys(files))
	pages = slices.DeleteFunc(pages, func(p string) bool { return !strings.HasSuffix(p, ".html") })
	start := time.Now()
	for _, p := range pages {
		evs, err := tb.navigate(ctx, srv.URL+"/"+p)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems(evs) {
			t.Errorf("%s: %s", p, pr)
		}
		// The page's own resources all arrived (the stylesheet
		// applies), and the search index did not come with them: it
		// loads on the search box's first use (searchFor below).
		var res struct{ Styled, Index bool }
		if err := tb.eval(ctx, `({Styled: getComputedStyle(document.querySelector("header.top")).display === "flex",
			Index: window.HACOMPILE_SEARCH !== undefined || window.HACOMPILE_SEARCH_PART !== undefined ||
				performance.getEntriesByType("resource").some(r => r.name.endsWith("/search-index.js") || r.name.includes("/search/"))})`, &res); err != nil {
			t.Fatal(err)
		}
		if !res.Styled {
			t.Errorf("%s: stylesheet did not load", p)
		}
		if res.Index {
			t.Errorf("%s: the search index loaded with the page", p)
		}
	}
	t.Logf("loaded %d pages in %v", len(pages), time.Since(start).Round(time.Millisecond))

	for _, p := range []string{"index.html", "stacks/do-python-ha/index.html", "stacks/do-perl-ha/hosts/lb1.html"} {
		if _, err := tb.navigate(ctx, srv.URL+"/"+p); err != nil {
			t.Fatal(err)
		}
		shot := screenshot(ctx, t, tb, filepath.Base(filepath.Dir(p))+"-"+filepath.Base(p))
		if frac := inked(shot); frac < 0.03 {
			t.Errorf("%s: screenshot is blank: %.2f%% of pixels differ from the background", p, 100*frac)
		}
	}

	searchFor(ctx, t, tb, srv.URL+"/index.html", "lb2", "stacks/do-perl-ha/hosts/lb2.html")
	searchFor(ctx, t, tb, srv.URL+"/stacks/do-python-ha/hosts/app1.html", "somaxconn", "source.html#L")
	// Directives inside the rendered files: a file the app hosts share
	// (its shared page), and a systemd limit.
	// Each opens the listing at the directive's line, marked.
	for _, q := range []struct{ q, want string }{{"worker_connections", "/same/etc-nginx-nginx-conf-"}, {"LimitNOFILE", "-service"}} {
		searchFor(ctx, t, tb, srv.URL+"/index.html", q.q, q.want)
		var mark struct {
			Text    string
			Visible bool
		}
		if err := tb.eval(ctx, `(() => { const m = document.querySelector(".line-mark"); if (!m) return {Text: "", Visible: false};
			const r = m.getBoundingClientRect(); return {Text: m.getAttribute("data-text"), Visible: r.top >= 0 && r.bottom <= innerHeight && r.height > 0}; })()`, &mark); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(strings.TrimSpace(mark.Text), q.q) || !mark.Visible {
			t.Errorf("search %q: the opened listing marks %q (visible %v), want the directive's line in view", q.q, mark.Text, mark.Visible)
		}
	}

	// From file://: the same site written to disk.
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, c, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"index.html", "stacks/do-python-ha/index.html", "stacks/do-python-ha/hosts/lb1.html"} {
		evs, err := tb.navigate(ctx, "file://"+filepath.ToSlash(filepath.Join(dir, p)))
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems(evs) {
			t.Errorf("file://…/%s: %s", p, pr)
		}
	}
	searchFor(ctx, t, tb, "file://"+filepath.ToSlash(filepath.Join(dir, "stacks/do-python-ha/procedures.html")), "app3", "stacks/do-python-ha/hosts/app3.html")

	// A stack's part of the index missing: the search says which
	// script did not load, rather than search the other stacks' alone.
	lacking := fstest.MapFS{}
	for p, c := range files {
		if p != "stacks/do-perl-ha/search-index.js" {
			lacking[p] = &fstest.MapFile{Data: c, Mode: 0o644}
		}
	}
	lsrv := httptest.NewServer(http.FileServerFS(lacking))
	defer lsrv.Close()
	if _, err := tb.navigate(ctx, lsrv.URL+"/index.html"); err != nil {
		t.Fatal(err)
	}
	if err := tb.eval(ctx, `document.getElementById("search").focus()`, nil); err != nil {
		t.Fatal(err)
	}
	if err := tb.call(ctx, "Input.insertText", map[string]any{"text": "app1"}, nil); err != nil {
		t.Fatal(err)
	}
	var shown []string
	if err := tb.eval(ctx, `(async () => {
		const items = () => [...document.querySelectorAll("#search-results li")].map(li => li.textContent);
		for (let i = 0; i < 400 && items().some(t => t.startsWith("Loading the search index")); i++) {
			await new Promise(r => setTimeout(r, 50));
			document.getElementById("search").dispatchEvent(new Event("input"));
		}
		return items();
	})()`, &shown); err != nil {
		t.Fatal(err)
	}
	if want := "The search index (stacks/do-perl-ha/search-index.js) did not load"; !slices.Contains(shown, want) {
		t.Errorf("search with a stack's part missing shows %q, want %q", shown, want)
	}

	// Notes that try to run script run none.
	res, opt := compileStack(t, notesStack)
	notes, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	nfs := fstest.MapFS{}
	for p, c := range notes {
		nfs[p] = &fstest.MapFile{Data: c, Mode: 0o644}
	}
	// And a broken page, to show the harness sees what it looks for.
	nfs["broken.html"] = &fstest.MapFile{Data: []byte(`<!DOCTYPE html><html lang="en"><title>b</title><img src="missing.png" alt=""><script>console.error("boom"); throw new Error("uncaught")</script></html>`)}
	nsrv := httptest.NewServer(http.FileServerFS(nfs))
	defer nsrv.Close()
	for _, p := range []string{"stacks/web/index.html", "stacks/web/hosts/app1.html"} {
		evs, err := tb.navigate(ctx, nsrv.URL+"/"+p)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range problems(evs) {
			t.Errorf("notes %s: %s", p, pr)
		}
		var pwned string
		if err := tb.eval(ctx, `typeof window.pwned`, &pwned); err != nil {
			t.Fatal(err)
		}
		if pwned != "undefined" {
			t.Errorf("notes %s: a script from the notes ran", p)
		}
	}
	evs, err := tb.navigate(ctx, nsrv.URL+"/broken.html")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(problems(evs), "\n")
	for _, want := range []string{"HTTP 404", "console error", "exception"} {
		if !strings.Contains(got, want) {
			t.Errorf("the harness missed a %s on a broken page; it saw:\n%s", want, got)
		}
	}
}

// examplesInParts is the example stacks' site with their hosts' search
// entries in host parts of the index, two hosts a part: the search finds
// a host through its part.
func examplesInParts(t *testing.T) map[string][]byte {
	t.Helper()
	defer site.SetHostsPerSearchPart(2)()
	files, err := site.Render(exampleResult(t), sourceFrom(testtool.ExampleRoot()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"stacks/do-perl-ha/search/hosts-1.js", "stacks/do-python-ha/search/hosts-2.js"} {
		if files[p] == nil {
			t.Fatalf("no host part %s", p)
		}
	}
	return files
}

// openSite serves files over HTTP on loopback and opens a 1280×900 tab
// of a headless Chromium, both stopped when the test ends; ctx bounds
// the test's browsing.
func openSite(t *testing.T, files map[string][]byte, bound time.Duration) (context.Context, *tab, *httptest.Server) {
	t.Helper()
	b := startChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	t.Cleanup(cancel)
	tb, err := b.newTab(ctx, 1280, 900)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{}
	for p, c := range files {
		fsys[p] = &fstest.MapFile{Data: c, Mode: 0o644}
	}
	srv := httptest.NewServer(http.FileServerFS(fsys))
	t.Cleanup(srv.Close)
	return ctx, tb, srv
}

// searchFor types q into the search box of url (whose focus loads the
// search index), requires a result whose link contains want, presses
// Enter and requires the first result to open.
func searchFor(ctx context.Context, t *testing.T, tb *tab, url, q, want string) {
	t.Helper()
	if _, err := tb.navigate(ctx, url); err != nil {
		t.Fatal(err)
	}
	if err := tb.eval(ctx, `document.getElementById("search").focus()`, nil); err != nil {
		t.Fatal(err)
	}
	if err := tb.call(ctx, "Input.insertText", map[string]any{"text": q}, nil); err != nil {
		t.Fatal(err)
	}
	var res struct {
		Hidden bool
		Links  [][2]string
	}
	if err := tb.eval(ctx, `(async () => {
		const loading = () => [...document.querySelectorAll("#search-results li")].some(li => li.textContent.startsWith("Loading the search index"));
		for (let i = 0; i < 400 && loading(); i++) await new Promise(r => setTimeout(r, 50));
		return {Hidden: document.getElementById("search-results").hidden,
		Links: [...document.querySelectorAll("#search-results a")].map(a => [a.textContent, a.href])};
	})()`, &res); err != nil {
		t.Fatal(err)
	}
	if res.Hidden || len(res.Links) == 0 {
		t.Fatalf("search %q on %s: no results shown", q, url)
	}
	found := false
	for _, l := range res.Links {
		found = found || strings.Contains(l[1], want)
	}
	if !found {
		t.Fatalf("search %q on %s: no result links to %s; got %v", q, url, want, res.Links)
	}
	mark := tb.b.mark()
	for _, typ := range []string{"keyDown", "keyUp"} {
		if err := tb.call(ctx, "Input.dispatchKeyEvent", map[string]any{"type": typ, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := tb.b.waitEvent(ctx, tb.session, "Page.loadEventFired", mark); err != nil {
		t.Fatalf("search %q: Enter did not open the first result: %v", q, err)
	}
	var href string
	if err := tb.eval(ctx, `location.href`, &href); err != nil {
		t.Fatal(err)
	}
	if href != res.Links[0][1] {
		t.Errorf("search %q: Enter opened %s, want the first result %s", q, href, res.Links[0][1])
	}
}

// screenshot captures the viewport; HACOMPILE_SCREENSHOTS=dir keeps it.
func screenshot(ctx context.Context, t *testing.T, tb *tab, name string) image.Image {
	t.Helper()
	var shot struct {
		Data string `json:"data"`
	}
	if err := tb.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("HACOMPILE_SCREENSHOTS"); dir != "" {
		os.WriteFile(filepath.Join(dir, strings.TrimSuffix(name, ".html")+".png"), raw, 0o644)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// inked is the fraction of pixels that differ from the most common
// colour (the background).
func inked(img image.Image) float64 {
	counts := map[[3]uint32]int{}
	r := img.Bounds()
	total := 0
	for y := r.Min.Y; y < r.Max.Y; y += 2 {
		for x := r.Min.X; x < r.Max.X; x += 2 {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			counts[[3]uint32{cr >> 8, cg >> 8, cb >> 8}]++
			total++
		}
	}
	most := 0
	for _, n := range counts {
		most = max(most, n)
	}
	if total == 0 {
		return 0
	}
	return float64(total-most) / float64(total)
}

// TestChromiumTablesKeepNames: in a narrow window, a path or directive
// in a table cell is never broken between two letters or digits of a
// name (the table scrolls instead); it may wrap where a line may break.
func TestChromiumTablesKeepNames(t *testing.T) {
	ctx, wide, srv := openSite(t, exampleSite(t), 2*time.Minute)
	tb, err := wide.b.newTab(ctx, 520, 900)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"stacks/do-python-ha/hosts/app1.html", "stacks/do-python-ha/files.html", "stacks/python-celery-cache/index.html"} {
		if _, err := tb.navigate(ctx, srv.URL+"/"+p); err != nil {
			t.Fatal(err)
		}
		var res struct {
			Cells  int
			Broken []string
		}
		if err := tb.eval(ctx, `(() => {
  const word = /[A-Za-z0-9_]/;
  let cells = 0;
  const broken = [];
  document.querySelectorAll("td code, th code").forEach(c => {
    const n = c.firstChild;
    if (!n || n.nodeType !== Node.TEXT_NODE || n.nodeValue.length < 2) return;
    cells++;
    const t = n.nodeValue;
    let prevTop = null;
    for (let i = 0; i < t.length; i++) {
      const r = document.createRange();
      r.setStart(n, i);
      r.setEnd(n, i + 1);
      const rect = r.getClientRects()[0];
      if (!rect) continue;
      if (prevTop !== null && rect.top > prevTop + 2 && word.test(t[i - 1]) && word.test(t[i])) {
        broken.push(t.slice(0, i) + "|" + t.slice(i));
        break;
      }
      prevTop = rect.top;
    }
  });
  return {Cells: cells, Broken: broken.slice(0, 5)};
})()`, &res); err != nil {
			t.Fatal(err)
		}
		if res.Cells < 5 {
			t.Errorf("%s: %d table cells with code", p, res.Cells)
		}
		for _, b := range res.Broken {
			t.Errorf("%s: a table cell breaks a name at |: %s", p, b)
		}
	}
}
