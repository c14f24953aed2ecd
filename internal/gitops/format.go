package gitops

import (
	"fmt"
	"html"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/hacompile/hacompile/internal/termtext"
)

// TextOptions shape the terminal report.
type TextOptions struct {
	Stat  bool // the summary table alone, no diffs
	Color bool // ANSI colours: the caller decides (a TTY, no NO_COLOR)
	// Escape shows control characters of the rendered files (an escape
	// sequence a stack put in a file, say) as \xNN rather than writing
	// them to the terminal, where they would act: the caller sets it
	// for a TTY.
	Escape bool
}

// ANSI SGR sequences, git's choice of colours.
const (
	sgrBold  = "\x1b[1m"
	sgrRed   = "\x1b[31m"
	sgrGreen = "\x1b[32m"
	sgrCyan  = "\x1b[36m"
	sgrReset = "\x1b[0m"
)

// WriteText prints the summary table and, unless o.Stat, the unified
// diffs, with noisy changes summarised in one "#" line each.
func WriteText(w io.Writer, rep *Report, o TextOptions) error {
	ew := &errWriter{w: w}
	if !rep.Changed {
		fmt.Fprintf(ew, "No changes to the rendered files since %s.\n", baseWords(rep))
		writeConsequences(ew, rep)
		return ew.err
	}
	fmt.Fprintf(ew, "Rendered changes since %s:\n\n", baseWords(rep))
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STACK\tHOST\tADDED\tCHANGED\tREMOVED\tLINES\tIMPACT\tREBOOT")
	// Hosts whose change is the same to the byte share a row and one
	// diff, as in the pull-request comment.
	entries := mdEntries(rep)
	for _, e := range entries {
		h := e.h
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t+%d -%d\t%s\t%s\n", h.Stack, e.hostCell(), h.FilesAdded, h.FilesChanged, h.FilesRemoved,
			h.LinesAdded, h.LinesRemoved, impactCell(h.Impact), yesNo(h.Reboot))
	}
	tw.Flush()
	fmt.Fprintf(ew, "\n%s\n", summaryWords(rep, "-"))
	writeConsequences(ew, rep)
	if o.Stat {
		return ew.err
	}
	for _, e := range entries {
		h := e.h
		if len(e.hosts) > 1 {
			fmt.Fprintf(ew, "\n# same change on %s/%s: %d hosts; the diff shown is %s's\n", h.Stack, e.hostsWords(), len(e.hosts), h.Host)
		}
		if h.Status == Removed {
			fmt.Fprintf(ew, "\n# %s: %s\n", h.Dir(), removedWords(h))
			continue
		}
		fileGroups := h.FileGroups
		if fileGroups == nil {
			fileGroups = groupFiles(h)
		}
		inGroup := map[string]FileGroup{}
		for _, g := range fileGroups {
			for _, p := range g.Paths {
				inGroup[p] = g
			}
		}
		for _, f := range h.Files {
			g, grouped := inGroup[f.Path]
			if grouped && g.Paths[0] != f.Path {
				continue
			}
			fmt.Fprintln(ew)
			if f.Noise != "" {
				if grouped {
					fmt.Fprintf(ew, "# %s (%d files): %s each\n", fileRange(g), len(g.Paths), noiseWords(f, "-"))
				} else {
					fmt.Fprintf(ew, "# %s: %s\n", f.Path, noiseWords(f, "-"))
				}
				continue
			}
			if grouped {
				fmt.Fprintf(ew, "# same change in %d files, %s; the diff shown is %s's\n", len(g.Paths), fileRange(g), f.Path)
			}
			if len(f.Sources) > 0 {
				src := sourceWords(f.Sources, 0)
				if o.Escape {
					src = termtext.Escape(src)
				}
				fmt.Fprintf(ew, "# %s: from %s\n", f.Path, src)
			}
			d := f.Diff
			if o.Escape {
				d = termtext.Escape(d)
			}
			writeDiff(ew, d, o.Color)
		}
	}
	return ew.err
}

func writeDiff(w io.Writer, diff string, color bool) {
	if !color {
		io.WriteString(w, diff)
		return
	}
	for l := range strings.Lines(diff) {
		body := strings.TrimSuffix(l, "\n")
		sgr := ""
		switch {
		case strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "+++ "):
			sgr = sgrBold
		case strings.HasPrefix(l, "@@"):
			sgr = sgrCyan
		case strings.HasPrefix(l, "+"):
			sgr = sgrGreen
		case strings.HasPrefix(l, "-"):
			sgr = sgrRed
		}
		if sgr == "" {
			io.WriteString(w, l)
			continue
		}
		io.WriteString(w, sgr+body+sgrReset+l[len(body):])
	}
}

func baseWords(rep *Report) string {
	c := rep.Base.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	return fmt.Sprintf("%s (%s)", rep.Base.Rev, c)
}

// summaryWords is the one-line total; minus is the minus sign to use.
func summaryWords(rep *Report, minus string) string {
	s := rep.Summary
	hosts := fmt.Sprintf("%d %s changed", s.HostsChanged, plural(s.HostsChanged, "host", "hosts"))
	if s.HostsChanged == 0 {
		hosts = "stack files changed"
	}
	return fmt.Sprintf("%s in %d %s (%d unchanged): %d %s added, %d changed, %d removed, +%d %s%d lines",
		hosts, s.StacksChanged, plural(s.StacksChanged, "stack", "stacks"), s.HostsUnchanged,
		s.FilesAdded, plural(s.FilesAdded, "file", "files"), s.FilesChanged, s.FilesRemoved,
		s.LinesAdded, minus, s.LinesRemoved)
}

func noiseWords(f FileDiff, minus string) string {
	lines := fmt.Sprintf("+%d %s%d", f.LinesAdded, minus, f.LinesRemoved)
	switch f.Noise {
	case NoiseHeader:
		return "only the generated header changed (" + lines + ")"
	case NoiseManifest:
		return "only checksums, sizes and the source name changed (" + lines + ")"
	case NoiseSite:
		return fmt.Sprintf("runbook site page %s (%s)", f.Status, lines)
	case NoiseRemoved:
		return fmt.Sprintf("removed (%d %s)", f.LinesRemoved, plural(f.LinesRemoved, "line", "lines"))
	case NoiseBinary:
		return fmt.Sprintf("binary file %s", f.Status)
	}
	return string(f.Noise)
}

// removedWords sums up a removed host or stack, whose files need no
// reading line by line.
func removedWords(h HostDiff) string {
	what := "host"
	if h.Host == "" {
		what = "stack files"
	}
	return fmt.Sprintf("%s removed (%d %s, %d %s)", what, h.FilesRemoved, plural(h.FilesRemoved, "file", "files"),
		h.LinesRemoved, plural(h.LinesRemoved, "line", "lines"))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func hostCell(h string) string {
	if h == "" {
		return "-"
	}
	return h
}

func impactCell(i []string) string {
	if len(i) == 0 {
		return "-"
	}
	return strings.Join(i, ", ")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// errWriter keeps the first write error, so formatting code can print
// freely and check once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// GitHubCommentLimit is the most characters a GitHub pull-request
// comment may hold.
const GitHubCommentLimit = 65536

// MinMarkdownLimit is the smallest size WriteMarkdown accepts: room for
// the title, the totals and the truncation note.
const MinMarkdownLimit = 1024

// WriteMarkdown renders the report for a pull-request comment: the
// totals, the summary table, then one collapsed <details> section per
// changed host (unchanged hosts are not in the report). The result is
// at most limit bytes, and so at most limit characters: sections that
// do not fit are shortened to their summary, rows that do not fit are
// dropped, and a note says what was left out. Sections are never cut in
// the middle, so the Markdown stays well formed.
func WriteMarkdown(w io.Writer, rep *Report, limit int) error {
	if limit < MinMarkdownLimit {
		return fmt.Errorf("markdown size limit %d is below the minimum %d", limit, MinMarkdownLimit)
	}
	var b strings.Builder
	b.WriteString("### hacompile diff\n\n")
	if !rep.Changed {
		fmt.Fprintf(&b, "No changes to the rendered files since %s.\n", mdBase(rep))
		if c := consequenceLines(rep); c != "" {
			b.WriteString("\n" + c)
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(&b, "Rendered changes since %s: %s.\n\n", mdBase(rep), summaryWords(rep, "−"))
	b.WriteString(consequenceLines(rep))

	entries := mdEntries(rep)
	n := len(rep.Hosts)
	// The note is reserved at its longest, so it always fits.
	reserve := len(truncNote(limit, n, n, n, len(rep.Hosts)*1000000))
	fits := func(s string) bool { return b.Len()+len(s)+reserve <= limit }

	b.WriteString("| Stack | Host | Added | Changed | Removed | Lines | Impact | Reboot |\n| --- | --- | ---: | ---: | ---: | --- | --- | --- |\n")
	rows := 0
	for _, e := range entries {
		h := e.h
		row := fmt.Sprintf("| %s | %s | %d | %d | %d | +%d −%d | %s | %s |\n", mdCell(h.Stack), mdCell(e.hostCell()),
			h.FilesAdded, h.FilesChanged, h.FilesRemoved, h.LinesAdded, h.LinesRemoved, mdCell(impactCell(h.Impact)), yesNo(h.Reboot))
		if !fits(row) {
			break
		}
		b.WriteString(row)
		rows += e.n()
	}
	b.WriteString("\n")

	shown, shortened, diffsLeft := 0, 0, 0
	for _, e := range entries {
		if s, left := mdSection(e, true, limit-b.Len()-reserve); fits(s) {
			b.WriteString(s)
			shown += e.n()
			diffsLeft += left
			continue
		}
		if s, _ := mdSection(e, false, 0); fits(s) {
			b.WriteString(s)
			shortened += e.n()
		}
	}
	if rows < n || shown < n || diffsLeft > 0 {
		b.WriteString(truncNote(limit, n-rows, shortened, n-shown-shortened, diffsLeft))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdEntry is one row and section of the comment: a group of hosts with
// the same change, shown by its first host's diff, or a stack's own
// files.
type mdEntry struct {
	h     HostDiff
	hosts []string // the group's hosts; nil for stack files
	rng   string
}

func (e mdEntry) n() int { return max(1, len(e.hosts)) }

// mdRangeParts is how many names or runs of a group's host listing a
// comment shows; the JSON report lists them all.
const mdRangeParts = 16

// hostsWords lists the group's hosts, cut after mdRangeParts runs.
func (e mdEntry) hostsWords() string { return capRange(e.rng) }

// capRange cuts a CompactNames listing after mdRangeParts runs.
func capRange(r string) string {
	parts := strings.Split(r, ", ")
	if len(parts) > mdRangeParts {
		return strings.Join(parts[:mdRangeParts], ", ") + ", …"
	}
	return r
}

// fileRange is a file group's listing for the comment, cut like a
// host listing.
func fileRange(g FileGroup) string {
	i, j := strings.Index(g.Range, "/{"), strings.LastIndex(g.Range, "}")
	if i < 0 || j < i {
		return g.Range
	}
	return g.Range[:i+2] + capRange(g.Range[i+2:j]) + g.Range[j:]
}

func (e mdEntry) hostCell() string {
	if len(e.hosts) > 1 {
		return fmt.Sprintf("%s (%d hosts)", e.hostsWords(), len(e.hosts))
	}
	return hostCell(e.h.Host)
}

// mdEntries orders the comment: per stack, its host groups (biggest
// first), then the stack's own files.
func mdEntries(rep *Report) []mdEntry {
	groups := rep.Groups
	if groups == nil {
		groups = groupHosts(rep.Hosts)
	}
	byName := map[string]HostDiff{}
	var stacks []string
	for _, h := range rep.Hosts {
		byName[h.Stack+"/"+h.Host] = h
		if len(stacks) == 0 || stacks[len(stacks)-1] != h.Stack {
			stacks = append(stacks, h.Stack)
		}
	}
	var out []mdEntry
	for _, s := range stacks {
		for _, g := range groups {
			if g.Stack == s {
				out = append(out, mdEntry{h: byName[s+"/"+g.Hosts[0]], hosts: g.Hosts, rng: g.Range})
			}
		}
		if h, ok := byName[s+"/"]; ok {
			out = append(out, mdEntry{h: h})
		}
	}
	return out
}

// truncNote says what a cut comment leaves out: table rows, hosts
// listed without their diff, and hosts left out altogether.
func truncNote(limit, rowsLeft, shortened, omitted, diffsLeft int) string {
	var parts []string
	if diffsLeft > 0 {
		parts = append(parts, fmt.Sprintf("%d %s not shown", diffsLeft, plural(diffsLeft, "file diff", "file diffs")))
	}
	if shortened > 0 {
		parts = append(parts, fmt.Sprintf("%d %s listed without %s diff", shortened, plural(shortened, "host", "hosts"), plural(shortened, "its", "their")))
	}
	if omitted > 0 {
		parts = append(parts, fmt.Sprintf("%d %s left out", omitted, plural(omitted, "host", "hosts")))
	}
	if rowsLeft > 0 {
		parts = append(parts, fmt.Sprintf("%d %s missing from the table", rowsLeft, plural(rowsLeft, "host", "hosts")))
	}
	return fmt.Sprintf("> [!NOTE]\n> Truncated to fit a pull-request comment of %d characters: %s. Run `hacompile diff` for the full diff.\n",
		limit, strings.Join(parts, ", "))
}

func mdBase(rep *Report) string {
	c := rep.Base.Commit
	if len(c) > 12 {
		c = c[:12]
	}
	return fmt.Sprintf("%s (`%s`)", html.EscapeString(rep.Base.Rev), c)
}

// mdCell keeps a value from breaking the table.
func mdCell(s string) string { return strings.ReplaceAll(html.EscapeString(s), "|", `\|`) }

// mdSection is an entry's collapsible section; without full, its
// summary and a word on why the diff is missing. A full section stays
// within room bytes if it can by listing the files whose diffs do not
// fit in one line each, and says how many it left out.
func mdSection(e mdEntry, full bool, room int) (string, int) {
	h := e.h
	var b strings.Builder
	counts := fmt.Sprintf("%d added, %d changed, %d removed, +%d −%d", h.FilesAdded, h.FilesChanged, h.FilesRemoved, h.LinesAdded, h.LinesRemoved)
	impact := ""
	if len(h.Impact) > 0 {
		impact = "; " + strings.Join(h.Impact, ", ")
	}
	name, status := h.Name(), string(h.Status)
	switch {
	case h.Host == "":
		name += " (stack files)"
	case len(e.hosts) > 1:
		name = h.Stack + "/" + e.hostsWords()
		status += fmt.Sprintf(" on %d hosts", len(e.hosts))
		counts += " each"
	}
	fmt.Fprintf(&b, "<details>\n<summary><code>%s</code> %s: %s%s</summary>\n\n", html.EscapeString(name), status, counts, html.EscapeString(impact))
	if len(e.hosts) > 1 {
		fmt.Fprintf(&b, "Same change on %s: %d hosts. The diff shown is %s's.\n\n", html.EscapeString(e.hostsWords()), len(e.hosts), html.EscapeString(h.Host))
	}
	switch {
	case !full:
		b.WriteString("Diff not shown: too large for this comment.\n\n</details>\n\n")
		return b.String(), 0
	case h.Status == Removed:
		fmt.Fprintf(&b, "`%s`: %s.\n\n</details>\n\n", h.Dir(), removedWords(h))
		return b.String(), 0
	}
	fileGroups := h.FileGroups
	if fileGroups == nil {
		fileGroups = groupFiles(h)
	}
	inGroup := map[string]FileGroup{}
	for _, g := range fileGroups {
		for _, p := range g.Paths {
			inGroup[p] = g
		}
	}
	// The files shown: one per group.
	var files []FileDiff
	for _, f := range h.Files {
		if g, grouped := inGroup[f.Path]; !grouped || g.Paths[0] == f.Path {
			files = append(files, f)
		}
	}
	left := 0
	for i, f := range files {
		g, grouped := inGroup[f.Path]
		if f.Noise != "" {
			if grouped {
				fmt.Fprintf(&b, "- `%s` (%d files): %s each\n\n", fileRange(g), len(g.Paths), noiseWords(f, "−"))
			} else {
				fmt.Fprintf(&b, "- `%s`: %s\n\n", f.Path, noiseWords(f, "−"))
			}
			continue
		}
		var blk strings.Builder
		if grouped {
			fmt.Fprintf(&blk, "Same change in %d files, `%s`; the diff shown is `%s`'s:\n\n", len(g.Paths), fileRange(g), f.Path)
		}
		if len(f.Sources) > 0 {
			fmt.Fprintf(&blk, "From %s:\n\n", mdSources(f.Sources))
		}
		fence := strings.Repeat("`", max(3, longestRun(f.Diff, '`')+1))
		fmt.Fprintf(&blk, "%sdiff\n%s", fence, f.Diff)
		if !strings.HasSuffix(f.Diff, "\n") {
			blk.WriteString("\n")
		}
		blk.WriteString(fence + "\n\n")
		// Room is kept for the rest of the files' one-line entries.
		if b.Len()+blk.Len()+len(sectionEnd)+mdFileLineMax*(len(files)-i-1) > room {
			where := "`" + f.Path + "`"
			if grouped {
				where = fmt.Sprintf("`%s` (%d files)", fileRange(g), len(g.Paths))
			}
			fmt.Fprintf(&b, "- %s: +%d −%d, diff not shown: too large for this comment\n\n", where, f.LinesAdded, f.LinesRemoved)
			left++
			continue
		}
		b.WriteString(blk.String())
	}
	b.WriteString(sectionEnd)
	return b.String(), left
}

const sectionEnd = "</details>\n\n"

// mdFileLineMax is the room kept for each file of a section still to
// come, should its diff not fit: a one-line entry.
const mdFileLineMax = 160

func longestRun(s string, c byte) int {
	best, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			run++
			best = max(best, run)
		} else {
			run = 0
		}
	}
	return best
}

// mdSourceMax is how many stack fields a comment names per file; the
// JSON report names them all.
const mdSourceMax = 4

// sourceWords lists the fields a file comes from; limit > 0 cuts the
// list after limit fields.
func sourceWords(refs []SourceRef, limit int) string {
	var parts []string
	for i, r := range refs {
		if limit > 0 && i == limit {
			parts = append(parts, fmt.Sprintf("%d more", len(refs)-i))
			break
		}
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ", ")
}

// mdSources is sourceWords in Markdown: each field as code.
func mdSources(refs []SourceRef) string {
	var parts []string
	for i, r := range refs {
		if i == mdSourceMax {
			parts = append(parts, fmt.Sprintf("%d more", len(refs)-i))
			break
		}
		where := fmt.Sprintf("%s:%d", r.File, r.Line)
		if r.Removed {
			where = "removed; was " + where
		}
		parts = append(parts, fmt.Sprintf("`%s` (%s)", strings.ReplaceAll(r.Field, "`", "'"), html.EscapeString(where)))
	}
	return strings.Join(parts, ", ")
}
