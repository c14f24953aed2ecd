package site_test

import (
	"bytes"
	"crypto/sha256"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/fleet"
	"github.com/hacompile/hacompile/site"
)

// keyedStore is a site.KeyedSink over a map, as the writer of out/ is
// over the directory: it holds the pages of the last render and their
// keys, answers Reuse from them, and counts what the render made.
type keyedStore struct {
	mu    sync.Mutex
	pages map[string][]byte
	keys  map[string][sha256.Size]byte
	// what the render in progress did
	made, reused []string
	next         map[string][]byte
	nextKeys     map[string][sha256.Size]byte
}

func (s *keyedStore) start() {
	s.made, s.reused = nil, nil
	s.next, s.nextKeys = map[string][]byte{}, map[string][sha256.Size]byte{}
}

// finish makes the render's pages the ones held, as a build's finish
// makes its files out/.
func (s *keyedStore) finish() {
	s.pages, s.keys = s.next, s.nextKeys
	slices.Sort(s.made)
	slices.Sort(s.reused)
}

func (s *keyedStore) Put(p string, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next[p] = b
	return nil
}

func (s *keyedStore) PutKeyed(p string, b []byte, key [sha256.Size]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next[p], s.nextKeys[p] = b, key
	s.made = append(s.made, p)
	return nil
}

func (s *keyedStore) Reuse(p string, key [sha256.Size]byte) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.keys[p]; !ok || k != key {
		return false, nil
	}
	s.next[p], s.nextKeys[p] = s.pages[p], key
	s.reused = append(s.reused, p)
	return true, nil
}

func renderKeyed(t *testing.T, s *keyedStore, code string, res *compile.Result) {
	t.Helper()
	rb, err := site.Prepare(res, site.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.start()
	if err := rb.RenderKeyed(code, s); err != nil {
		t.Fatal(err)
	}
	s.finish()
}

func compileFleet(t *testing.T, hosts int, size string) *compile.Result {
	t.Helper()
	res, err := compile.CompileInputs([]compile.Input{{Name: "stacks/fleet.cue", Data: fleet.Fleet(hosts, size)}}, today)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// A host page whose inputs are the last render's is not made again, and
// what the keyed renders leave is, page for page, what a plain render of
// the same stack makes: after a one-host change only that host's page,
// the host part of the search index that holds its entries and the
// stack's own part (whose directives name the hosts that carry each
// line) are made, not the other host parts; under another program
// (code) every page is.
func TestRenderKeyedReusesUnchangedHostPages(t *testing.T) {
	const hosts = 40
	defer site.SetHostsPerSearchPart(8)() // 8 host parts
	s := &keyedStore{}
	before := compileFleet(t, hosts, "")
	renderKeyed(t, s, "build-1", before)
	if len(s.reused) != 0 {
		t.Fatalf("a first render reused %q", s.reused)
	}
	hostPages := slices.Clone(s.made)
	if len(hostPages) < hosts || !strings.Contains(strings.Join(hostPages, " "), "stacks/fleet/hosts/app2.html") {
		t.Fatalf("a first render keyed %d pages (%q); want every host's page", len(hostPages), hostPages)
	}
	same := func(res *compile.Result, what string) {
		t.Helper()
		want, err := site.Render(res, site.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(slices.Sorted(maps.Keys(s.pages)), slices.Sorted(maps.Keys(want))) {
			t.Fatalf("%s: the keyed render left other pages than a plain render makes", what)
		}
		for p, b := range want {
			if !bytes.Equal(s.pages[p], b) {
				t.Errorf("%s: %s differs from a plain render's", what, p)
			}
		}
	}
	same(before, "first render")

	renderKeyed(t, s, "build-1", before)
	if len(s.made) != 0 || !slices.Equal(s.reused, hostPages) {
		t.Errorf("a render of the same stack made %q and reused %d pages; want none made, all %d reused", s.made, len(s.reused), len(hostPages))
	}
	same(before, "same stack again")

	after := compileFleet(t, hosts, "s-4vcpu-8gb") // app2's size changes
	renderKeyed(t, s, "build-1", after)
	if want := []string{"stacks/fleet/hosts/app2.html", "stacks/fleet/search-index.js", site.SearchHostPartOf("fleet", "app2", hosts)}; !slices.Equal(s.made, slices.Sorted(slices.Values(want))) {
		t.Errorf("after a one-host change the render made %q; want %q", s.made, want)
	}
	same(after, "one host changed")

	renderKeyed(t, s, "build-2", after)
	if len(s.reused) != 0 || !slices.Equal(s.made, hostPages) {
		t.Errorf("another program reused %q; want every page made again", s.reused)
	}
	same(after, "another program")

	// Without a program's identity nothing is keyed: every page goes
	// to Put, and none is reused.
	renderKeyed(t, s, "", after)
	if len(s.reused)+len(s.made) != 0 {
		t.Errorf("a render with no program identity made %d keyed pages and reused %d", len(s.made), len(s.reused))
	}
	same(after, "no program identity")
}

// sourceLines are the highlighted lines of the source listings of a
// render's pages, in page and line order, and the page each line
// number's anchor is on.
func sourceLines(t *testing.T, pages map[string][]byte, parts []string) (lines []string, anchorOn map[int]string) {
	t.Helper()
	lineRE := regexp.MustCompile(`(?s)<span class="line"><span class="cl">(.*?)\n</span></span>`)
	anchorRE := regexp.MustCompile(`<span class="lnt" id="L(\d+)">`)
	anchorOn = map[int]string{}
	for _, p := range parts {
		b, ok := pages[p]
		if !ok {
			t.Fatalf("no page %s", p)
		}
		for _, m := range lineRE.FindAllSubmatch(b, -1) {
			lines = append(lines, string(m[1]))
		}
		for _, m := range anchorRE.FindAllSubmatch(b, -1) {
			n, _ := strconv.Atoi(string(m[1]))
			if prev, dup := anchorOn[n]; dup {
				t.Errorf("line %d's anchor is on %s and %s", n, prev, p)
			}
			anchorOn[n] = p
		}
	}
	return lines, anchorOn
}

// A stack file longer than a source page lists is listed in parts: the
// parts hold, line for line, the highlighting of the whole file, each
// line's anchor where the rendered files' links look for it, and a
// one-host change makes again the part that holds the host's line and
// the first (which shows the file's digest), not the others.
func TestLongSourceInParts(t *testing.T) {
	const hosts, perPage = 40, 20
	before := compileFleet(t, hosts, "")
	whole, err := site.Render(before, site.Options{})
	if err != nil {
		t.Fatal(err)
	}
	wholeLines, _ := sourceLines(t, whole, []string{"stacks/fleet/source.html"})
	n := len(wholeLines)
	if n <= 3*perPage {
		t.Fatalf("the fleet's file has %d lines; the test wants several parts", n)
	}

	defer site.SetSourcePageLines(perPage)()
	s := &keyedStore{}
	renderKeyed(t, s, "build-1", before)
	var parts []string
	for k := 0; k*perPage < n; k++ {
		p := "stacks/fleet/source.html"
		if k > 0 {
			p = "stacks/fleet/source-" + strconv.Itoa(k+1) + ".html"
		}
		parts = append(parts, p)
	}
	if _, extra := s.pages["stacks/fleet/source-"+strconv.Itoa(len(parts)+1)+".html"]; extra {
		t.Errorf("a part past the %d the file's %d lines need", len(parts), n)
	}
	lines, anchorOn := sourceLines(t, s.pages, parts)
	if !slices.Equal(lines, wholeLines) {
		t.Errorf("the parts list %d lines; the whole file's listing has %d, or they differ", len(lines), n)
	}
	for line := 1; line <= n; line++ {
		if want := parts[(line-1)/perPage]; anchorOn[line] != want {
			t.Errorf("line %d's anchor is on %q, want %s", line, anchorOn[line], want)
		}
	}
	if !bytes.Contains(s.pages[parts[0]], []byte(before.Rendered[0].Stack.SourceDigest)) || bytes.Contains(s.pages[parts[1]], []byte(before.Rendered[0].Stack.SourceDigest)) {
		t.Error("the file's digest is not on the first part alone")
	}
	// A host page links its files' sources to the part holding the line.
	app := s.pages["stacks/fleet/hosts/app30.html"]
	m := regexp.MustCompile(`href="\.\./(source(?:-\d+)?\.html)#L(\d+)"`).FindSubmatch(app)
	if m == nil {
		t.Fatal("app30's page links no source line")
	}
	line, _ := strconv.Atoi(string(m[2]))
	if want := path.Base(parts[(line-1)/perPage]); string(m[1]) != want {
		t.Errorf("app30's page links line %d on %s, want %s", line, m[1], want)
	}

	after := compileFleet(t, hosts, "s-4vcpu-8gb") // app2's size changes
	renderKeyed(t, s, "build-1", after)
	var madeParts []string
	for _, p := range s.made {
		if strings.HasPrefix(p, "stacks/fleet/source") {
			madeParts = append(madeParts, p)
		}
	}
	app2 := bytes.Index(after.Sources["stacks/fleet.cue"], []byte("app2:"))
	app2Line := bytes.Count(after.Sources["stacks/fleet.cue"][:app2], []byte("\n")) + 1
	want := []string{parts[0], parts[(app2Line-1)/perPage]}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Equal(madeParts, want) {
		t.Errorf("after a one-host change (line %d) the render made the source parts %q, want %q", app2Line, madeParts, want)
	}
	plain, err := site.Render(after, site.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for p, b := range plain {
		if !bytes.Equal(s.pages[p], b) {
			t.Errorf("%s differs from a plain render's", p)
		}
	}
}
