//go:build unix

package main

import (
	"fmt"
	"slices"
	"strings"
)

// markdown lays a report out as BENCHMARKS.md's tables: a row per fleet
// size, median wall time / CPU time / peak RSS per case; this revision's
// ratios to the base revision's, case by case, when one was measured
// (the median of each run's ratio when the two ran in turn); the
// targets; then the full build's ratios to the other tools.
func markdown(rep Report) string {
	var cases []string
	var sizes []int
	cell := map[string]Row{}
	for _, r := range rep.Rows {
		if !slices.Contains(cases, r.Case) {
			cases = append(cases, r.Case)
		}
		if !slices.Contains(sizes, r.Hosts) {
			sizes = append(sizes, r.Hosts)
		}
		cell[fmt.Sprint(r.Hosts, r.Case)] = r
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Fleets on %s; %s.\n\n", rep.Dir, rep.Machine)
	b.WriteString("| hosts | files | " + strings.Join(cases, " | ") + " |\n|---:|---:|" + strings.Repeat("---:|", len(cases)) + "\n")
	for _, n := range sizes {
		fmt.Fprintf(&b, "| %s | %s |", thousands(n), thousands(cell[fmt.Sprint(n, caseFull)].Files))
		for _, c := range cases {
			r := cell[fmt.Sprint(n, c)]
			fmt.Fprintf(&b, " %.2f s / %.2f s / %.0f MB |", r.WallS, r.CPUS, r.MaxRSSM)
		}
		b.WriteString("\n")
	}
	if rep.Base != "" {
		// This revision beside the base, case by case: time and peak
		// memory as ratios (below 1: this one is faster, smaller).
		how := "the same cases, the same run"
		ratio := map[string]Paired{}
		for _, p := range rep.Paired {
			ratio[fmt.Sprint(p.Hosts, p.Case)] = p
		}
		if len(ratio) > 0 {
			how = "each case run by run in turn, the two builds alternating; the median of each run's ratio"
		}
		fmt.Fprintf(&b, "\nThis revision ÷ %s (%s; wall time ×, CPU time ×, peak RSS ×):\n\n", rep.Base, how)
		var own []string
		for _, c := range cases {
			if !strings.HasSuffix(c, baseSuffix) && slices.Contains(cases, c+baseSuffix) {
				own = append(own, c)
			}
		}
		b.WriteString("| hosts | " + strings.Join(own, " | ") + " |\n|---:|" + strings.Repeat("---:|", len(own)) + "\n")
		for _, n := range sizes {
			fmt.Fprintf(&b, "| %s |", thousands(n))
			for _, c := range own {
				if p, ok := ratio[fmt.Sprint(n, c)]; ok {
					fmt.Fprintf(&b, " %.2f× / %.2f× / %.2f× |", p.Wall, p.CPU, p.RSS)
					continue
				}
				x, y := cell[fmt.Sprint(n, c)], cell[fmt.Sprint(n, c+baseSuffix)]
				if y.WallS == 0 || y.CPUS == 0 || y.MaxRSSM == 0 {
					b.WriteString(" – |")
					continue
				}
				fmt.Fprintf(&b, " %.2f× / %.2f× / %.2f× |", x.WallS/y.WallS, x.CPUS/y.CPUS, x.MaxRSSM/y.MaxRSSM)
			}
			b.WriteString("\n")
		}
	}
	b.WriteString(targets(rep.Rows, rep.Scale, rep.Shares))
	if len(rep.Summaries) == 0 {
		return b.String()
	}
	b.WriteString("\n| hosts | full build ÷ cue export | ÷ floor | ÷ (cue export per-host files + hugo) | ÷ (… + hugo highlighted) | ÷ (same files: cue export + hugo) | no-op ÷ full |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range rep.Summaries {
		full, noop := cell[fmt.Sprint(s.Hosts, caseFull)].WallS, cell[fmt.Sprint(s.Hosts, caseNoop)].WallS
		pct := 0.0
		if full > 0 {
			pct = 100 * noop / full
		}
		fmt.Fprintf(&b, "| %s | %.1f× | %.1f× | %.2f× (%.2f s) | %.2f× (%.2f s) | %.2f× (%.2f s) | %.0f %% |\n",
			thousands(s.Hosts), s.FullOverCUE, s.FullOverFloor, s.FullOverChain, s.ChainS, s.FullOverChainHL, s.ChainHLS, s.FullOverChainSame, s.ChainSameS, pct)
	}
	return b.String()
}

// thousands writes n with thousands separators: 10,000.
func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// targets lays out this revision's figures against the incremental-build
// targets (issue #22): a change's cost as a share of a full build at the
// same size, growth from a tenth of the hosts, and the absolute bounds,
// each marked met or not, by wall time and by CPU time. The growth is
// scale's ratio, measured in pairs (a full build at a tenth of the hosts,
// then one at all of them, run by run), and the rebuilds' shares are
// shares' (each beside a full build, run by run); a ratio not measured
// so (a report from before, or the one-stack change) is the two
// medians' ratio, marked †.
func targets(rows []Row, scale, shares []Paired) string {
	cell := map[string]Row{}
	var sizes []int
	for _, r := range rows {
		if strings.HasSuffix(r.Case, baseSuffix) {
			continue
		}
		cell[fmt.Sprint(r.Hosts, r.Case)] = r
		if !slices.Contains(sizes, r.Hosts) {
			sizes = append(sizes, r.Hosts)
		}
	}
	get := func(n int, c string) (Row, bool) {
		r, ok := cell[fmt.Sprint(n, c)]
		return r, ok && r.WallS > 0 && r.CPUS > 0
	}
	pair := func(ps []Paired, n int, c string) (wall, cpu float64, ok bool) {
		for _, p := range ps {
			if p.Hosts == n && p.Case == c && p.Wall > 0 && p.CPU > 0 {
				return p.Wall, p.CPU, true
			}
		}
		return 0, 0, false
	}
	// ratio is case c at n hosts ÷ case d at m hosts: in pairs when
	// measured so (ps), else the two medians' ratio (apart is true).
	ratio := func(ps []Paired, n int, c string, m int, d string) (wall, cpu float64, apart, ok bool) {
		if wall, cpu, ok := pair(ps, n, c); ok {
			return wall, cpu, false, true
		}
		x, ok1 := get(n, c)
		y, ok2 := get(m, d)
		if !ok1 || !ok2 {
			return 0, 0, false, false
		}
		return x.WallS / y.WallS, x.CPUS / y.CPUS, true, true
	}
	// growth is the full build at n hosts ÷ at n/10.
	growth := func(n int) (wall, cpu float64, apart, ok bool) {
		if n%10 != 0 {
			return 0, 0, false, false
		}
		return ratio(scale, n, caseFull, n/10, caseFull)
	}
	share := func(n int, c string) (wall, cpu float64, apart, ok bool) {
		return ratio(shares, n, c, n, caseFull)
	}
	var b strings.Builder
	b.WriteString("\nAgainst the targets (this revision; wall time / CPU time):\n\n| hosts | one host changed ÷ full | one stack of two changed ÷ full | no-op ÷ full | full ÷ full at a tenth of the hosts |\n|---:|---:|---:|---:|---:|\n")
	inPairs, apart := false, false
	cellOf := func(wall, cpu float64, a, ok bool, format string) string {
		if !ok {
			return "–"
		}
		s := fmt.Sprintf(format, wall, cpu)
		if a {
			s += " †"
		}
		inPairs, apart = inPairs || !a, apart || a
		return s
	}
	pct := func(wall, cpu float64, a, ok bool) string {
		return cellOf(100*wall, 100*cpu, a, ok, "%.0f %% / %.0f %%")
	}
	for _, n := range sizes {
		w, c, a, ok := growth(n)
		g := cellOf(w, c, a, ok, "%.1f× / %.1f×")
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", thousands(n), pct(share(n, caseOneHost)), pct(share(n, caseOneStack)), pct(share(n, caseNoop)), g)
	}
	if inPairs {
		b.WriteString("\nIn pairs: a rebuild beside a full build at its size (one host changed, no-op), and a full build at a tenth of the hosts beside one at all of them, each full build into an empty directory, in turn run by run; the median of each pair's ratio.\n")
	}
	if apart {
		b.WriteString("\n† Not measured in pairs (the one-stack change, or a report from before they were): the ratio of the two cases' medians, measured minutes apart, which the machine's drift moves.\n")
	}
	how := func(medians bool) string {
		if medians {
			return "the medians' ratio †"
		}
		return "in pairs"
	}
	type target struct {
		what string
		n    int
		c    string
		ok   func(r, full Row) (string, bool)
	}
	list := []target{
		{"a one-host change ≤ 15 % of a full build", 10000, caseOneHost, func(r, _ Row) (string, bool) {
			wall, cpu, medians, ok := share(r.Hosts, caseOneHost)
			if !ok {
				return "no full build to compare with", false
			}
			return fmt.Sprintf("%.0f %% (wall), %.0f %% (CPU), %s", 100*wall, 100*cpu, how(medians)), wall <= 0.15
		}},
		{"full build ≤ 600 MB peak RSS", 10000, caseFull, func(r, _ Row) (string, bool) {
			return fmt.Sprintf("%.0f MB", r.MaxRSSM), r.MaxRSSM <= 600
		}},
		{"full build ≤ 0.5 s and ≤ 150 MB", 1000, caseFull, func(r, _ Row) (string, bool) {
			return fmt.Sprintf("%.2f s, %.0f MB", r.WallS, r.MaxRSSM), r.WallS <= 0.5 && r.MaxRSSM <= 150
		}},
		{"×10 hosts ⇒ ≤ ×10 time (full build)", 10000, caseFull, func(r, _ Row) (string, bool) {
			wall, cpu, medians, ok := growth(r.Hosts)
			if !ok {
				return "not measured at a tenth of the hosts", false
			}
			return fmt.Sprintf("%.1f× (wall), %.1f× (CPU), %s", wall, cpu, how(medians)), wall <= 10
		}},
		{"vet ≤ 2 s", 10000, caseVet, func(r, _ Row) (string, bool) {
			return fmt.Sprintf("%.2f s", r.WallS), r.WallS <= 2
		}},
	}
	b.WriteString("\n| target | hosts | measured | met |\n|---|---:|---|---|\n")
	for _, t := range list {
		r, ok := get(t.n, t.c)
		full, _ := get(t.n, caseFull)
		if !ok {
			fmt.Fprintf(&b, "| %s | %s | not measured | – |\n", t.what, thousands(t.n))
			continue
		}
		text, met := t.ok(r, full)
		mark := "no"
		if met {
			mark = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.what, thousands(t.n), text, mark)
	}
	return b.String()
}
