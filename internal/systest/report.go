//go:build unix

package systest

import (
	"fmt"
	"io"
	"strings"
)

// WriteText prints a report for people: one line a check, failures
// with their detail, and each load phase's figures.
func WriteText(w io.Writer, r *Report, color bool) {
	mark := func(ok bool) string {
		switch {
		case ok && color:
			return "\x1b[32mok\x1b[0m  "
		case ok:
			return "ok  "
		case color:
			return "\x1b[31mFAIL\x1b[0m"
		}
		return "FAIL"
	}
	fmt.Fprintf(w, "%s (%s): %s\n", r.Stack, r.OS, map[bool]string{true: "passed", false: "FAILED"}[r.OK])
	fmt.Fprintf(w, "  hosts started in %.1f s\n", r.StartS)
	for _, d := range r.Deviations {
		fmt.Fprintf(w, "  note: %s\n", d)
	}
	for _, sc := range r.Scenarios {
		fmt.Fprintf(w, "  %s %s (%.1f s)\n", mark(sc.OK), sc.Name, sc.Seconds)
		if sc.Note != "" {
			fmt.Fprintf(w, "        %s\n", sc.Note)
		}
		for _, p := range sc.Phases {
			fmt.Fprintf(w, "        %-28s %6d requests, %4d failed, p50 %6.1f ms, p99 %7.1f ms", p.Name, p.Stats.Requests, p.Stats.Failed, p.Stats.P50ms, p.Stats.P99ms)
			if p.DetectS >= 0 {
				fmt.Fprintf(w, ", out after %.1f s", p.DetectS)
			}
			if p.RecoverS >= 0 {
				fmt.Fprintf(w, ", back after %.1f s", p.RecoverS)
			}
			if p.FailWindowS > 0 {
				fmt.Fprintf(w, ", failures over %.1f s", p.FailWindowS)
			}
			fmt.Fprintln(w)
		}
		for _, c := range sc.Checks {
			if c.OK {
				fmt.Fprintf(w, "      %s %s\n", mark(true), c.What)
				continue
			}
			fmt.Fprintf(w, "      %s %s\n", mark(false), c.What)
			for _, l := range strings.Split(c.Detail, "\n") {
				if l != "" {
					fmt.Fprintf(w, "             %s\n", l)
				}
			}
		}
	}
	for _, k := range r.Kept {
		fmt.Fprintf(w, "  kept %s: %s\n", k.Host, k.Enter)
	}
}
