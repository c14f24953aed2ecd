package main

import (
	"fmt"
	"slices"
	"strings"
)

// markdown lays a report out as BENCHMARKS.md's tables: a row per fleet
// size, median wall time / CPU time / peak RSS per case; this revision's
// ratios to the base revision's, case by case, when one was measured;
// then the full build's ratios to the other tools.
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
		fmt.Fprintf(&b, "\nThis revision ÷ %s (the same cases, the same run; wall time ×, CPU time ×, peak RSS ×):\n\n", rep.Base)
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
	if len(rep.Summaries) == 0 {
		return b.String()
	}
	b.WriteString("\n| hosts | full build ÷ cue export | ÷ floor | ÷ (cue export per-host files + hugo) | ÷ (… + hugo highlighted) | ÷ (same files: cue export + hugo) | no-op ÷ full |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range rep.Summaries {
		full, noop := cell[fmt.Sprint(s.Hosts, caseFull)].WallS, cell[fmt.Sprint(s.Hosts, "build (no-op)")].WallS
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
