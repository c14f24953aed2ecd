package monitoring_test

import (
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/hacompile/hacompile/generators/monitoring"
	"github.com/hacompile/hacompile/internal/testtool"
)

// vrrpStack is the stack testdata/vrrp_test.yml is written for: two
// balancers that fail over with keepalived.
const vrrpStack = `
hosts: {
	lb1: {address: "10.0.0.5", roles: ["lb"], cores: 1, memory_mb: 1024}
	lb2: {address: "10.0.0.6", roles: ["lb"], cores: 1, memory_mb: 1024}
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: {kind: "haproxy", failover: "keepalived", vrrp: {virtual_address: "10.0.0.4", router_id: 9}}
monitoring: {address: "10.0.0.2", for_minutes: 5}
`

var vrrpAlerts = []string{"KeepalivedNoMaster", "KeepalivedSplitBrain", "KeepalivedFault", "KeepalivedAddressHolderMismatch", "KeepalivedAddressCheckFailing"}

// TestVRRPAlertTiming runs promtool's rule unit tests
// (testdata/vrrp_test.yml) against the vrrp alerts rendered for
// vrrpStack: each fires after its for: and not a scrape before, and
// neither the steady state nor a completed failover fires any.
func TestVRRPAlertTiming(t *testing.T) {
	testtool.Require(t, "promtool", "prometheus")
	alerts, config := generate(t, load(t, "vrrp", vrrpStack))
	dir := writeOut(t, bare(t, alerts), config)
	promtoolTest(t, dir, "vrrp_test.yml")
}

// TestVRRPAlerts: the four alerts exist exactly on stacks whose
// balancers run keepalived, with a short for:, and their runbook_url is
// the runbook's failover procedure.
func TestVRRPAlerts(t *testing.T) {
	type rule struct {
		Alert       string            `yaml:"alert"`
		For         string            `yaml:"for"`
		Annotations map[string]string `yaml:"annotations"`
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	for _, s := range allStacks(t) {
		alerts, _ := generate(t, s)
		doc.Groups = nil
		if err := yaml.Unmarshal(alerts, &doc); err != nil {
			t.Fatal(err)
		}
		got := map[string]rule{}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if strings.HasPrefix(r.Alert, "Keepalived") {
					got[r.Alert] = r
				}
			}
		}
		want := s.Balancer.Failover == "keepalived" || s.Balancer.Failover == "reserved-ip"
		if want != (len(got) > 0) {
			t.Errorf("%s (failover %q): vrrp alerts %v", s.Name, s.Balancer.Failover, got)
			continue
		}
		if !want {
			continue
		}
		url := monitoring.ProcedureURL(s, "failover-balancer")
		for _, a := range vrrpAlerts {
			r, ok := got[a]
			if !ok {
				t.Errorf("%s: no %s", s.Name, a)
				continue
			}
			if r.Annotations["runbook_url"] != url {
				t.Errorf("%s: %s runbook_url %q, want %q", s.Name, a, r.Annotations["runbook_url"], url)
			}
			if r.For != "1m" && r.For != "2m" {
				t.Errorf("%s: %s for %q, want 1m or 2m", s.Name, a, r.For)
			}
		}
	}
}
