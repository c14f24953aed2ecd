package gitops_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/gitops"
)

// fleetStack is a stack of app hosts app1…appN behind an HAProxy
// balancer; app500, when there, has twice the cores (so more workers),
// and app is the app section's extra fields.
func fleetStack(n int, app string) string {
	var b strings.Builder
	b.WriteString("name: \"fleet\"\ndomain: \"fleet.example.com\"\ntls: mode: \"none\"\nhosts: {\n")
	b.WriteString("\tlb1: {address: \"10.1.0.5\", roles: [\"lb\"], cores: 2, memory_mb: 2048}\n")
	for i := 1; i <= n; i++ {
		cores := 2
		if i == 500 {
			cores = 4
		}
		fmt.Fprintf(&b, "\tapp%d: {address: \"10.1.%d.%d\", roles: [\"app\"], cores: %d, memory_mb: 2048}\n", i, 1+i/200, 10+i%200, cores)
	}
	b.WriteString("}\nbalancer: kind: \"haproxy\"\nmonitoring: address: \"10.1.0.9\"\n")
	fmt.Fprintf(&b, "app: {runtime: \"python\", module: \"wsgi:app\", working_dir: \"/srv/app\"%s}\n", app)
	return b.String()
}

// TestMarkdownFleet: one change to 1,000 identical app hosts, one of
// them sized differently, gives a comment far below GitHub's cap that
// shows each distinct change once: the 999 hosts' diff, the outlier's,
// and the cloud-init documents' embedded change once for the 999. With
// a host removed as well, the balancer's change and the removal are
// shown too, within the cap.
func TestMarkdownFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("renders 1,000 hosts three times")
	}
	r := newRepo(t)
	r.write(map[string]string{"stacks/fleet.cue": fleetStack(1000, "")})
	r.commit("fleet")
	r.write(map[string]string{"stacks/fleet.cue": fleetStack(1000, `, worker_class: "gthread"`)})
	rep := diff(t, r, "HEAD")
	md := markdown(t, rep)
	t.Logf("comment: %d bytes", len(md))
	if len(md) > 8<<10 {
		t.Errorf("comment is %d bytes, want under 8 KiB", len(md))
	}
	if strings.Contains(md, "Truncated") {
		t.Errorf("truncated:\n%s", md[max(0, len(md)-400):])
	}
	for _, want := range []string{
		"| fleet | app1…app499, app501…app1000 (999 hosts) | 0 | 1 | 0 | +2 −3 | reload app | no |\n",
		"| fleet | app500 | 0 | 1 | 0 | +2 −3 | reload app | no |\n",
		"<summary><code>fleet/app1…app499, app501…app1000</code> changed on 999 hosts: 0 added, 1 changed, 0 removed, +2 −3 each; reload app</summary>\n\n" +
			"Same change on app1…app499, app501…app1000: 999 hosts. The diff shown is app1's.\n\nFrom `app.worker_class` (stacks/fleet.cue:1009):\n\n```diff\n--- a/fleet/hosts/app1/etc/app/gunicorn.conf.py\n",
		" workers = 5\n-worker_class = \"sync\"\n+worker_class = \"gthread\"\n",
		"--- a/fleet/hosts/app500/etc/app/gunicorn.conf.py\n",
		" workers = 9\n-worker_class = \"sync\"\n+worker_class = \"gthread\"\n",
		"Same change in 999 files, `fleet/cloud-init/{app1…app499, app501…app1000}.yaml`; the diff shown is `fleet/cloud-init/app1.yaml`'s:\n",
		"--- a/fleet/cloud-init/app500.yaml\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("comment lacks %q", want)
		}
	}
	if n := strings.Count(md, "```diff\n"); n != 4 {
		t.Errorf("%d diffs shown, want 4 (999 hosts, app500, their cloud-init documents):\n%s", n, md)
	}
	if n := strings.Count(md, "<details>\n"); n != 3 {
		t.Errorf("%d sections, want 3 (999 hosts, app500, stack files)", n)
	}

	// The JSON lists every host in its group, and the cloud-init
	// documents in theirs.
	var doc struct {
		Groups []gitops.HostGroup `json:"groups"`
		Hosts  []gitops.HostDiff  `json:"hosts"`
	}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Groups) != 2 || len(doc.Groups[0].Hosts) != 999 || doc.Groups[0].Range != "app1…app499, app501…app1000" || doc.Groups[1].Range != "app500" {
		t.Errorf("groups: %d, first %d hosts %q", len(doc.Groups), len(doc.Groups[0].Hosts), doc.Groups[0].Range)
	}
	if fg := doc.Hosts[len(doc.Hosts)-1].FileGroups; len(fg) != 1 || len(fg[0].Paths) != 999 {
		t.Errorf("file groups %+v", fg)
	}

	// app1000 goes too: the balancer and monitoring change, the manifest
	// loses the host's entries (too long to show, and said so).
	r.write(map[string]string{"stacks/fleet.cue": fleetStack(999, `, worker_class: "gthread"`)})
	md = markdown(t, diff(t, r, "HEAD"))
	if len(md) > gitops.GitHubCommentLimit {
		t.Errorf("comment is %d bytes", len(md))
	}
	for _, want := range []string{
		"| fleet | app1…app499, app501…app999 (998 hosts) | 0 | 1 | 0 | +2 −3 | reload app | no |\n",
		"| fleet | app1000 | 0 | 0 | ",
		"`fleet/hosts/app1000`: host removed (",
		"--- a/fleet/hosts/lb1/etc/haproxy/haproxy.cfg\n",
		"-    server app1000 10.1.6.10:80 check\n",
		"--- a/fleet/cloud-init/lb1.yaml\n",
		"--- a/fleet/monitoring/prometheus.yml\n",
		"- `fleet/manifest.json`: +",
		"> Truncated to fit a pull-request comment of 65536 characters: 1 file diff not shown.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("comment lacks %q", want)
		}
	}

}

func markdown(t *testing.T, rep *gitops.Report) string {
	t.Helper()
	var b strings.Builder
	if err := gitops.WriteMarkdown(&b, rep, gitops.GitHubCommentLimit); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestMarkdownNoGrouping: hosts whose changes differ by a byte are not
// grouped.
func TestMarkdownNoGrouping(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("web")
	// app2's cores change: the worker count differs between app1 and app2.
	r.write(map[string]string{"stacks/web.cue": strings.Replace(strings.Replace(webStack, "cores: 2", "cores: 3", 1), "cores: 2", "cores: 4", 1)})
	rep := diff(t, r, "HEAD")
	if len(rep.Groups) != 2 {
		t.Fatalf("groups %+v", rep.Groups)
	}
	r.write(map[string]string{"stacks/web.cue": strings.ReplaceAll(webStack, "cores: 2", "cores: 3")})
	rep = diff(t, r, "HEAD")
	if len(rep.Groups) != 1 || rep.Groups[0].Range != "app1, app2" {
		t.Fatalf("groups %+v", rep.Groups)
	}
}

// TestTextGrouped: the terminal report groups hosts as the comment
// does: one row and one diff for the hosts whose change is the same to
// the byte, the outlier apart, and the cloud-init documents' shared
// change shown once.
func TestTextGrouped(t *testing.T) {
	r := newRepo(t)
	r.write(map[string]string{"stacks/fleet.cue": fleetStack(600, "")})
	r.commit("fleet")
	r.write(map[string]string{"stacks/fleet.cue": fleetStack(600, `, worker_class: "gthread"`)})
	rep := diff(t, r, "HEAD")
	var b strings.Builder
	if err := gitops.WriteText(&b, rep, gitops.TextOptions{}); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, want := range []string{
		"\nfleet  app1…app499, app501…app600 (599 hosts)  0      1        0        +2 -3 ",
		"\nfleet  app500      ",
		"\n# same change on fleet/app1…app499, app501…app600: 599 hosts; the diff shown is app1's\n",
		"\n--- a/fleet/hosts/app1/etc/app/gunicorn.conf.py\n",
		"\n--- a/fleet/hosts/app500/etc/app/gunicorn.conf.py\n",
		"\n# same change in 599 files, fleet/cloud-init/{app1…app499, app501…app600}.yaml; the diff shown is fleet/cloud-init/app1.yaml's\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	if n := strings.Count(text, "\n--- a/"); n != 4 {
		t.Errorf("%d diffs, want 4 (599 hosts, app500, their cloud-init documents):\n%s", n, text[:min(len(text), 3000)])
	}
	if len(text) > 16<<10 {
		t.Errorf("text is %d bytes", len(text))
	}
}
