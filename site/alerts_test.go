package site_test

import (
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/monitoring"
)

// alertSectionRE is one alert's section of an alerts page: its id and
// its body.
var alertSectionRE = regexp.MustCompile(`(?s)<section class="alert" id="([^"]+)">(.*?)</section>`)

// TestAlertsPageSections: every rule of a stack's alerts.yaml whose
// runbook_url names the alerts page lands on the section of that very
// rule (its name and group, so each app's copy of a rule on its own
// section), every section says how long its rule must hold, and no
// section is left with an unbalanced code span.
func TestAlertsPageSections(t *testing.T) {
	pages := exampleSite(t)
	res := exampleResult(t)
	n := 0
	for _, r := range res.Rendered {
		for _, f := range r.Files {
			if f.Host != "" || f.Path != monitoring.AlertsPath {
				continue
			}
			page := "stacks/" + r.Stack.Name + "/alerts.html"
			html := string(pages[page])
			sections := map[string]string{}
			for _, m := range alertSectionRE.FindAllStringSubmatch(html, -1) {
				sections[m[1]] = m[2]
				if strings.Contains(m[2], "fires after  of") {
					t.Errorf("%s#%s: no duration in %q", page, m[1], "fires after  of")
				}
				if strings.Contains(m[2], "``") {
					t.Errorf("%s#%s: an unbalanced code span (``)", page, m[1])
				}
			}
			var doc struct {
				Groups []struct {
					Name  string `yaml:"name"`
					Rules []struct {
						Alert       string            `yaml:"alert"`
						Labels      map[string]string `yaml:"labels"`
						Annotations map[string]string `yaml:"annotations"`
					} `yaml:"rules"`
				} `yaml:"groups"`
			}
			if err := yaml.Unmarshal(f.Content, &doc); err != nil {
				t.Fatal(err)
			}
			seen := map[string]string{}
			for _, g := range doc.Groups {
				for _, rule := range g.Rules {
					url := rule.Annotations["runbook_url"]
					_, id, ok := strings.Cut(url, "/alerts.html#")
					if !ok {
						continue // a procedure's section (the VRRP alerts)
					}
					n++
					who := rule.Alert + " (group " + g.Name + ")"
					if other, dup := seen[url]; dup {
						t.Errorf("%s: %s and %s share runbook_url %s", r.Stack.Name, other, who, url)
					}
					seen[url] = who
					body, found := sections[id]
					if !found {
						t.Errorf("%s: %s: runbook_url %s: no such section on %s", r.Stack.Name, who, url, page)
						continue
					}
					if !strings.Contains(body, "<h2>"+rule.Alert+" ") || !strings.Contains(body, "Group "+g.Name+"; fires ") {
						t.Errorf("%s: %s: runbook_url %s names the section of another rule:\n%s", r.Stack.Name, who, url, body)
					}
					if a := rule.Labels["app"]; a != "" && !strings.Contains(body, "(app "+a+")") {
						t.Errorf("%s: %s: the section of app %s does not say so:\n%s", r.Stack.Name, who, a, body)
					}
					if rule.Alert == "Watchdog" && !strings.Contains(body, "fires at once on:") {
						t.Errorf("%s: the Watchdog's section does not say it fires at once (0s):\n%s", r.Stack.Name, body)
					}
				}
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d runbook_url annotations in the example stacks", n)
	}
}

// TestAlertSearchTitles: the search index tells apart the copies of a
// rule (each app's, each exporter's), as the alerts page's headings do.
func TestAlertSearchTitles(t *testing.T) {
	files := exampleSite(t)
	idx := string(files["stacks/multi-app/search-index.js"])
	for _, want := range []string{`"t":"BackendDown (app api)"`, `"t":"BackendDown (app legacy)"`, `"t":"BackendDown (app web)"`} {
		if !strings.Contains(idx, want) {
			t.Errorf("multi-app's search index lacks %s", want)
		}
	}
	if strings.Contains(idx, `"t":"BackendDown"`) {
		t.Errorf("multi-app's search index has a BackendDown naming no app")
	}
}
