package gitops_test

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/gitops"
)

// bigReport is a comparison with a changed, an added and a removed
// host and an added stack: several kilobytes of diff.
func bigReport(t *testing.T) *gitops.Report {
	t.Helper()
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("web")
	r.write(map[string]string{
		"stacks/web.cue": strings.Replace(strings.Replace(webStack, "app2:", "app7:", 1), "cores: 2", "cores: 3", 1),
		"stacks/api.cue": apiStack,
	})
	return diff(t, r, "HEAD")
}

// TestMarkdown: one collapsed section per changed host (unchanged hosts
// hidden), diffs fenced as diff, noise summarised.
func TestMarkdown(t *testing.T) {
	rep := bigReport(t)
	var b strings.Builder
	if err := gitops.WriteMarkdown(&b, rep, 1<<20); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	if n := strings.Count(md, "<details>"); n != len(rep.Hosts) || n != strings.Count(md, "</details>") {
		t.Errorf("%d <details> for %d changed hosts", n, len(rep.Hosts))
	}
	for _, want := range []string{
		"### hacompile diff\n\nRendered changes since HEAD (`",
		"| Stack | Host | Added | Changed | Removed | Lines | Impact | Reboot |\n| --- | --- | ---: | ---: | ---: | --- | --- | --- |\n",
		"| web | app1 | 0 | 1 | 0 | +2 −2 | reload app | no |\n",
		"```diff\n--- a/web/hosts/app1/etc/app/gunicorn.conf.py\n+++ b/web/hosts/app1/etc/app/gunicorn.conf.py\n@@ ",
		"<summary><code>api (stack files)</code> added:",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
	if strings.Contains(md, "Truncated") {
		t.Error("truncated under a limit it fits in")
	}

	var none strings.Builder
	if err := gitops.WriteMarkdown(&none, &gitops.Report{Base: rep.Base, Hosts: []gitops.HostDiff{}}, gitops.GitHubCommentLimit); err != nil {
		t.Fatal(err)
	}
	if want := "### hacompile diff\n\nNo changes to the rendered files since HEAD (`" + rep.Base.Commit[:12] + "`).\n"; none.String() != want {
		t.Errorf("no changes:\n%s\nwant:\n%s", none.String(), want)
	}
}

// TestMarkdownTruncated: under a small cap the comment stays within it,
// keeps its Markdown balanced (whole sections only, closed fences), and
// ends with a note saying what is missing.
func TestMarkdownTruncated(t *testing.T) {
	rep := bigReport(t)
	var full strings.Builder
	if err := gitops.WriteMarkdown(&full, rep, 1<<20); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{gitops.MinMarkdownLimit, 3000, 8000, gitops.GitHubCommentLimit, len(full.String()) - 1} {
		var b strings.Builder
		if err := gitops.WriteMarkdown(&b, rep, limit); err != nil {
			t.Fatal(err)
		}
		md := b.String()
		if len(md) > limit {
			t.Errorf("limit %d: %d bytes", limit, len(md))
		}
		if strings.Count(md, "<details>") != strings.Count(md, "</details>") || strings.Count(md, "```")%2 != 0 {
			t.Errorf("limit %d: unbalanced markdown:\n%s", limit, md)
		}
		note := regexp.MustCompile("(?m)^> \\[!NOTE\\]\n> Truncated to fit a pull-request comment of " + strconv.Itoa(limit) + " characters: " +
			"(\\d+ file diffs? not shown)?(, )?(\\d+ hosts? listed without (its|their) diff)?(, )?(\\d+ hosts? left out)?(, )?(\\d+ hosts? missing from the table)?\\. Run `hacompile diff` for the full diff\\.\n\\z")
		if !note.MatchString(md) {
			t.Errorf("limit %d: no truncation note at the end:\n%s", limit, md[max(0, len(md)-400):])
		}
	}
	if err := gitops.WriteMarkdown(&strings.Builder{}, rep, 100); err == nil {
		t.Error("a limit below the minimum was accepted")
	}
}

// synthetic is a small report written by hand, so the text and
// Markdown layouts are pinned whatever the generators render.
func synthetic() *gitops.Report {
	diff := "--- a/web/hosts/app1/etc/app/gunicorn.conf.py\n+++ b/web/hosts/app1/etc/app/gunicorn.conf.py\n@@ -1,3 +1,3 @@\n bind = x\n-workers = 5\n+workers = 9\n timeout = 30\n"
	return &gitops.Report{
		Base: gitops.RevInfo{Rev: "main", Commit: "0123456789abcdef0123456789abcdef01234567"},
		Head: "working tree", Changed: true,
		Summary: gitops.Summary{StacksChanged: 1, HostsChanged: 2, HostsUnchanged: 3, FilesChanged: 3, FilesRemoved: 2, LinesAdded: 3, LinesRemoved: 13},
		Hosts: []gitops.HostDiff{
			{Stack: "web", Host: "app1", Status: gitops.Changed, FilesChanged: 2, LinesAdded: 2, LinesRemoved: 2, Impact: []string{"daemon-reload", "reload app"},
				Files: []gitops.FileDiff{
					{Path: "web/hosts/app1/etc/app/gunicorn.conf.py", Status: gitops.Changed, Kind: "gunicorn", Impact: []string{"reload app"}, LinesAdded: 1, LinesRemoved: 1, Diff: diff},
					{Path: "web/hosts/app1/etc/systemd/system/app.service", Status: gitops.Changed, Kind: "systemd", Impact: []string{"daemon-reload"}, LinesAdded: 1, LinesRemoved: 1, Noise: gitops.NoiseHeader},
				}},
			{Stack: "web", Host: "app2", Status: gitops.Removed, FilesRemoved: 2, LinesRemoved: 10, Impact: []string{"decommission"},
				Files: []gitops.FileDiff{
					{Path: "web/hosts/app2/a", Status: gitops.Removed, Impact: []string{}, LinesRemoved: 4, Noise: gitops.NoiseRemoved},
					{Path: "web/hosts/app2/b", Status: gitops.Removed, Impact: []string{}, LinesRemoved: 6, Noise: gitops.NoiseRemoved},
				}},
			{Stack: "web", Status: gitops.Changed, FilesChanged: 1, LinesAdded: 1, LinesRemoved: 1, Impact: []string{},
				Files: []gitops.FileDiff{{Path: "web/manifest.json", Status: gitops.Changed, Kind: "manifest", Impact: []string{}, LinesAdded: 1, LinesRemoved: 1, Noise: gitops.NoiseManifest}}},
		},
	}
}

// TestText pins the terminal report: the table, the totals, then the
// diffs with noise summarised in "#" lines; --stat stops after the
// totals; colour only when asked for, on diff lines alone.
func TestText(t *testing.T) {
	rep := synthetic()
	var plain, stat, color strings.Builder
	for _, c := range []struct {
		b *strings.Builder
		o gitops.TextOptions
	}{{&plain, gitops.TextOptions{}}, {&stat, gitops.TextOptions{Stat: true}}, {&color, gitops.TextOptions{Color: true}}} {
		if err := gitops.WriteText(c.b, rep, c.o); err != nil {
			t.Fatal(err)
		}
	}
	wantStat := `Rendered changes since main (0123456789ab):

STACK  HOST  ADDED  CHANGED  REMOVED  LINES   IMPACT                     REBOOT
web    app1  0      2        0        +2 -2   daemon-reload, reload app  no
web    app2  0      0        2        +0 -10  decommission               no
web    -     0      1        0        +1 -1   -                          no

2 hosts changed in 1 stack (3 unchanged): 0 files added, 3 changed, 2 removed, +3 -13 lines
`
	wantDiffs := `
--- a/web/hosts/app1/etc/app/gunicorn.conf.py
+++ b/web/hosts/app1/etc/app/gunicorn.conf.py
@@ -1,3 +1,3 @@
 bind = x
-workers = 5
+workers = 9
 timeout = 30

# web/hosts/app1/etc/systemd/system/app.service: only the generated header changed (+1 -1)

# web/hosts/app2: host removed (2 files, 10 lines)

# web/manifest.json: only checksums, sizes and the source name changed (+1 -1)
`
	if stat.String() != wantStat {
		t.Errorf("--stat:\n%s\nwant:\n%s", stat.String(), wantStat)
	}
	if plain.String() != wantStat+wantDiffs {
		t.Errorf("text:\n%s\nwant:\n%s", plain.String(), wantStat+wantDiffs)
	}
	for _, want := range []string{"\x1b[31m-workers = 5\x1b[0m\n", "\x1b[32m+workers = 9\x1b[0m\n", "\x1b[36m@@ -1,3 +1,3 @@\x1b[0m\n", "\x1b[1m--- a/web/hosts/app1/etc/app/gunicorn.conf.py\x1b[0m\n", "\n bind = x\n"} {
		if !strings.Contains(color.String(), want) {
			t.Errorf("coloured text lacks %q", want)
		}
	}
	if stripped := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(color.String(), ""); stripped != plain.String() {
		t.Error("colour changed more than the escape sequences")
	}

	var none strings.Builder
	if err := gitops.WriteText(&none, &gitops.Report{Base: rep.Base}, gitops.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	if want := "No changes to the rendered files since main (0123456789ab).\n"; none.String() != want {
		t.Errorf("no changes: %q, want %q", none.String(), want)
	}
}

// TestMarkdownLayout pins the pull-request comment of a small report.
func TestMarkdownLayout(t *testing.T) {
	var b strings.Builder
	if err := gitops.WriteMarkdown(&b, synthetic(), gitops.GitHubCommentLimit); err != nil {
		t.Fatal(err)
	}
	want := "### hacompile diff\n\n" +
		"Rendered changes since main (`0123456789ab`): 2 hosts changed in 1 stack (3 unchanged): 0 files added, 3 changed, 2 removed, +3 −13 lines.\n\n" +
		"| Stack | Host | Added | Changed | Removed | Lines | Impact | Reboot |\n| --- | --- | ---: | ---: | ---: | --- | --- | --- |\n" +
		"| web | app1 | 0 | 2 | 0 | +2 −2 | daemon-reload, reload app | no |\n" +
		"| web | app2 | 0 | 0 | 2 | +0 −10 | decommission | no |\n" +
		"| web | - | 0 | 1 | 0 | +1 −1 | - | no |\n\n" +
		"<details>\n<summary><code>web/app1</code> changed: 0 added, 2 changed, 0 removed, +2 −2; daemon-reload, reload app</summary>\n\n" +
		"```diff\n--- a/web/hosts/app1/etc/app/gunicorn.conf.py\n+++ b/web/hosts/app1/etc/app/gunicorn.conf.py\n@@ -1,3 +1,3 @@\n bind = x\n-workers = 5\n+workers = 9\n timeout = 30\n```\n\n" +
		"- `web/hosts/app1/etc/systemd/system/app.service`: only the generated header changed (+1 −1)\n\n</details>\n\n" +
		"<details>\n<summary><code>web/app2</code> removed: 0 added, 0 changed, 2 removed, +0 −10; decommission</summary>\n\n" +
		"`web/hosts/app2`: host removed (2 files, 10 lines).\n\n</details>\n\n" +
		"<details>\n<summary><code>web (stack files)</code> changed: 0 added, 1 changed, 0 removed, +1 −1</summary>\n\n" +
		"- `web/manifest.json`: only checksums, sizes and the source name changed (+1 −1)\n\n</details>\n\n"
	if b.String() != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestJSONShape pins the documented --output json shape: field names
// and order.
func TestJSONShape(t *testing.T) {
	rep := bigReport(t)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Base    map[string]any   `json:"base"`
		Head    string           `json:"head"`
		Changed bool             `json:"changed"`
		Summary map[string]int   `json:"summary"`
		Hosts   []map[string]any `json:"hosts"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var k []string
		for key := range m {
			k = append(k, key)
		}
		slices.Sort(k)
		return k
	}
	if got := keys(doc.Base); !slices.Equal(got, []string{"commit", "rev"}) {
		t.Errorf("base keys %v", got)
	}
	n, m := shape(t, webStack)
	// Added: app7's files and cloud-init document, the whole api stack.
	if doc.Head != "working tree" || !doc.Changed || doc.Summary["hosts_changed"] != 5 || doc.Summary["files_added"] != 3*n+m+1 {
		t.Errorf("doc = %+v", doc)
	}
	if got := keys(doc.Hosts[0]); !slices.Equal(got, []string{"files", "files_added", "files_changed", "files_removed", "host", "impact", "lines_added", "lines_removed", "reboot", "risks", "stack", "status"}) {
		t.Errorf("host keys %v", got)
	}
	f := doc.Hosts[3]["files"].([]any)[0].(map[string]any)
	if got := keys(f); !slices.Equal(got, []string{"diff", "impact", "kind", "lines_added", "lines_removed", "path", "sources", "status"}) {
		t.Errorf("file keys %v", got)
	}
	if f["kind"] != "gunicorn" || f["path"] != "web/hosts/app1/etc/app/gunicorn.conf.py" {
		t.Errorf("file = %v", f)
	}
}
