package site_test

import (
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/site"
)

type searchEntry struct {
	K, T, X, U string
}

// searchIndex decodes the site's search index.
func searchIndex(t *testing.T, files map[string][]byte) []searchEntry {
	t.Helper()
	js := string(files["assets/search-index.js"])
	i, j := strings.Index(js, "["), strings.LastIndex(js, "]")
	var es []searchEntry
	if err := json.Unmarshal([]byte(js[i:j+1]), &es); err != nil {
		t.Fatal(err)
	}
	return es
}

// TestSearchDirectives: the search index carries the directives of the
// rendered files, each with its file, line and hosts, linked to the
// listing: a file the hosts share once, from its shared page; a line of
// files each host has its own copy of once for all the hosts that have
// it at that line, and the lines that differ (the listen address) per
// host. Comments and scripts are not indexed.
func TestSearchDirectives(t *testing.T) {
	var hosts strings.Builder
	for i := 1; i <= 12; i++ {
		fmt.Fprintf(&hosts, "\tapp%d: {address: \"10.0.0.%d\", roles: [\"app\"], cores: 2, memory_mb: 2048}\n", i, 10+i)
	}
	stack := "name: \"web\"\ndomain: \"example.com\"\ntls: mode: \"none\"\nhosts: {\n" + hosts.String() +
		"}\nbalancer: {kind: \"cloud\", trusted_proxies: [\"10.0.0.0/16\"]}\napp: {runtime: \"python\", module: \"wsgi:app\", working_dir: \"/srv/app\"}\n"
	res, opt := compileStack(t, stack)
	files, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	var wc, nofile, listen []searchEntry
	for _, e := range searchIndex(t, files) {
		if e.K != "directive" {
			continue
		}
		switch {
		case strings.HasPrefix(e.T, "#") || strings.HasPrefix(e.T, "set -"):
			t.Errorf("comment or script line indexed: %+v", e)
		case strings.HasPrefix(e.T, "worker_connections "):
			wc = append(wc, e)
		case strings.HasPrefix(e.T, "LimitNOFILE="):
			nofile = append(nofile, e)
		case strings.HasPrefix(e.T, "listen 10.0.0."):
			listen = append(listen, e)
		}
	}
	// nginx.conf is the same on the 12 hosts: one entry, its shared page.
	if len(wc) != 1 || !strings.HasPrefix(wc[0].X, "/etc/nginx/nginx.conf:") || !strings.HasSuffix(wc[0].X, " · app1…app12 (12 hosts) · web") ||
		!strings.HasPrefix(wc[0].U, "stacks/web/same/etc-nginx-nginx-conf-") || !strings.HasSuffix(wc[0].U, ".html#file") {
		t.Errorf("worker_connections: %+v", wc)
	}
	if page := regexp.MustCompile(`<[^>]*>`).ReplaceAllString(string(files[strings.TrimSuffix(wc[0].U, "#file")]), ""); !strings.Contains(html.UnescapeString(page), wc[0].T) {
		t.Errorf("%s does not show %q", wc[0].U, wc[0].T)
	}
	if len(nofile) == 0 {
		t.Error("no LimitNOFILE directive indexed")
	}
	// The app's nginx site differs per host (its listen address): one
	// entry per host for that line, linked to the host's own page.
	if len(listen) != 12 {
		t.Errorf("%d listen entries, want 12: %+v", len(listen), listen)
	}
	for _, e := range listen {
		host := "app" + strings.TrimSuffix(strings.TrimPrefix(e.T, "listen 10.0.0.1"), ":80;")
		if !strings.Contains(e.U, "stacks/web/hosts/") || !strings.Contains(e.X, " · ") {
			t.Errorf("listen entry %+v (%s)", e, host)
		}
	}
	// Its other lines are shared by all 12 copies: one entry each.
	n := 0
	for _, e := range searchIndex(t, files) {
		if e.K == "directive" && strings.Contains(e.X, "(12 hosts)") && strings.Contains(e.U, "/hosts/app1.html#") {
			n++
		}
	}
	if n == 0 {
		t.Error("no merged entry for the lines the hosts' own nginx sites share")
	}
}
