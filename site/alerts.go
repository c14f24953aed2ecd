package site

import (
	"fmt"
	"html/template"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/monitoring"
)

// The alerts page: every alert of the rendered monitoring/alerts.yaml,
// what it means and the first three things to check. It reads the
// rendered file, so it documents exactly the rules Prometheus runs.

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type alertFile struct {
	Groups []struct {
		Name  string      `yaml:"name"`
		Rules []alertRule `yaml:"rules"`
	} `yaml:"groups"`
}

type alertView struct {
	ID, Name, Group, Severity, For, Exporter string
	Summary                                  string
	Meaning                                  template.HTML
	Expr                                     template.HTML
	Checks                                   []template.HTML
}

type alertsData struct {
	Name       string
	File, Href string
	Missing    bool
	Alerts     []alertView
}

// placeholders turns the Prometheus templates in annotations into
// readable slots: {{ $labels.host }} → ‹host›.
var placeholderRE = regexp.MustCompile(`\{\{\s*\$(labels\.(\w+)|value)[^}]*\}\}`)

func readable(s string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(m string) string {
		sm := placeholderRE.FindStringSubmatch(m)
		if sm[2] != "" {
			return "‹" + sm[2] + "›"
		}
		return "‹value›"
	})
}

// sentences splits prose into sentences, never inside `code`.
func sentences(s string) []string {
	var out []string
	start, inCode := 0, false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '`':
			inCode = !inCode
		case '.', '?', '!':
			if !inCode && i+2 < len(s) && s[i+1] == ' ' && s[i+2] >= 'A' && s[i+2] <= 'Z' {
				out = append(out, strings.TrimSpace(s[start:i+1]))
				start = i + 2
			}
		}
	}
	if rest := strings.TrimSpace(s[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

func (g *gen) alerts(sc *stackCtx) error {
	s := sc.s
	p := stackPage(s.Name, "alerts.html")
	data := alertsData{Name: s.Name}
	f, ok := monitoringAlerts(sc)
	if !ok {
		data.Missing = true
	} else {
		data.File, data.Href = f.Path, rel(p, sc.fileHref(f))
		var af alertFile
		if err := yaml.Unmarshal(f.Content, &af); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		ids := map[string]int{}
		for _, gr := range af.Groups {
			for _, r := range gr.Rules {
				// The anchor the rule's runbook_url names: each app's copy
				// of a rule has its own (its app label).
				id := monitoring.AlertAnchor(r.Alert, r.Labels["exporter"], r.Labels["app"])
				if ids[id]++; ids[id] > 1 {
					id = fmt.Sprintf("%s-%d", id, ids[id])
				}
				v := alertView{ID: id, Name: r.Alert, Group: gr.Name, Severity: r.Labels["severity"], For: alertFor(r), Exporter: alertQualifier(r),
					Summary: readable(r.Annotations["summary"]), Expr: g.hl.listing("promql", []byte(strings.TrimSpace(r.Expr)+"\n"))}
				desc := readable(r.Annotations["description"])
				meaning, checks, _ := strings.Cut(desc, "First check:")
				v.Meaning = g.inline(strings.TrimSpace(meaning))
				for _, c := range sentences(checks) {
					if len(v.Checks) == 3 {
						break
					}
					v.Checks = append(v.Checks, g.inline(upperFirst(c)))
				}
				for _, c := range alertFallbacks(sc, r) {
					if len(v.Checks) == 3 {
						break
					}
					v.Checks = append(v.Checks, c)
				}
				data.Alerts = append(data.Alerts, v)
				title := r.Alert
				if q := alertQualifier(r); q != "" {
					title += " (" + q + ")" // each app's or exporter's copy, told apart
				}
				g.addSearch(searchEntry{Kind: "alert", Title: title, Text: s.Name + " · " + v.Summary, URL: p + "#" + id})
			}
		}
	}
	return g.write(page{
		Path: p, Title: "Alerts · " + s.Name, Crumbs: stackCrumbs(s, p), Tabs: stackTabs(s, p), Footer: footer(s, p),
	}, "alerts", data)
}

// alertFor is how long the rule's expression must hold before it
// fires: its for:, or Prometheus's default, 0s (the Watchdog's, which
// fires at once).
func alertFor(r alertRule) string {
	if r.For == "" {
		return "0s"
	}
	return r.For
}

// alertQualifier tells apart the rules that share a name: by exporter
// (the TargetDown rules), or by app (each app's copy of a rule).
func alertQualifier(r alertRule) string {
	var qs []string
	if e := r.Labels["exporter"]; e != "" {
		qs = append(qs, e)
	}
	if a := r.Labels["app"]; a != "" {
		qs = append(qs, "app "+a)
	}
	return strings.Join(qs, ", ")
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// alertFallbacks are the checks that follow the alert's own, when it
// names fewer than three: what changed lately, then the journal.
func alertFallbacks(sc *stackCtx, r alertRule) []template.HTML {
	s := sc.s
	changed := code("git log --since=-1day -p -- " + stackFileArg(s) + " out/" + s.Name + "/")
	out := []template.HTML{
		hf("Look at what changed lately: %s. A push shortly before the alert is the first suspect; %s undoes it.", changed, code("hacompile rollback "+s.Name)),
	}
	if deliveryOf(s).pulls {
		// rollback undoes a push; the hosts of this stack follow what
		// is published, and a push would be undone by their next apply.
		out[0] = hf("Look at what changed lately: %s. A publish shortly before the alert is the first suspect; publishing the files from before it undoes it, as the <a href=\"%s\">procedures</a> say (roll back).",
			changed, rel(stackPage(s.Name, "alerts.html"), stackPage(s.Name, "procedures.html")+"#rollback"))
	}
	if strings.Contains(r.Expr, "job=\"node\"") || strings.Contains(r.Annotations["description"], "$labels.host") {
		out = append(out, hf("Read the host's journal for errors around the time the alert started: %s.", code("journalctl -p warning --since -1h")))
	} else {
		out = append(out, hf("Compare with the other hosts of the stack on the <a href=\"%s\">overview</a>: one host or all of them?", rel(stackPage(s.Name, "alerts.html"), stackPage(s.Name, "index.html")+"#hosts")))
	}
	return out
}
