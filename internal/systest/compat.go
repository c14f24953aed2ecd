//go:build unix

package systest

import (
	"net/netip"

	"github.com/hacompile/hacompile/schema"
)

// stackOS is the stack's os field (empty before the schema had one).
func stackOS(s *schema.Stack) string { return s.OS }

// virtualAddr is the balancers' virtual address, when the stack has one.
func virtualAddr(s *schema.Stack) (netip.Addr, bool) {
	if s.Balancer.VRRP == nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s.Balancer.VRRP.VirtualAddress)
	return a, err == nil
}

// extraAddrs are the stack's addresses that belong to no host (a
// balancer's virtual address, the registry a stack that pulls
// follows): the test network must hold them too.
func extraAddrs(s *schema.Stack) []netip.Addr {
	var out []netip.Addr
	// The registry a stack that pulls follows is on the hosts' network.
	if ap, ok := registryAddr(s); ok {
		out = append(out, ap.Addr())
	}
	// A reserved IP is the provider's, routed to its holder; only a
	// virtual address keepalived adds on the balancers' link is on it.
	if a, ok := virtualAddr(s); ok && s.Balancer.Failover != "reserved-ip" {
		out = append(out, a)
	}
	return out
}

// monitoringAddress is where the stack's Prometheus runs.
func monitoringAddress(s *schema.Stack) string { return s.Monitoring.Address }
