//go:build unix

package systest

import (
	"fmt"
	"maps"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// instances turns an Auto Scaling group's template host into the
// instances the group runs at its minimum (at least two): each boots from
// the launch template's user data (the template host's cloud-init) and
// runs its rendered files, under a name of its own (<host>-1, <host>-2),
// which is also its hostname, as each EC2 instance has its own. The
// stack is a copy; st is not changed.
func instances(st *Stack) (*Stack, []string) {
	s := st.Stack
	t := s.ScalingTemplateHost()
	if t == nil {
		return st, nil
	}
	n := minInstances(s.Scaling)
	c := *s
	c.Hosts = maps.Clone(s.Hosts)
	delete(c.Hosts, t.Name)
	var names []string
	for i := 1; i <= n; i++ {
		h := *t
		h.Name = fmt.Sprintf("%s-%d", t.Name, i)
		c.Hosts[h.Name] = &h
		names = append(names, h.Name)
	}
	// The template host stays the one the launch template names.
	c.Scaling = new(schema.Scaling)
	*c.Scaling = *s.Scaling
	c.Scaling.TemplateHost = names[0]
	c.Reindex()
	out := &Stack{Stack: &c, UserData: maps.Clone(st.UserData), Set: st.Set, Alter: st.Alter}
	for _, f := range st.Files {
		if f.Host != t.Name {
			out.Files = append(out.Files, f)
		}
	}
	for _, name := range names {
		out.addInstance(st, t.Name, name)
	}
	delete(out.UserData, t.Name)
	return out, names
}

// addInstance gives instance name the rendered files and the user data
// of the template host in from: an instance boots from the launch
// template and runs what it carries.
func (st *Stack) addInstance(from *Stack, template, name string) {
	for _, f := range from.Files {
		if f.Host == template {
			f.Host = name
			st.Files = append(st.Files, f)
		}
	}
	st.UserData[name] = from.UserData[template]
}

// minInstances is how many instances the test runs for the group: its
// minimum, and at least two, so a fault has another to go to.
func minInstances(sc *schema.Scaling) int { return max(sc.Min, 2) }

// awsTargetGroup is what the stand-in reads of the rendered target group
// (aws/target-group.json).
type awsTargetGroup struct {
	Protocol            string                    `json:"Protocol"`
	Port                int                       `json:"Port"`
	HealthCheckProtocol string                    `json:"HealthCheckProtocol"`
	HealthCheckPort     string                    `json:"HealthCheckPort"`
	HealthCheckPath     string                    `json:"HealthCheckPath"`
	HealthCheckInterval int                       `json:"HealthCheckIntervalSeconds"`
	HealthCheckTimeout  int                       `json:"HealthCheckTimeoutSeconds"`
	HealthyThreshold    int                       `json:"HealthyThresholdCount"`
	UnhealthyThreshold  int                       `json:"UnhealthyThresholdCount"`
	Matcher             struct{ HttpCode string } `json:"Matcher"`
}

// albSpec is the Application Load Balancer in front of the target group
// as the stand-in runs it: HTTPS on 443 ending TLS (its ACM certificate)
// when the stack's TLS is the cloud's, else HTTP on 80, forwarding to the
// instances' traffic port, with the target group's health check.
func albSpec(s *schema.Stack, tg awsTargetGroup) (doLoadBalancer, error) {
	var spec doLoadBalancer
	if !strings.EqualFold(tg.Protocol, "HTTP") || tg.Port == 0 {
		return spec, fmt.Errorf("aws/target-group.json: the stand-in forwards HTTP to a port, not %s:%d", tg.Protocol, tg.Port)
	}
	entry, port := "http", 80
	if s.TLS.Mode == "cloud" {
		entry, port = "https", 443
	}
	spec.ForwardingRules = append(spec.ForwardingRules, forwardingRule{EntryProtocol: entry, EntryPort: port, TargetProtocol: "http", TargetPort: tg.Port})
	hc := &spec.HealthCheck
	hc.Protocol = strings.ToLower(tg.HealthCheckProtocol)
	if tg.HealthCheckPort != "" && tg.HealthCheckPort != "traffic-port" {
		if _, err := fmt.Sscanf(tg.HealthCheckPort, "%d", &hc.Port); err != nil {
			return spec, fmt.Errorf("aws/target-group.json: HealthCheckPort %q", tg.HealthCheckPort)
		}
	}
	hc.Path = tg.HealthCheckPath
	hc.Interval, hc.Timeout = tg.HealthCheckInterval, tg.HealthCheckTimeout
	hc.HealthyThreshold, hc.UnhealthyThreshold = tg.HealthyThreshold, tg.UnhealthyThreshold
	if tg.Matcher.HttpCode != "" && tg.Matcher.HttpCode != "200" {
		return spec, fmt.Errorf("aws/target-group.json: the stand-in checks for 200, not %s", tg.Matcher.HttpCode)
	}
	return spec, nil
}

// Describe says what the test boots of s: its hosts, an Auto Scaling
// group's template host as the group's minimum of instances.
func Describe(s *schema.Stack) string {
	if t := s.ScalingTemplateHost(); t != nil {
		n := minInstances(s.Scaling)
		return fmt.Sprintf("%d hosts (%s as %d instances of the Auto Scaling group)", len(s.Hosts)-1+n, t.Name, n)
	}
	return fmt.Sprintf("%d hosts", len(s.Hosts))
}
