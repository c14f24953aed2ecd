package site_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/monitoring"
)

var runbookURLRE = regexp.MustCompile(`(?m)^\s+runbook_url: "([^"]*)"$`)

// TestRunbookURLs: every alert's runbook_url names a section that the
// stack's alerts page has, at the path the site writes it to.
func TestRunbookURLs(t *testing.T) {
	pages := exampleSite(t)
	res := exampleResult(t)
	n := 0
	for _, r := range res.Rendered {
		for _, f := range r.Files {
			if f.Host != "" || f.Path != monitoring.AlertsPath {
				continue
			}
			for _, m := range runbookURLRE.FindAllStringSubmatch(string(f.Content), -1) {
				n++
				page, id, ok := strings.Cut(strings.TrimPrefix(m[1], r.Stack.Monitoring.RunbookURL), "#")
				html, found := pages[strings.TrimPrefix(page, "/")]
				if !ok || !found || !strings.Contains(string(html), `id="`+id+`"`) {
					t.Errorf("%s: runbook_url %s: no such section in the runbook", r.Stack.Name, m[1])
				}
			}
		}
	}
	if n < 50 {
		t.Errorf("only %d runbook_url annotations in the example stacks", n)
	}
}
