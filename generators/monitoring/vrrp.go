package monitoring

import (
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/keepalived"
	"github.com/hacompile/hacompile/schema"
)

// The for: of the VRRP alerts. A failover moves the master within
// seconds and keepalived publishes each change at once, so a minute
// without exactly one master is no transition. The address follows the
// master through the provider's API (seconds), and its holder is
// re-checked every 30 s: two minutes.
const (
	vrrpFor    = "1m"
	holderFor  = "2m"
	failoverID = "failover-balancer"
)

// vrrpGroup is the alerts on keepalived's VRRP state, from the state
// each balancer publishes through node_exporter's textfile collector
// (keepalived.StateMetric, keepalived.HeldMetric).
func vrrpGroup(s *schema.Stack) (group, bool) {
	if !keepalived.Monitored(s) {
		return group{}, false
	}
	lbs := s.HostsWithRole("lb")
	var names []string
	for _, h := range lbs {
		names = append(names, h.Name)
	}
	node := eq("job", jobNode)
	master := sel(keepalived.StateMetric, node, eq("state", "MASTER"))
	held := sel(keepalived.HeldMetric, node)
	who := "{{ $labels.host }} ({{ $labels.instance }})"
	v := s.Balancer.VRRP
	addr := v.VirtualAddress
	where := "`ip -brief address show to " + addr + "/32`"
	holder := "is configured on"
	switch {
	case s.Balancer.Failover == "reserved-ip" && s.Provider == "aws":
		holder = "is assigned (EC2, instance metadata) to"
		where = "`aws ec2 describe-network-interfaces --filters Name=addresses.private-ip-address,Values=" + addr +
			" --query 'NetworkInterfaces[].Attachment.InstanceId'`"
	case s.Balancer.Failover == "reserved-ip":
		holder = "is assigned (DigitalOcean, droplet metadata) to"
		where = "`doctl compute reserved-ip get " + addr + "`"
	}
	journal := "`journalctl -u keepalived --since -1h | grep -E 'Entering (MASTER|BACKUP|FAULT) STATE'`"
	rules := []rule{
		{
			name: "KeepalivedNoMaster", severity: "critical", forDur: vrrpFor,
			expr:    "sum(" + master + ") == 0\n  or absent(" + master + ")",
			summary: "No balancer of " + s.Name + " is VRRP master",
			description: "None of the balancers (" + strings.Join(names, ", ") + ") has been VRRP master for " + vrrpFor +
				": none is elected to hold " + addr + ", so when its holder fails nothing takes it over. First check: " +
				"`systemctl status keepalived " + s.Balancer.Kind + "` on each balancer, and " + journal +
				" for why they left or never reached MASTER.",
		},
		{
			name: "KeepalivedSplitBrain", severity: "critical", forDur: vrrpFor,
			expr:    "sum(" + master + ") > 1",
			summary: "{{ $value }} balancers of " + s.Name + " are VRRP master at once",
			description: "{{ $value }} balancers have each been VRRP master for " + vrrpFor +
				": they do not hear each other's advertisements, and each claims " + addr + ". First check: " +
				"`tcpdump -ni " + v.Interface + " ip proto 112` on a balancer (VRRP advertisements from each peer, router id " +
				strconv.Itoa(v.RouterID) + "), and firewalls between the balancers' addresses (IP protocol 112).",
		},
		{
			name: "KeepalivedFault", severity: "warning", forDur: vrrpFor,
			expr:    sel(keepalived.StateMetric, node, eq("state", "FAULT")) + " == 1",
			summary: "Balancer {{ $labels.host }} is in VRRP FAULT",
			description: "keepalived on " + who + " has been in FAULT for " + vrrpFor + ": its " + s.Balancer.Kind +
				" check fails, so it cannot take " + addr + " over when the master is lost. First check: " +
				"`systemctl status " + s.Balancer.Kind + "` on the host, then `journalctl -u keepalived -n 50`.",
		},
		{
			name: "KeepalivedAddressHolderMismatch", severity: "critical", forDur: holderFor,
			// A host that holds the address and is not master, or a
			// master that does not hold it (check succeeded, held 0).
			expr: "(" + held + " == 1 unless on (host) " + master + " == 1)\n" +
				"  or (" + held + " == 0 and on (host) " + master + " == 1)",
			summary: "The address " + addr + " and the VRRP master disagree on {{ $labels.host }}",
			description: "For " + holderFor + ", " + who + " has said it holds " + addr + ": {{ $value }} (1: it does, 0: it does not), " +
				"while keepalived there was not master, or was master without holding it: the address " +
				holder + " a balancer keepalived did not elect, so traffic reaches the wrong one or none. " +
				"First check: which balancer is master (" + journal + ") and where the address is (" + where + "); " +
				"then " + moveHint(s),
		},
	}
	// Whether a balancer holds the address is read from the provider's
	// metadata on a reserved IP, and from the host's own addresses
	// otherwise: when that keeps failing, the mismatch alert above
	// cannot fire, so the failing check alerts itself.
	check := "First check: `journalctl -u hacompile-keepalived-state -n 20` on the host for the failing request, " +
		"and whether the host reaches its metadata service."
	if s.Balancer.Failover != "reserved-ip" {
		// The check is local (keepalived's state script): ip lists the
		// host's addresses; it fails only when ip itself does.
		check = "First check: `journalctl -u hacompile-keepalived-state -n 20` on the host for the error. " +
			"The check asks no service: it is `ip -o address show to " + addr + "/32` on the host, which fails only when ip " +
			"cannot read the host's addresses (an empty answer means not held, and is no failure); run it there by hand."
	}
	rules = append(rules, rule{
		name: "KeepalivedAddressCheckFailing", severity: "warning", forDur: holderFor,
		expr:    sel(keepalived.CheckMetric, node) + " == 0",
		summary: "Balancer {{ $labels.host }} cannot tell whether it holds " + addr,
		description: "For " + holderFor + ", every check on " + who + " of whether " + addr + " " + holder +
			" it has failed, so a wrong address holder would go unseen (KeepalivedAddressHolderMismatch cannot fire). " +
			check,
	})
	for i := range rules {
		rules[i].runbook = ProcedureURL(s, failoverID)
	}
	return group{
		name: "vrrp",
		comment: "keepalived's VRRP state on the balancers (" + strings.Join(names, ", ") + "), which keepalived's notify\n" +
			"script and hacompile-keepalived-state.timer publish through node_exporter's textfile\n" +
			"collector (" + keepalived.StateMetric + ", " + keepalived.HeldMetric + ").",
		rules: rules,
	}, true
}

func moveHint(s *schema.Stack) string {
	if s.Balancer.Failover == "reserved-ip" {
		return "read `journalctl -t hacompile-reserved-ip` on the master for why its move failed, and move the address there by hand (the runbook's failover procedure)."
	}
	return "remove the address from the balancer that is not master (`ip address del`), or restart keepalived there (the runbook's failover procedure)."
}
