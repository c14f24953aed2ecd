package site

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"hash/maphash"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
	"unsafe"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/internal/par"
)

// The search index: every stack, host, rendered file, setting, alert and
// procedure, as JSON inside scripts (assets/search-index.js and each
// stack's part). A page adds them as <script>s on the search box's first
// use (hacompile.js), not with the page, and not with fetch(), which
// file:// forbids.

type searchEntry struct {
	Kind  string `json:"k"`
	Title string `json:"t"`
	Text  string `json:"x,omitempty"`
	URL   string `json:"u"` // relative to the site root
}

func (g *gen) addSearch(e searchEntry) { g.search = append(g.search, e) }

// indexStack adds the overview's sections.
func (g *gen) indexStack(sc *stackCtx, d overviewData) {
	p := stackPage(sc.s.Name, "index.html")
	for _, sec := range []struct{ id, title string }{
		{"topology", "Topology"}, {"request-path", "Request path and timeouts"}, {"hosts", "Host inventory"},
		{"capacity", "Capacity and headroom"}, {"cost", "Monthly cost estimate"}, {"review", "HA review: findings and waivers"},
	} {
		g.addSearch(searchEntry{Kind: "section", Title: sec.title, Text: sc.s.Name, URL: p + "#" + sec.id})
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// indexSettings adds every value of the typed stack, defaults included,
// as "path = value", linked to the line that sets it (or the closest
// enclosing field the author wrote).
func (g *gen) indexSettings(sc *stackCtx) {
	b, err := json.Marshal(sc.s)
	if err != nil {
		return
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return
	}
	// A host's settings are its: they go to its part of the index.
	add := g.addSearch
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				walk(selector(path, k), x[k])
			}
		case []any:
			for i, e := range x {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		case nil:
		default:
			// As fmt.Sprint writes each (a fleet's hosts make tens of
			// thousands of settings).
			var val string
			switch y := x.(type) {
			case string:
				if strings.Contains(path, "notes") || strings.Contains(path, "description") {
					return // prose, not settings
				}
				val = strconv.Quote(y)
			case json.Number:
				val = y.String()
			case bool:
				val = strconv.FormatBool(y)
			default:
				val = fmt.Sprint(x)
			}
			add(searchEntry{Kind: "setting", Title: path + " = " + val, Text: sc.s.Name, URL: sc.sourceHref(path)})
		}
	}
	top, ok := v.(map[string]any)
	if !ok {
		walk("", v)
		return
	}
	for _, k := range slices.Sorted(maps.Keys(top)) {
		hosts, ok := top[k].(map[string]any)
		if k != "hosts" || !ok {
			walk(selector("", k), top[k])
			continue
		}
		for _, h := range slices.Sorted(maps.Keys(hosts)) {
			add = func(e searchEntry) {
				if g.hostSearch == nil {
					g.hostSearch = map[string][]searchEntry{}
				}
				g.hostSearch[h] = append(g.hostSearch[h], e)
			}
			walk(selector(selector("", k), h), hosts[h])
		}
		add = g.addSearch
	}
}

// selector is the path of field k of the value at path ("": the top),
// as a CUE selector: k quoted (as %q writes it) if it is not an
// identifier.
func selector(path, k string) string {
	sel := k
	if !identRE.MatchString(k) {
		sel = strconv.Quote(k)
	}
	if path != "" {
		sel = path + "." + sel
	}
	return sel
}

// appendEntryJSON writes e as json.Marshal does: fields in order, an
// empty Text left out. A string json.Marshal writes as it is (printable
// ASCII with nothing to escape) is quoted here; any other goes through
// json.Marshal.
func appendEntryJSON(b *bytes.Buffer, e searchEntry) error {
	b.WriteString(`{"k":`)
	if err := appendJSONString(b, e.Kind); err != nil {
		return err
	}
	b.WriteString(`,"t":`)
	if err := appendJSONString(b, e.Title); err != nil {
		return err
	}
	if e.Text != "" {
		b.WriteString(`,"x":`)
		if err := appendJSONString(b, e.Text); err != nil {
			return err
		}
	}
	b.WriteString(`,"u":`)
	if err := appendJSONString(b, e.URL); err != nil {
		return err
	}
	b.WriteByte('}')
	return nil
}

func appendJSONString(b *bytes.Buffer, s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, err := json.Marshal(s)
			if err != nil {
				return err
			}
			b.Write(j)
			return nil
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
	return nil
}

// cmpJoined compares a1+"\x00"+a2 with b1+"\x00"+b2 without joining
// them but where the first parts alone cannot tell.
func cmpJoined(a1, a2, b1, b2 string) int {
	n := min(len(a1), len(b1))
	if c := strings.Compare(a1[:n], b1[:n]); c != 0 {
		return c
	}
	switch {
	case len(a1) == len(b1):
		return strings.Compare(a2, b2)
	case len(a1) < len(b1) && b1[n] != 0:
		return -1
	case len(a1) > len(b1) && a1[n] != 0:
		return 1
	}
	return strings.Compare(a1+"\x00"+a2, b1+"\x00"+b2)
}

// searchIndexPath is the search index's script: the site's own entries
// (the reference's fields, each stack's entry) and the list of the
// stacks' parts, each of which holds one stack's pages' entries
// (searchPartPath). A stack's part changes with its pages only, and a
// build that keeps a stack's pages keeps its part with them, so a change
// to one stack of many rewrites that stack's part, not every stack's
// entries.
const searchIndexPath = "assets/search-index.js"

// searchPartPath is the script of the stack named stack's part of the
// search index: its own pages' entries, and its hosts' pages' entries
// when the stack is small enough to have no host parts.
func searchPartPath(stack string) string { return stackPage(stack, "search-index.js") }

// hostsPerSearchPart is how many hosts' pages' entries a stack's part of
// the search index holds before they go to host parts of their own
// (searchHostParts). At 10,000 hosts one part was 40 MB, written again
// on every change to one host; in parts of this many hosts each, a
// change to one host writes the part that holds it (about 260 KB).
var hostsPerSearchPart = 128

// searchHostParts is how many host parts a stack of n hosts has: none
// (its hosts' entries are in its part) up to hostsPerSearchPart hosts,
// else the least power of two that leaves each at most that many on
// average. A host's part is chosen by its name's hash (searchHostPart),
// so adding or removing a host changes one part, and the number only
// doubles or halves when the fleet does.
func searchHostParts(n int) int {
	if n <= hostsPerSearchPart {
		return 0
	}
	parts := 1
	for parts*hostsPerSearchPart < n {
		parts *= 2
	}
	return parts
}

// searchHostPart is the host part (of parts) that holds host's entries.
func searchHostPart(host string, parts int) int {
	h := fnv.New32a()
	h.Write([]byte(host))
	return int(h.Sum32() % uint32(parts))
}

// searchHostPartPath is the script of the stack named stack's host part
// k (from 0).
func searchHostPartPath(stack string, k int) string {
	return stackPage(stack, "search/hosts-"+strconv.Itoa(k+1)+".js")
}

// searchIndexJS renders the index: es, the site's own entries, as one
// global, and parts, the stacks' parts' paths in the order the script
// (hacompile.js) joins them.
func searchIndexJS(es []searchEntry, parts []string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("// Generated by hacompile: the runbook's search index, loaded by a script tag so that\n// search works from file:// too. Each stack's entries are in scripts of their own,\n// listed in HACOMPILE_SEARCH_PARTS and loaded after this one.\nwindow.HACOMPILE_SEARCH = [\n")
	if err := appendEntriesJSON(&b, sortedEntries(es)); err != nil {
		return nil, err
	}
	b.WriteString("];\nwindow.HACOMPILE_SEARCH_PARTS = ")
	j, err := json.Marshal(parts)
	if err != nil {
		return nil, err
	}
	b.Write(j)
	b.WriteString(";\n")
	return b.Bytes(), nil
}

// searchPartJS renders the part of the index at path p, whose first
// line says it holds the entries of what ("stack web"): its entries es,
// as sortedEntries leaves them, under p in one global object.
func searchPartJS(p, what string, es []searchEntry) ([]byte, error) {
	var b bytes.Buffer
	key, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	b.WriteString("// Generated by hacompile: the search index's entries of " + what + " (" + searchIndexPath + " lists it).\n(window.HACOMPILE_SEARCH_PART = window.HACOMPILE_SEARCH_PART || {})[")
	b.Write(key)
	b.WriteString("] = [\n")
	if err := appendEntriesJSON(&b, es); err != nil {
		return nil, err
	}
	b.WriteString("];\n")
	return b.Bytes(), nil
}

// searchPart is one part of the index a stack's render makes.
type searchPart struct {
	path, what string
	entries    []searchEntry
}

// emitSearchParts sorts each part's entries and hands the part to the
// sink, all parts at once on every core. With a keyed sink, a part whose
// entries are as the last build's is not encoded again: a one-host
// change on a large fleet encodes the host's part, not every host's.
func (g *gen) emitSearchParts(parts []searchPart) {
	par.Each(len(parts), func(i int) {
		p := parts[i]
		es := sortedEntries(p.entries)
		var key [sha256.Size]byte
		keyed := false
		if g.sink.keyed != nil {
			// The script's text follows from the path, what it is of,
			// and the entries alone.
			if key, keyed = inputKey(g.sink.code, p.path, p.what, es); keyed {
				reused, err := g.sink.keyed.Reuse(p.path, key)
				if err != nil {
					g.sink.fail(err)
					return
				}
				if reused {
					return
				}
			}
		}
		js, err := searchPartJS(p.path, p.what, es)
		switch {
		case err != nil:
			g.sink.fail(err)
		case keyed:
			g.emitKeyed(p.path, js, key)
		default:
			g.emit(p.path, js)
		}
	})
}

// sortedEntries is es sorted by link and title, the same entry once.
func sortedEntries(es []searchEntry) []searchEntry {
	es = slices.Clone(es)
	par.SortStableFunc(es, func(a, b searchEntry) int { return cmpJoined(a.URL, a.Title, b.URL, b.Title) })
	return slices.CompactFunc(es, func(a, b searchEntry) bool { return a == b })
}

// appendEntriesJSON writes es (as sortedEntries leaves them) to b, one
// to a line with commas between.
func appendEntriesJSON(b *bytes.Buffer, es []searchEntry) error {
	// A large fleet's entries are tens of MB: they are encoded in runs
	// on every core, then joined in order.
	const run = 4096
	parts := make([]bytes.Buffer, (len(es)+run-1)/run)
	errs := make([]error, len(parts))
	par.Each(len(parts), func(k int) {
		b := &parts[k]
		for i := k * run; i < min(len(es), (k+1)*run); i++ {
			if errs[k] = appendEntryJSON(b, es[i]); errs[k] != nil {
				return
			}
			if i < len(es)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	n := 0
	for k := range parts {
		n += parts[k].Len()
	}
	b.Grow(n)
	for k := range parts {
		b.Write(parts[k].Bytes())
	}
	return nil
}

// Directives of rendered files in the index: each distinct line of a
// file that is not blank, a comment or a generated header, linked to its
// line in the file's listing ("#<file section>:<line>", which the
// site's script marks and scrolls to), with the hosts that carry it. A
// file several hosts carry byte for byte is indexed once (from its
// shared page), so a 1,000-host fleet adds the lines of its distinct
// files, not of every copy. Cloud-init documents, which repeat the
// host's files, scripts (executable files: commands, not settings) and
// lines longer than maxDirectiveLen (certificates, embedded data) are
// left out.
const maxDirectiveLen = 160

// maxDirectivesPerFile bounds what one file adds (a balancer's list of
// a thousand backends is indexed up to it).
const maxDirectivesPerFile = 2000

// dirHit is a directive of a file only one host carries: the hosts'
// copies of one path usually share most lines (every app host's
// nginx site differs in its listen address alone), so hits of one
// stack are merged by path, line number and text before they enter the
// index (mergeDirectives), naming every host that has the line there.
type dirHit struct {
	name, text, host, url string
	line                  int
}

// indexDirectives indexes f's directives: for a host file only that
// host carries, as hits merged later with the other hosts' (host set);
// otherwise (a shared page's file, a stack file) directly, where names
// where it is.
func (g *gen) indexDirectives(f artifact.File, name, where, url string) {
	g.eachDirective(f, func(line int, text string) {
		if f.Host != "" && where == "" {
			g.dirs = append(g.dirs, dirHit{name: name, text: text, host: f.Host, url: url, line: line})
			return
		}
		g.addSearch(searchEntry{Kind: "directive", Title: strings.Clone(text), Text: name + ":" + strconv.Itoa(line) + " · " + where, URL: url + ":" + strconv.Itoa(line)})
	})
}

// dirMerge merges a stack's host hits by path, line number and text as
// the jobs that found them end, in any order, and keeps what the index
// needs: each line's text once, the hosts that have it, and where it
// was first found, so that the entries come out in the order of one
// pass over the jobs in turn (host name order).
type dirMerge struct {
	mu    sync.Mutex
	byKey map[dirKey]*dirAcc
}

type dirKey struct {
	name, text string
	line       int
}

type dirAcc struct {
	key   dirKey
	url   string
	first [2]int // job, hit: where the line was met first
	hosts []dirHost
}

type dirHost struct {
	job  int
	name string
}

func newDirMerge() *dirMerge { return &dirMerge{byKey: map[dirKey]*dirAcc{}} }

// add merges the hits of job.
func (m *dirMerge) add(job int, hits []dirHit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, h := range hits {
		k := dirKey{name: h.name, text: h.text, line: h.line}
		a := m.byKey[k]
		if a == nil {
			// Copies: the hit's strings may hold a whole file alive.
			k = dirKey{name: strings.Clone(h.name), text: strings.Clone(h.text), line: h.line}
			a = &dirAcc{key: k, url: h.url, first: [2]int{job, i}}
			m.byKey[k] = a
		} else if job < a.first[0] || job == a.first[0] && i < a.first[1] {
			a.url, a.first = h.url, [2]int{job, i}
		}
		a.hosts = append(a.hosts, dirHost{job, h.host})
	}
}

// mergeDirectives turns a stack's merged host hits into entries: one
// per path, line number and text, linked to the first host's listing
// and naming the hosts.
func (g *gen) mergeDirectives(stack string, m *dirMerge) {
	order := slices.Collect(maps.Values(m.byKey))
	slices.SortFunc(order, func(a, b *dirAcc) int {
		return cmp.Or(cmp.Compare(a.first[0], b.first[0]), cmp.Compare(a.first[1], b.first[1]))
	})
	// A fleet's directives name the same few lists of hosts again and
	// again (every app host): each list's text is made once.
	type listed struct {
		names []string
		where string
	}
	lists := map[uint64][]listed{}
	var h maphash.Hash
	for _, a := range order {
		slices.SortStableFunc(a.hosts, func(x, y dirHost) int { return cmp.Compare(x.job, y.job) })
		where := a.hosts[0].name
		if len(a.hosts) > 1 {
			names := make([]string, len(a.hosts))
			h.Reset()
			for i, x := range a.hosts {
				names[i] = x.name
				h.WriteString(x.name)
				h.WriteByte(0)
			}
			k := h.Sum64()
			i := slices.IndexFunc(lists[k], func(l listed) bool { return slices.Equal(l.names, names) })
			if i < 0 {
				lists[k] = append(lists[k], listed{names, fmt.Sprintf("%s (%d hosts)", capNames(artifact.CompactNames(names)), len(names))})
				i = len(lists[k]) - 1
			}
			where = lists[k][i].where
		}
		g.addSearch(searchEntry{Kind: "directive", Title: a.key.text, Text: a.key.name + ":" + strconv.Itoa(a.key.line) + " · " + where + " · " + stack, URL: a.url + ":" + strconv.Itoa(a.key.line)})
	}
}

// capNames cuts a CompactNames listing after 8 runs.
func capNames(r string) string {
	if parts := strings.Split(r, ", "); len(parts) > 8 {
		return strings.Join(parts[:8], ", ") + ", …"
	}
	return r
}

// eachDirective calls fn with each distinct directive line of f and its
// line number.
func (g *gen) eachDirective(f artifact.File, fn func(line int, text string)) {
	if f.Kind == (cloudinit.Gen{}).Kind() || f.Mode&0o111 != 0 || !utf8.Valid(f.Content) || bytes.IndexByte(f.Content, 0) >= 0 {
		return
	}
	// The lines are read in place (a file's content is never changed):
	// fn's text is a view of it, which whoever keeps it copies.
	if g.seenLines == nil {
		g.seenLines = map[string]bool{}
	}
	seen := g.seenLines
	// Emptied when done: its keys are views of f's content, which the
	// job's gen would otherwise hold until the whole stack is rendered.
	defer clear(seen)
	n := 0
	rest := unsafe.String(unsafe.SliceData(f.Content), len(f.Content))
	for i := 0; rest != ""; i++ {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		l := strings.TrimSpace(line)
		if l == "" || len(l) > maxDirectiveLen || seen[l] || isCommentLine(l) || !strings.ContainsFunc(l, isAlnum) {
			continue
		}
		seen[l] = true
		fn(i+1, l)
		if n++; n == maxDirectivesPerFile {
			return
		}
	}
}

// isCommentLine reports whether a trimmed line is a comment in the
// formats hacompile renders.
func isCommentLine(l string) bool {
	for _, m := range []string{"#", ";", "//", "--", "/*", "<!--"} {
		if strings.HasPrefix(l, m) {
			return true
		}
	}
	return false
}

func isAlnum(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
