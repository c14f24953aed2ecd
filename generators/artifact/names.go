package artifact

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// CompactNames lists names in natural order (app2 before app10) with
// runs of three or more consecutive numbers shortened to their ends:
// "app1…app998, app1000, db1, db2".
func CompactNames(names []string) string {
	var b strings.Builder
	for i, r := range CompactRuns(names) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(r.First)
		if r.Last != r.First {
			b.WriteString("…" + r.Last)
		}
	}
	return b.String()
}

// NameRun is one item of a CompactNames list: a run of three or more
// consecutively numbered names, by its ends, or one name (First ==
// Last).
type NameRun struct{ First, Last string }

// CompactRuns is the list CompactNames writes, item by item, for those
// that write it another way (the runbook links each end to its host).
func CompactRuns(names []string) []NameRun {
	ns := make([]name, len(names))
	for i, s := range names {
		ns[i] = name{s: s}
		if prefix, digits, n, ok := splitNumber(s); ok {
			ns[i] = name{s: s, prefix: prefix, digits: digits, n: n, ok: true}
		}
	}
	// Sorted by each name's group (its prefix, or the whole name when it
	// has no number) ranked first: a fleet's lists are thousands of names
	// of a few groups, and comparing the strings was most of the cost.
	rank := map[string]int{}
	for i := range ns {
		rank[group(&ns[i])] = 0
	}
	groups := make([]string, 0, len(rank))
	for g := range rank {
		groups = append(groups, g)
	}
	slices.Sort(groups)
	for i, g := range groups {
		rank[g] = i
	}
	type key struct {
		rank, ok, n int
		i           int32
	}
	keys := make([]key, len(ns))
	for i := range ns {
		keys[i] = key{rank[group(&ns[i])], b2i(ns[i].ok), ns[i].n, int32(i)}
	}
	slices.SortFunc(keys, func(a, b key) int {
		// Not cmp.Or, which compares the strings every time.
		if c := cmp.Compare(a.rank, b.rank); c != 0 {
			return c
		}
		if c := cmp.Compare(a.ok, b.ok); c != 0 {
			return c
		}
		if c := cmp.Compare(a.n, b.n); c != 0 {
			return c
		}
		return strings.Compare(ns[a.i].s, ns[b.i].s)
	})
	// at is the k-th name in that order.
	at := func(k int) *name { return &ns[keys[k].i] }
	// next reports whether b directly follows a: same prefix, the next
	// number, written the same way (app09, app10 follow; app9, app010
	// do not).
	next := func(a, b *name) bool {
		if !a.ok || !b.ok || a.prefix != b.prefix || b.n != a.n+1 {
			return false
		}
		return len(a.digits) == len(b.digits) || a.digits[0] != '0' && b.digits[0] != '0'
	}
	var runs []NameRun
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && next(at(j), at(j+1)) {
			j++
		}
		switch {
		case j-i >= 2:
			runs = append(runs, NameRun{at(i).s, at(j).s})
		default:
			for k := i; k <= j; k++ {
				runs = append(runs, NameRun{at(k).s, at(k).s})
			}
		}
		i = j + 1
	}
	return runs
}

// name is a name as CompactRuns orders it.
type name struct {
	s, prefix, digits string
	n                 int
	ok                bool
}

// group is what names sort by first: the prefix of a numbered name, a
// name without a number whole (after the numbered ones of that prefix).
func group(n *name) string {
	if n.ok {
		return n.prefix
	}
	return n.s
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// splitNumber splits a name into its prefix and its number, the trailing
// run of ASCII digits; ok is false when there is none, the number does
// not fit an int, or the prefix spans lines.
func splitNumber(s string) (prefix, digits string, n int, ok bool) {
	d := len(s)
	for d > 0 && '0' <= s[d-1] && s[d-1] <= '9' {
		d--
	}
	if d == len(s) || strings.Contains(s[:d], "\n") {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(s[d:])
	if err != nil {
		return "", "", 0, false
	}
	return s[:d], s[d:], n, true
}

// AndSoOn says the hosts after the first that a diagnostic about the
// first holds for too: ", and so on app2-app4"; "" for one host.
func AndSoOn(hosts []string) string {
	if len(hosts) < 2 {
		return ""
	}
	return ", and so on " + CompactNames(hosts[1:])
}
