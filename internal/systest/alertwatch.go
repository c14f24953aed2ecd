//go:build unix

package systest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// fastInterval is how often the fault scenarios' Prometheus scrapes and
// evaluates: a fault lasts seconds, the rendered interval is 15 s.
const fastInterval = "1s"

// fastIntervals rewrites every scrape and evaluation interval and scrape
// timeout of a prometheus.yml to fastInterval; the rules, their `for`
// and the targets stay as rendered.
func fastIntervals(cfg []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(cfg, &doc); err != nil {
		return nil, fmt.Errorf("prometheus.yml: %w", err)
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				switch n.Content[i].Value {
				case "scrape_interval", "evaluation_interval", "scrape_timeout":
					n.Content[i+1].Value = fastInterval
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// alertWatch is Prometheus running beside a fault scenario with the
// rendered targets and rules, scraping every second, so the alerts a
// fault of a few seconds should raise can be seen going pending.
type alertWatch struct {
	e   *env
	mon *monitor
	mu  sync.Mutex
	// seen are the alerts pending or firing since the last mark.
	seen map[string]alert
	stop chan struct{}
	done chan struct{}
}

// watchAlerts starts the watch; nil (with the reason in the report's
// note) when the stack has no monitoring to run.
func (e *env) watchAlerts(ctx context.Context, sr *ScenarioReport) *alertWatch {
	if !e.s.Monitoring.Enabled {
		return nil
	}
	mon, err := e.startMonitor(true)
	if err != nil {
		sr.check("Prometheus starts beside the faults", false, "%v", err)
		return nil
	}
	e.deviate("during the fault scenarios Prometheus scrapes and evaluates every " + fastInterval + " (the rendered configuration says 15 s), so that the alerts of a fault lasting seconds go pending; rules and their `for` are as rendered")
	if _, err := mon.targets(ctx, 15*time.Second); err != nil {
		mon.stop()
		sr.check("Prometheus scrapes its targets beside the faults", false, "%v", err)
		return nil
	}
	w := &alertWatch{e: e, mon: mon, seen: map[string]alert{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			as, err := mon.alerts(ctx)
			if err != nil {
				continue
			}
			w.mu.Lock()
			for _, a := range as {
				w.seen[alertKey(a)] = a
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func alertKey(a alert) string {
	keys := slices.Sorted(mapKeys(a.Labels))
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%q,", k, a.Labels[k])
	}
	return b.String()
}

// mark forgets what was seen so far: the next expect judges one phase.
func (w *alertWatch) mark() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.seen = map[string]alert{}
	w.mu.Unlock()
}

// expectation is an alert a fault must raise: its name and labels that
// must match (a label's value may list alternatives separated by |).
type expectation struct {
	Name   string
	Labels map[string]string
}

func (x expectation) String() string {
	var parts []string
	for _, k := range slices.Sorted(mapKeys(x.Labels)) {
		parts = append(parts, fmt.Sprintf("%s=%q", k, x.Labels[k]))
	}
	return x.Name + "{" + strings.Join(parts, ",") + "}"
}

func (x expectation) matches(a alert) bool {
	if a.Labels["alertname"] != x.Name {
		return false
	}
	for k, v := range x.Labels {
		if !slices.Contains(strings.Split(v, "|"), a.Labels[k]) {
			return false
		}
	}
	return true
}

// expect checks, once a phase is over, that each expected alert went
// pending or firing during it, waiting up to grace more for the last
// evaluations.
func (w *alertWatch) expect(sr *ScenarioReport, phase string, xs []expectation, grace time.Duration) {
	if w == nil {
		return
	}
	if len(xs) == 0 {
		sr.check(phase+": an alert watches this fault", false, "no rendered alert matches it")
		return
	}
	deadline := time.Now().Add(grace)
	for _, x := range xs {
		var got *alert
		for {
			w.mu.Lock()
			for _, a := range w.seen {
				if x.matches(a) {
					a := a
					got = &a
					break
				}
			}
			w.mu.Unlock()
			if got != nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		detail := "not seen"
		if got != nil {
			detail = got.State
		} else {
			w.mu.Lock()
			var others []alert
			for _, a := range w.seen {
				others = append(others, a)
			}
			w.mu.Unlock()
			if len(others) > 0 {
				detail += "; seen: " + describeAlerts(others)
			}
		}
		sr.check(fmt.Sprintf("%s: alert %s goes pending", phase, x), got != nil, "%s", detail)
	}
}

func (w *alertWatch) close() {
	if w == nil {
		return
	}
	close(w.stop)
	<-w.done
	w.mon.stop()
}
