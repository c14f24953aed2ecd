package monitoring

import (
	"testing"

	"github.com/hacompile/hacompile/schema"
)

// wrote answers as schema.Stack.Wrote does: the path itself or a field
// or item inside it, not a longer name sharing its beginning.
func TestWroteIsStackWrote(t *testing.T) {
	s := &schema.Stack{Positions: map[string]schema.Position{
		"monitoring.ports.redis_x":       {},
		"monitoring.alertmanager.to":     {},
		"monitoring.address":             {},
		"monitoring.queue_depth[0]":      {},
		"hosts.app1":                     {},
		"monitoring.cert_expiry_daysx.y": {},
	}}
	for _, p := range []string{"monitoring.ports.redis", "monitoring.ports", "monitoring.alertmanager", "monitoring.alertmanager.to",
		"monitoring.address", "monitoring.addres", "monitoring.queue_depth", "monitoring.cert_expiry_days", "hosts", "monitoring"} {
		if got, want := wrote(s, p), s.Wrote(p); got != want {
			t.Errorf("wrote(%q) = %v, Stack.Wrote says %v", p, got, want)
		}
	}
}
