package gitops

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// The risk labels: what a change does to running hosts, for CI to gate
// a merge on.
const (
	// RiskRestart: a service restarts (its connections drop), not only
	// reloads.
	RiskRestart = "restart"
	// RiskReboot: a host must reboot.
	RiskReboot = "reboot"
	// RiskLBChange: what the balancers do changes: a balancer's own
	// files (HAProxy, nginx on an lb host, a cloud balancer's
	// definition), a balancer added or removed, or app hosts joining or
	// leaving a cloud balancer.
	RiskLBChange = "lb-change"
	// RiskDecommission: a host goes away.
	RiskDecommission = "decommission"
	// RiskFailoverChange: the balancers' failover (keepalived and the
	// scripts it runs) changes.
	RiskFailoverChange = "failover-change"
)

// riskOrder is the labels' order in reports.
var riskOrder = []string{RiskReboot, RiskDecommission, RiskFailoverChange, RiskLBChange, RiskRestart}

func sortRisks(set map[string]bool) []string {
	out := []string{}
	for _, r := range riskOrder {
		if set[r] {
			out = append(out, r)
		}
	}
	return out
}

// hostRisks labels one entry of the report from what changed in it.
func hostRisks(h *HostDiff, base, head *Rendering) []string {
	set := map[string]bool{}
	hostHas := func(role string) bool {
		for _, r := range []*Rendering{base, head} {
			if s := r.stacks[h.Stack]; s != nil {
				if x := s.Hosts[h.Host]; x != nil && x.Has(role) {
					return true
				}
			}
		}
		return false
	}
	cloudLB := func() bool {
		for _, r := range []*Rendering{base, head} {
			if s := r.stacks[h.Stack]; s != nil && s.Balancer.Kind == "cloud" {
				return true
			}
		}
		return false
	}
	if h.Reboot {
		set[RiskReboot] = true
	}
	if h.Host != "" {
		switch h.Status {
		case Removed:
			set[RiskDecommission] = true
			fallthrough
		case Added:
			if hostHas("lb") || hostHas("app") && cloudLB() {
				set[RiskLBChange] = true
			}
		}
	}
	for _, i := range h.Impact {
		if unit, ok := strings.CutPrefix(i, "restart "); ok && !strings.HasSuffix(unit, ".timer") {
			set[RiskRestart] = true
		}
	}
	for _, f := range h.Files {
		if f.Noise == NoiseHeader || f.Noise == NoiseManifest || f.Noise == NoiseSite {
			continue
		}
		switch {
		case f.Kind == "keepalived":
			set[RiskFailoverChange] = true
		case f.Kind == "haproxy":
			set[RiskLBChange] = true
		case f.Kind == "nginx" && h.Host != "" && hostHas("lb"):
			set[RiskLBChange] = true
		case h.Host == "" && isCloudLB(f.Path):
			set[RiskLBChange] = true
		}
	}
	return sortRisks(set)
}

// isCloudLB reports whether a stack-level file defines a cloud load
// balancer: DigitalOcean's, or an AWS target group.
func isCloudLB(p string) bool {
	return strings.HasSuffix(p, "/digitalocean/load-balancer.json") || strings.HasSuffix(p, "/aws/target-group.json")
}

// FindingChange is an HA finding (a warning, or one a waiver accepts)
// present on one side of the comparison only.
type FindingChange struct {
	// Change is "appeared" (in the working tree only) or "disappeared".
	Change   string `json:"change"`
	Stack    string `json:"stack"`
	Rule     string `json:"rule,omitempty"`
	Path     string `json:"path,omitempty"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
}

// findingChanges compares the findings of two compiles: a finding is
// the same on both sides when its stack, rule, field path, severity and
// message are (its line may move).
func findingChanges(base, head *compile.Result) []FindingChange {
	type key struct{ stack, rule, path, sev, msg string }
	keys := func(res *compile.Result) map[key]bool {
		stackOf := map[string]string{}
		for _, r := range res.Rendered {
			stackOf[r.Stack.Source] = r.Stack.Name
		}
		m := map[key]bool{}
		for _, d := range res.Findings {
			m[key{cmp.Or(stackOf[d.File], d.File), d.Rule, d.Path, d.Severity, d.Message}] = true
		}
		return m
	}
	a, b := keys(base), keys(head)
	out := []FindingChange{}
	add := func(from, to map[key]bool, change string) {
		for k := range from {
			if !to[k] {
				out = append(out, FindingChange{Change: change, Stack: k.stack, Rule: k.rule, Path: k.path, Severity: k.sev, Message: k.msg})
			}
		}
	}
	add(b, a, "appeared")
	add(a, b, "disappeared")
	slices.SortFunc(out, func(x, y FindingChange) int {
		return cmp.Or(cmp.Compare(x.Stack, y.Stack), cmp.Compare(x.Change, y.Change), cmp.Compare(x.Rule, y.Rule), cmp.Compare(x.Path, y.Path), cmp.Compare(x.Message, y.Message))
	})
	return out
}

// Headroom is one limit of a stack that the change moves: what is
// needed against what there is, before and after (nil where the stack,
// or the limit, does not exist on that side).
type Headroom struct {
	Stack string `json:"stack"`
	// Name is "database connections" (connections the pools may open
	// against max_connections, db-pool's arithmetic), "connections to a
	// replica" (the read pools against each replica's limit), "concurrent
	// requests" (capacity.target_concurrency against what the app
	// hosts' workers serve at once), "open files per process" (the
	// process fd-limit finds most demanding against tuning.nofile),
	// "open files per app host" (the busiest app host's processes
	// together against fs.file-max, where the stack sets it: fd-host's
	// arithmetic) or "listen backlog" (the largest backlog against
	// net.core.somaxconn, as the somaxconn rule holds them).
	Name   string `json:"name"`
	Before *Level `json:"before"`
	After  *Level `json:"after"`
}

// Level is a need against a limit; Spare is Limit − Need (negative when
// short).
type Level struct {
	Need  int `json:"need"`
	Limit int `json:"limit"`
	Spare int `json:"spare"`
}

// The headroom names.
const (
	HeadroomDBConnections = "database connections"
	// HeadroomReplicaConnections is what each replica takes of the read
	// pools.
	HeadroomReplicaConnections = "connections to a replica"
	HeadroomCapacity           = "concurrent requests"
	HeadroomProcessFDs         = "open files per process"
	HeadroomHostFDs            = "open files per app host"
	HeadroomBacklog            = "listen backlog"
)

// levels computes a stack's limits, as the HA rules do.
func levels(s *schema.Stack) map[string]Level {
	out := map[string]Level{}
	if db := s.Database; db != nil && db.MaxConnections > 0 {
		need := rules.DBConnections(s, false)
		out[HeadroomDBConnections] = Level{need, db.MaxConnections, db.MaxConnections - need}
	}
	if db := s.Database; db.ReadPool() {
		if limit, _ := db.ReplicaLimit(); limit > 0 {
			need := rules.DBConnections(s, true)
			out[HeadroomReplicaConnections] = Level{need, limit, limit - need}
		}
	}
	if t := s.Capacity.TargetConcurrency; t > 0 && s.RoleCount("app") > 0 {
		c := rules.Capacity(s)
		out[HeadroomCapacity] = Level{t, c, c - t}
	}
	if s.RoleCount("app") > 0 {
		// The per-process limits hold for each app's processes (the
		// rules run on each app's view, schema.Stack.ForApp).
		views := []*schema.Stack{s}
		if s.MultiApp() {
			views = views[:0]
			for _, a := range s.Apps {
				views = append(views, s.ForApp(a))
			}
		}
		need := 0
		for _, v := range views {
			for _, p := range rules.ProcessFDNeeds(v) {
				need = max(need, p.Need)
			}
		}
		out[HeadroomProcessFDs] = Level{need, s.Tuning.Nofile, s.Tuning.Nofile - need}
		if v, ok := s.Tuning.Sysctl["fs.file-max"]; ok {
			if limit, err := strconv.Atoi(string(v)); err == nil {
				need := 0
				for _, h := range s.HostsWithRole("app") {
					n, _ := rules.HostFDs(s, h)
					need = max(need, n)
				}
				out[HeadroomHostFDs] = Level{need, limit, limit - need}
			}
		}
		if limit, err := rules.Somaxconn(s); err == nil {
			need := 0
			for _, v := range views {
				need = max(need, rules.LargestBacklog(v))
			}
			out[HeadroomBacklog] = Level{need, limit, limit - need}
		}
	}
	return out
}

// headroomChanges lists the limits whose need or limit the change
// moves, by stack and name.
func headroomChanges(base, head *compile.Result) []Headroom {
	byStack := func(res *compile.Result) map[string]map[string]Level {
		m := map[string]map[string]Level{}
		for _, r := range res.Rendered {
			m[r.Stack.Name] = levels(r.Stack)
		}
		return m
	}
	a, b := byStack(base), byStack(head)
	stacks := slices.Sorted(maps.Keys(a))
	for s := range b {
		if _, ok := a[s]; !ok {
			stacks = append(stacks, s)
		}
	}
	slices.Sort(stacks)
	out := []Headroom{}
	for _, s := range stacks {
		names := map[string]bool{}
		for n := range a[s] {
			names[n] = true
		}
		for n := range b[s] {
			names[n] = true
		}
		for _, n := range slices.Sorted(maps.Keys(names)) {
			before, hadBefore := a[s][n]
			after, hasAfter := b[s][n]
			if hadBefore && hasAfter && before == after {
				continue
			}
			h := Headroom{Stack: s, Name: n}
			if hadBefore {
				h.Before = &before
			}
			if hasAfter {
				h.After = &after
			}
			out = append(out, h)
		}
	}
	return out
}

// levelWords says "135 of 197 (62 spare)" or, for capacity, "54 for a
// target of 50 (4 spare)".
func levelWords(name string, l *Level) string {
	if l == nil {
		return "none"
	}
	spare := fmt.Sprintf("%d spare", l.Spare)
	if l.Spare < 0 {
		spare = fmt.Sprintf("short by %d", -l.Spare)
	}
	if name == HeadroomCapacity {
		return fmt.Sprintf("%d for a target of %d (%s)", l.Limit, l.Need, spare)
	}
	return fmt.Sprintf("%d of %d (%s)", l.Need, l.Limit, spare)
}

// consequenceLines are the comment's lines on risks, headroom and
// findings, each a Markdown paragraph or list; empty when there is
// nothing to say.
func consequenceLines(rep *Report) string {
	var b strings.Builder
	if len(rep.Risks) > 0 {
		b.WriteString("**Risks:** ")
		for i, r := range rep.Risks {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "`%s`", r)
		}
		b.WriteString("\n\n")
	}
	for _, h := range rep.Headroom {
		fmt.Fprintf(&b, "- %s %s: %s → %s\n", mdEscape(h.Stack), h.Name, levelWords(h.Name, h.Before), levelWords(h.Name, h.After))
	}
	for _, c := range rep.Cost {
		if c.Changed() {
			fmt.Fprintf(&b, "- %s monthly cost: %s\n", mdEscape(c.Stack), costWords(c, "→", "−"))
		}
	}
	for _, f := range rep.Findings {
		rule := ""
		if f.Rule != "" {
			rule = " [" + f.Rule + "]"
		}
		sev := ""
		if f.Severity != "warning" {
			sev = f.Severity + " "
		}
		path := ""
		if f.Path != "" {
			path = f.Path + ": "
		}
		fmt.Fprintf(&b, "- %s HA finding %s%s: %s%s%s\n", mdEscape(f.Stack), sev, f.Change, mdEscape(path), mdEscape(f.Message), rule)
	}
	if len(rep.Headroom)+len(rep.Findings)+changedCosts(rep) > 0 {
		fmt.Fprintf(&b, "\n")
	}
	if changedCosts(rep) > 0 {
		fmt.Fprintf(&b, "Costs are list prices of %s (machines and cloud load balancers), as in the runbook.\n\n", rep.PricesAsOf)
	}
	return b.String()
}

// writeConsequences is the terminal report's risks, headroom and
// findings lines.
func writeConsequences(w io.Writer, rep *Report) {
	if len(rep.Risks) > 0 {
		fmt.Fprintf(w, "Risks: %s\n", strings.Join(rep.Risks, ", "))
	}
	for _, h := range rep.Headroom {
		fmt.Fprintf(w, "Headroom: %s %s: %s -> %s\n", h.Stack, h.Name, levelWords(h.Name, h.Before), levelWords(h.Name, h.After))
	}
	for _, c := range rep.Cost {
		if c.Changed() {
			fmt.Fprintf(w, "Monthly cost: %s: %s (list prices of %s)\n", c.Stack, costWords(c, "->", "-"), rep.PricesAsOf)
		}
	}
	for _, f := range rep.Findings {
		fmt.Fprintf(w, "HA finding %s: %s\n", f.Change, schema.Diagnostic{Path: f.Path, Severity: f.Severity, Message: f.Message, Rule: f.Rule}.String())
	}
}

// mdEscape keeps text from turning into HTML or Markdown markup.
func mdEscape(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "`", "\\`", "*", "\\*", "_", "\\_", "[", "\\[", "]", "\\]", "<", "&lt;", ">", "&gt;", "&", "&amp;", "|", "\\|")
	return r.Replace(s)
}

// changedCosts counts the stacks whose estimate the change moves.
func changedCosts(rep *Report) int {
	n := 0
	for _, c := range rep.Cost {
		if c.Changed() {
			n++
		}
	}
	return n
}
