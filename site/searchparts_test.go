package site_test

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/site"
)

// A large stack's hosts' search entries are in host parts of the index:
// the index lists every part, the parts hold together exactly the
// entries one part held, each host's (its page's, its files', its
// settings') in the part SearchHostPartOf names, and nothing else is in
// a host part.
func TestSearchHostParts(t *testing.T) {
	const hosts = 40
	res := compileFleet(t, hosts, "")
	whole, err := site.Render(res, site.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer site.SetHostsPerSearchPart(8)()
	split, err := site.Render(res, site.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var partPaths []string
	for p := range split {
		if strings.HasPrefix(p, "stacks/fleet/search/") {
			partPaths = append(partPaths, p)
		}
	}
	if len(partPaths) != 8 {
		t.Fatalf("%d host parts (%q); want 8 (40 hosts, 8 a part)", len(partPaths), partPaths)
	}
	for p := range whole {
		if strings.HasPrefix(p, "stacks/fleet/search/") {
			t.Errorf("%s: a host part of a stack of %d hosts (at most 128 a part)", p, hosts)
		}
	}
	order := func(a, b searchEntry) int {
		return cmp.Or(strings.Compare(a.U, b.U), strings.Compare(a.T, b.T), strings.Compare(a.K, b.K), strings.Compare(a.X, b.X))
	}
	want, got := searchIndex(t, whole), searchIndex(t, split)
	slices.SortFunc(want, order)
	slices.SortFunc(got, order)
	if !slices.Equal(got, want) {
		t.Errorf("split in parts, the index holds %d entries; whole, %d: not the same", len(got), len(want))
	}
	// Which host an entry is of: its page's, or its settings'.
	hostOf := regexp.MustCompile(`^stacks/fleet/hosts/([^/#.]+)\.html|^hosts\.([A-Za-z0-9_-]+)\.`)
	seen := 0
	for _, p := range partPaths {
		es, err := partEntries(p, split[p])
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			m := hostOf.FindStringSubmatch(e.U)
			if m == nil && e.K == "setting" {
				m = hostOf.FindStringSubmatch(e.T)
			}
			if m == nil {
				t.Errorf("%s: %+v is no host's", p, e)
				continue
			}
			if h := m[1] + m[2]; site.SearchHostPartOf("fleet", h, hosts) != p {
				t.Errorf("%s holds %+v of host %s, whose part is %s", p, e, h, site.SearchHostPartOf("fleet", h, hosts))
			}
			seen++
		}
	}
	if seen < hosts*10 {
		t.Errorf("the host parts hold %d entries; want at least 10 a host", seen)
	}
}
