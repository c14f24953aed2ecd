package artifact_test

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
)

// compactNamesRE is CompactNames as it was written first, numbering names
// with a regular expression; the hand-written scan must agree with it.
func compactNamesRE(names []string) string {
	numbered := regexp.MustCompile(`^(.*?)(\d+)$`)
	type name struct {
		s, prefix, digits string
		n                 int
		ok                bool
	}
	ns := make([]name, len(names))
	for i, s := range names {
		ns[i] = name{s: s}
		if m := numbered.FindStringSubmatch(s); m != nil {
			if n, err := strconv.Atoi(m[2]); err == nil {
				ns[i] = name{s: s, prefix: m[1], digits: m[2], n: n, ok: true}
			}
		}
	}
	key := func(a name) string {
		if a.ok {
			return a.prefix
		}
		return a.s
	}
	b2i := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	slices.SortFunc(ns, func(a, b name) int {
		return cmp.Or(cmp.Compare(key(a), key(b)), cmp.Compare(b2i(a.ok), b2i(b.ok)), cmp.Compare(a.n, b.n), cmp.Compare(a.s, b.s))
	})
	next := func(a, b name) bool {
		if !a.ok || !b.ok || a.prefix != b.prefix || b.n != a.n+1 {
			return false
		}
		return len(a.digits) == len(b.digits) || a.digits[0] != '0' && b.digits[0] != '0'
	}
	var parts []string
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && next(ns[j], ns[j+1]) {
			j++
		}
		if j-i >= 2 {
			parts = append(parts, ns[i].s+"…"+ns[j].s)
		} else {
			for k := i; k <= j; k++ {
				parts = append(parts, ns[k].s)
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

func TestCompactNamesAsRegexp(t *testing.T) {
	odd := []string{"", "1", "2", "3", "007", "008", "009", "a\n1", "a\n2", "a\n3", "b1\n2", "b1\n3", "b1\n4",
		"app١", "app٢", "x99999999999999999999999", "x99999999999999999999998", "é1", "é2", "é3", "\xff1", "\xff2", "\xff3"}
	var fleet []string
	for i := range 40 {
		fleet = append(fleet, "app"+strconv.Itoa(i), "db"+strconv.Itoa(i%7), "w0"+strconv.Itoa(i))
	}
	for _, in := range [][]string{odd, fleet, append(slices.Clone(odd), fleet...)} {
		if got, want := artifact.CompactNames(in), compactNamesRE(in); got != want {
			t.Errorf("CompactNames(%q)\n= %q\nwant %q", in, got, want)
		}
	}
}
