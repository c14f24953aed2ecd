// Package digitalocean renders the DigitalOcean cloud load balancer of a
// stack whose balancer.kind is "cloud" on DigitalOcean: the body that
// POST /v2/load_balancers accepts (doctl compute load-balancer create
// takes the same settings), in out/<stack>/digitalocean/load-balancer.json.
//
// Everything in it derives from the stack: the forwarding rules from
// where TLS terminates, the health check from balancer.health, the idle
// timeout from balancer.timeouts.read, the targets from the droplet tag.
// Sticky sessions stay off (the app keeps no state in a process).
//
// The PROXY protocol (balancer.digitalocean.proxy_protocol, on by
// default) carries the client's address to the app hosts, which see only
// the balancer's otherwise: with TLS passed through the balancer cannot
// add X-Forwarded-For. DigitalOcean sends version 1 on every forwarding
// rule, and documents that droplets not expecting it fail the health
// checks (a 400): the health check says proxy_protocol true explicitly
// (DigitalOcean's default follows the balancer's setting) and targets the
// app hosts' port-80 listener, which nginx renders with proxy_protocol,
// so the check passes exactly when the PROXY path works.
package digitalocean

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/nginx"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the DigitalOcean generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "digitalocean" }

// Path is the load balancer's file, beside hosts/ in out/<stack>/.
const Path = "digitalocean/load-balancer.json"

// LoadBalancer is the request body of POST /v2/load_balancers.
type LoadBalancer struct {
	Name                   string           `json:"name"`
	Region                 string           `json:"region"`
	SizeUnit               int              `json:"size_unit"`
	VPCUUID                string           `json:"vpc_uuid,omitempty"`
	Tag                    string           `json:"tag"`
	ForwardingRules        []ForwardingRule `json:"forwarding_rules"`
	HealthCheck            HealthCheck      `json:"health_check"`
	StickySessions         StickySessions   `json:"sticky_sessions"`
	RedirectHTTPToHTTPS    bool             `json:"redirect_http_to_https"`
	EnableProxyProtocol    bool             `json:"enable_proxy_protocol"`
	EnableBackendKeepalive bool             `json:"enable_backend_keepalive"`
	HTTPIdleTimeoutSeconds int              `json:"http_idle_timeout_seconds"`
}

// ForwardingRule sends one entry port to the droplets.
type ForwardingRule struct {
	EntryProtocol  string `json:"entry_protocol"`
	EntryPort      int    `json:"entry_port"`
	TargetProtocol string `json:"target_protocol"`
	TargetPort     int    `json:"target_port"`
	CertificateID  string `json:"certificate_id,omitempty"`
	TLSPassthrough bool   `json:"tls_passthrough,omitempty"`
}

// HealthCheck is the balancer's check of each droplet.
type HealthCheck struct {
	Protocol               string `json:"protocol"`
	Port                   int    `json:"port"`
	Path                   string `json:"path"`
	CheckIntervalSeconds   int    `json:"check_interval_seconds"`
	ResponseTimeoutSeconds int    `json:"response_timeout_seconds"`
	HealthyThreshold       int    `json:"healthy_threshold"`
	UnhealthyThreshold     int    `json:"unhealthy_threshold"`
	// ProxyProtocol is set (true) only with the balancer's PROXY
	// protocol on, so a stack without it renders as before.
	ProxyProtocol *bool `json:"proxy_protocol,omitempty"`
}

// StickySessions is off: type "none".
type StickySessions struct {
	Type string `json:"type"`
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if s.Provider != "digitalocean" || s.Balancer.Kind != "cloud" || s.Balancer.DigitalOcean == nil {
		return nil, nil
	}
	lb, err := Build(s)
	if err != nil {
		return nil, err
	}
	b, err := artifact.JSON(lb)
	if err != nil {
		return nil, err
	}
	return []artifact.File{{Path: Path, Content: b, Mode: 0o644}}, nil
}

// Build returns the load balancer the stack describes, or why the
// DigitalOcean API would refuse it.
func Build(s *schema.Stack) (*LoadBalancer, error) {
	do := s.Balancer.DigitalOcean
	h := s.Balancer.Health
	if s.Region == "" {
		return nil, artifact.Errorf("region", "a DigitalOcean load balancer needs the stack's region (such as fra1)")
	}
	timeout, whole := h.Timeout.Seconds()
	if !whole {
		return nil, artifact.Errorf("balancer.health.timeout", "%s: a DigitalOcean load balancer takes whole seconds (3–300) for its health check's response timeout", h.Timeout)
	}
	for _, c := range []struct {
		field     string
		v, lo, hi int
	}{
		{"balancer.health.interval", h.Interval, 3, 300},
		{"balancer.health.timeout", timeout, 3, 300},
		{"balancer.health.rise", h.Rise, 2, 10},
		{"balancer.health.fall", h.Fall, 2, 10},
		{"balancer.timeouts.read", s.Balancer.Timeouts.Read, 30, 600},
	} {
		if c.v < c.lo || c.v > c.hi {
			return nil, artifact.Errorf(c.field, "%d is outside the %d–%d a DigitalOcean load balancer accepts", c.v, c.lo, c.hi)
		}
	}
	port := s.App.HTTPPort
	lb := &LoadBalancer{
		Name:     s.Name,
		Region:   s.Region,
		SizeUnit: do.SizeUnit,
		VPCUUID:  do.VPCUUID,
		Tag:      do.DropletTag,
		// Port 80 always reaches the droplets: with TLS passed through,
		// their nginx answers ACME challenges there and redirects the rest.
		ForwardingRules: []ForwardingRule{{EntryProtocol: "http", EntryPort: 80, TargetProtocol: "http", TargetPort: port}},
		HealthCheck: HealthCheck{
			Protocol: "http", Port: port, Path: h.Path,
			CheckIntervalSeconds: h.Interval, ResponseTimeoutSeconds: timeout,
			HealthyThreshold: h.Rise, UnhealthyThreshold: h.Fall,
		},
		StickySessions:         StickySessions{Type: "none"},
		EnableBackendKeepalive: s.Balancer.Keepalive > 0,
		HTTPIdleTimeoutSeconds: s.Balancer.Timeouts.Read,
	}
	if s.ProxyProtocol() {
		if len(s.Balancer.TrustedProxies) == 0 {
			return nil, artifact.Errorf("balancer.trusted_proxies", "the DigitalOcean load balancer sends the PROXY protocol (balancer.digitalocean.proxy_protocol), and the app hosts believe it only from the balancer's range: name the VPC's range (such as 10.20.0.0/16) here")
		}
		if port == nginx.ACMERelayPort {
			return nil, artifact.Errorf("app.http_port", "%d is the port the app hosts relay ACME challenges to each other on in plain HTTP while port %d expects the balancer's PROXY header; choose another", port, port)
		}
		on := true
		lb.EnableProxyProtocol = true
		lb.HealthCheck.ProxyProtocol = &on
	}
	if name := do.Name; name != "" {
		lb.Name = name
	}
	switch {
	case s.TLS.Enabled() && s.TLS.Terminate == "app":
		if do.CertificateID != "" {
			return nil, artifact.Errorf("balancer.digitalocean.certificate_id", "TLS passes through to the app hosts (tls.terminate \"app\"), so the balancer holds no certificate")
		}
		lb.ForwardingRules = append(lb.ForwardingRules, ForwardingRule{
			EntryProtocol: "https", EntryPort: 443, TargetProtocol: "https", TargetPort: 443, TLSPassthrough: true})
	case s.TLS.Enabled():
		if do.CertificateID == "" {
			return nil, artifact.Errorf("balancer.digitalocean.certificate_id", "TLS terminates at the balancer (tls.mode %q), which needs the id of a DigitalOcean certificate", s.TLS.Mode)
		}
		lb.ForwardingRules = append(lb.ForwardingRules, ForwardingRule{
			EntryProtocol: "https", EntryPort: 443, TargetProtocol: "http", TargetPort: port, CertificateID: do.CertificateID})
		lb.RedirectHTTPToHTTPS = true
	case do.CertificateID != "":
		return nil, artifact.Errorf("balancer.digitalocean.certificate_id", "tls.mode is %q: the balancer serves no HTTPS, so it holds no certificate; remove it", s.TLS.Mode)
	}
	return lb, nil
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (it makes stack-level files only, from the settings).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }
