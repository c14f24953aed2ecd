package site_test

import (
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// renderedFile is the content of path on host in the example stack.
func renderedFile(t *testing.T, stack, host, path string) string {
	t.Helper()
	for _, r := range exampleResult(t).Rendered {
		if r.Stack.Name != stack {
			continue
		}
		for _, f := range r.Files {
			if f.Host == host && f.Path == path {
				return string(f.Content)
			}
		}
	}
	t.Fatalf("%s: no %s on %s", stack, path, host)
	return ""
}

// TestBacklogRowsAsRendered: the overview's HAProxy backlog is the one
// haproxy.cfg sets (multi-app sets backlog 4096 in defaults, below
// maxconn 20000; do-perl-ha leaves it at maxconn), and no backlog row is
// short of somaxconn while the somaxconn rule passes.
func TestBacklogRowsAsRendered(t *testing.T) {
	files := exampleSite(t)
	for _, r := range exampleResult(t).Rendered {
		s := r.Stack
		page := html.UnescapeString(string(files["stacks/"+s.Name+"/index.html"]))
		i := strings.Index(page, "<h3>Listen backlogs")
		if i < 0 {
			t.Fatalf("%s: no listen backlogs", s.Name)
		}
		table := page[i:]
		table = table[:strings.Index(table, "</table>")]
		if strings.Contains(table, "num bad") && strings.Contains(page, `<code>somaxconn</code></td><td>warning</td><td><span class="sev pass">`) {
			t.Errorf("%s: a backlog row is short of somaxconn, and the somaxconn rule passes", s.Name)
		}
		if s.Balancer.Kind != "haproxy" {
			continue
		}
		cfg := renderedFile(t, s.Name, s.HostsWithRole("lb")[0].Name, "etc/haproxy/haproxy.cfg")
		want := s.Balancer.MaxConn
		if m := regexp.MustCompile(`(?m)^    backlog (\d+)$`).FindStringSubmatch(cfg); m != nil {
			fmt.Sscan(m[1], &want)
		}
		if row := fmt.Sprintf(`<td>HAProxy frontend backlog</td><td class="num">%d</td>`, want); !strings.Contains(table, row) {
			t.Errorf("%s: the backlog table lacks %s:\n%s", s.Name, row, table)
		}
	}
}

// TestBudgetPerApp: with several apps, "Who gives up first" speaks of
// each app's own limits: its backend's "timeout server" in haproxy.cfg
// and its nginx server block's proxy_read_timeout (api: 25 s, not the
// stack's 60 s).
func TestBudgetPerApp(t *testing.T) {
	const stack = "multi-app"
	page := html.UnescapeString(string(exampleSite(t)["stacks/"+stack+"/index.html"]))
	i := strings.Index(page, `<div class="budget">`)
	budget := page[i : i+strings.Index(page[i:], "</div>")]
	s := exampleStack(t, stack)
	cfg := renderedFile(t, stack, s.HostsWithRole("lb")[0].Name, "etc/haproxy/haproxy.cfg")
	defaults := cfgSection(cfg, "defaults")
	serverRE := regexp.MustCompile(`(?m)^    timeout server (\d+)s$`)
	readRE := regexp.MustCompile(`(?m)^\s*proxy_read_timeout (\d+)s;$`)
	for _, a := range s.Apps {
		m := serverRE.FindStringSubmatch(cfgSection(cfg, "backend app_"+a.Name))
		if m == nil {
			m = serverRE.FindStringSubmatch(defaults)
		}
		host := s.AppHosts(a)[0].Name
		r := readRE.FindStringSubmatch(renderedFile(t, stack, host, "etc/nginx/conf.d/"+a.Name+".conf"))
		if m == nil || r == nil {
			t.Fatalf("%s: no timeout server or proxy_read_timeout", a.Name)
		}
		for _, want := range []string{
			"<p>For " + a.Name + ": The balancer waits up to " + m[1] + " s (",
			"nginx on its hosts (" + artifact.CompactNames(schema.HostNamesOf(s.AppHosts(a))) + ") waits up to " + r[1] + " s for the app server.",
		} {
			if !strings.Contains(budget, want) {
				t.Errorf("%s: the budget lacks %q:\n%s", a.Name, want, budget)
			}
		}
	}
	if !strings.Contains(budget, "(apps.api.balancer_timeouts.read)") || strings.Contains(budget, "nginx on the app hosts") {
		t.Errorf("the budget does not name api's own timeouts:\n%s", budget)
	}
}

// cfgSection is a haproxy.cfg section, from its header to the next one.
func cfgSection(cfg, header string) string {
	var b strings.Builder
	in := false
	for _, l := range strings.Split(cfg, "\n") {
		if l != "" && l[0] != ' ' && l[0] != '#' {
			in = l == header
			continue
		}
		if in {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// exampleStack is the example stack named name, as rendered.
func exampleStack(t *testing.T, name string) *schema.Stack {
	t.Helper()
	for _, r := range exampleResult(t).Rendered {
		if r.Stack.Name == name {
			return r.Stack
		}
	}
	t.Fatalf("no example stack %s", name)
	return nil
}
