//go:build unix

package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

// The targets table marks each target met or not from the rows of this
// revision alone (a base revision's rows are not this code's figures).
func TestTargets(t *testing.T) {
	rows := []Row{
		{Hosts: 1000, Case: caseFull, WallS: 0.4, CPUS: 0.7, MaxRSSM: 140},
		{Hosts: 10000, Case: caseFull, WallS: 5, CPUS: 9, MaxRSSM: 700},
		{Hosts: 10000, Case: caseOneHost, WallS: 0.5, CPUS: 2, MaxRSSM: 100},
		{Hosts: 10000, Case: caseNoop, WallS: 1, CPUS: 1, MaxRSSM: 50},
		{Hosts: 10000, Case: caseVet, WallS: 2.5, CPUS: 3, MaxRSSM: 300},
		// A base revision meeting everything changes nothing.
		{Hosts: 10000, Case: caseFull + baseSuffix, WallS: 1, CPUS: 1, MaxRSSM: 10},
		{Hosts: 10000, Case: caseVet + baseSuffix, WallS: 1, CPUS: 1, MaxRSSM: 10},
	}
	// Without the pairs (a report from before they were measured), the
	// growth is the two medians' ratio, marked so.
	got := targets(rows, nil, nil)
	wantAll(t, got,
		"| a one-host change ≤ 15 % of a full build | 10,000 | 10 % (wall), 22 % (CPU), the medians' ratio † | yes |",
		"| full build ≤ 600 MB peak RSS | 10,000 | 700 MB | no |",
		"| full build ≤ 0.5 s and ≤ 150 MB | 1,000 | 0.40 s, 140 MB | yes |",
		"| ×10 hosts ⇒ ≤ ×10 time (full build) | 10,000 | 12.5× (wall), 12.9× (CPU), the medians' ratio † | no |",
		"| vet ≤ 2 s | 10,000 | 2.50 s | no |",
		"| 10,000 | 10 % / 22 % † | – | 20 % / 11 % † | 12.5× / 12.9× † |",
		"† Not measured in pairs",
	)
	if strings.Contains(got, "\nIn pairs:") {
		t.Errorf("targets without pairs say they were measured in pairs:\n%s", got)
	}
	// With the pairs, their ratios are the growth and the shares,
	// whatever the medians'.
	got = targets(rows, []Paired{{Hosts: 10000, Case: caseFull, Wall: 9.5, CPU: 9.8, RSS: 4}},
		[]Paired{{Hosts: 10000, Case: caseOneHost, Wall: 0.2, CPU: 0.25, RSS: 1}, {Hosts: 10000, Case: caseNoop, Wall: 0.05, CPU: 0.04, RSS: 0.1}})
	wantAll(t, got,
		"| a one-host change ≤ 15 % of a full build | 10,000 | 20 % (wall), 25 % (CPU), in pairs | no |",
		"| ×10 hosts ⇒ ≤ ×10 time (full build) | 10,000 | 9.5× (wall), 9.8× (CPU), in pairs | yes |",
		"| 10,000 | 20 % / 25 % | – | 5 % / 4 % | 9.5× / 9.8× |",
		"\nIn pairs:",
	)
	if strings.Contains(got, "†") {
		t.Errorf("targets with pairs mark a ratio as the medians':\n%s", got)
	}
	// Nothing measured at a size: said so, never "met".
	got = targets(rows[:1], nil, nil)
	wantAll(t, got, "| vet ≤ 2 s | 10,000 | not measured | – |", "| a one-host change ≤ 15 % of a full build | 10,000 | not measured | – |")
	// A one-host change with no full build beside it: never "met".
	got = targets([]Row{{Hosts: 10000, Case: caseOneHost, WallS: 0.5, CPUS: 2}}, nil, nil)
	wantAll(t, got, "| a one-host change ≤ 15 % of a full build | 10,000 | no full build to compare with | no |")
}

// A pair's ratio is the median of each run's ratio, not the ratio of
// the medians: one pair that a slow moment split (this build slow, the
// base's fast) does not move it, while it moves the medians' ratio from
// 0.8 to 1.6.
func TestPairedRatio(t *testing.T) {
	s := func(wall float64, rss int64) Sample {
		return Sample{Wall: time.Duration(wall * float64(time.Second)), CPU: time.Duration(2 * wall * float64(time.Second)), MaxRSSKB: rss}
	}
	this := []Sample{s(0.8, 80), s(1.6, 160), s(1.6, 80)}
	base := []Sample{s(1.0, 100), s(1.0, 100), s(2.0, 100)}
	if r := median(1, "", this).WallS / median(1, "", base).WallS; math.Abs(r-1.6) > 1e-9 {
		t.Fatalf("the medians' ratio is %.2f; the test means it to be 1.6", r)
	}
	p := paired(1000, caseOneHost, this, base)
	if math.Abs(p.Wall-0.8) > 1e-9 || math.Abs(p.CPU-0.8) > 1e-9 || math.Abs(p.RSS-0.8) > 1e-9 {
		t.Errorf("paired = %+v; want 0.8 for wall, CPU and RSS", p)
	}
	rep := Report{Base: "abc1234", Rows: []Row{
		{Hosts: 1000, Case: caseOneHost + baseSuffix, WallS: 2, CPUS: 4, MaxRSSM: 100},
		{Hosts: 1000, Case: caseOneHost, WallS: 1.6, CPUS: 3.2, MaxRSSM: 80},
	}, Paired: []Paired{p}}
	md := markdown(rep)
	wantAll(t, md, "the median of each run's ratio", "| 1,000 | 0.80× / 0.80× / 0.80× |")
}

// wantAll reports each of want that got lacks.
func wantAll(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("lacks\n%s\nin\n%s", w, got)
		}
	}
}
