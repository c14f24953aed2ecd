package digitalocean_test

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/digitalocean"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// TestExampleStack: seed 001's cloud balancer, TLS passed through to the
// droplets, written out by hand as the DigitalOcean API takes it.
func TestExampleStack(t *testing.T) {
	want := `{
  "name": "do-python-50k",
  "region": "fra1",
  "size_unit": 5,
  "tag": "do-python-50k-app",
  "forwarding_rules": [
    {
      "entry_protocol": "http",
      "entry_port": 80,
      "target_protocol": "http",
      "target_port": 80
    },
    {
      "entry_protocol": "https",
      "entry_port": 443,
      "target_protocol": "https",
      "target_port": 443,
      "tls_passthrough": true
    }
  ],
  "health_check": {
    "protocol": "http",
    "port": 80,
    "path": "/healthz",
    "check_interval_seconds": 10,
    "response_timeout_seconds": 5,
    "healthy_threshold": 2,
    "unhealthy_threshold": 3,
    "proxy_protocol": true
  },
  "sticky_sessions": {
    "type": "none"
  },
  "redirect_http_to_https": false,
  "enable_proxy_protocol": true,
  "enable_backend_keepalive": true,
  "http_idle_timeout_seconds": 60
}
`
	n := 0
	for _, s := range testtool.LoadStacks(t) {
		files, err := digitalocean.Gen{}.Generate(s, artifact.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if s.Provider != "digitalocean" || s.Balancer.Kind != "cloud" {
			if len(files) != 0 {
				t.Errorf("%s: a DigitalOcean load balancer without a DigitalOcean cloud balancer", s.Name)
			}
			continue
		}
		n++
		if len(files) != 1 || files[0].Path != digitalocean.Path || files[0].Host != "" {
			t.Fatalf("%s: %+v", s.Name, files)
		}
		if s.Name == "do-python-50k" && string(files[0].Content) != want {
			t.Errorf("load-balancer.json:\n%s\nwant\n%s", files[0].Content, want)
		}
	}
	if n == 0 {
		t.Fatal("no example stack has a DigitalOcean cloud balancer")
	}
}

// TestTerminateAtBalancer: tls.mode "cloud" needs the certificate's id,
// forwards HTTPS to plain HTTP and redirects port 80.
func TestTerminateAtBalancer(t *testing.T) {
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	src := `
name: "t"
provider: "digitalocean"
region: "ams3"
domain: "t.example.com"
tls: mode: "cloud"
hosts: app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
balancer: {kind: "cloud", health: rise: 1, trusted_proxies: ["10.0.0.0/16"]}
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/t"}
`
	s, err := l.Load("t.cue", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := digitalocean.Build(s); err == nil || !strings.Contains(err.Error(), "balancer.health.rise: 1 is outside the 2–10") {
		t.Errorf("rise 1: %v", err)
	}
	s.Balancer.Health.Rise = 2
	s.Balancer.TrustedProxies = nil
	if _, err := digitalocean.Build(s); err == nil || !strings.HasPrefix(err.Error(), "balancer.trusted_proxies: ") {
		t.Errorf("PROXY protocol without the balancer's range: %v", err)
	}
	s.Balancer.TrustedProxies = []string{"10.0.0.0/16"}
	if _, err := digitalocean.Build(s); err == nil || !strings.Contains(err.Error(), "certificate_id") {
		t.Errorf("no certificate id: %v", err)
	}
	s.Balancer.DigitalOcean.CertificateID = "4de7ac8b-495b-4884-9a69-1050c6793cd6"
	lb, err := digitalocean.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	r := lb.ForwardingRules[1]
	if r.EntryProtocol != "https" || r.TargetProtocol != "http" || r.TargetPort != 80 || r.CertificateID == "" || r.TLSPassthrough || !lb.RedirectHTTPToHTTPS {
		t.Errorf("rules %+v redirect %v", lb.ForwardingRules, lb.RedirectHTTPToHTTPS)
	}
}

// TestProxyProtocolOff: balancer.digitalocean.proxy_protocol false
// renders neither the balancer's PROXY protocol nor the health check's.
func TestProxyProtocolOff(t *testing.T) {
	s := testtool.Load(t, "off", `
name: "off"
provider: "digitalocean"
region: "ams3"
domain: "t.example.com"
tls: mode: "none"
hosts: app1: {address: "10.0.0.11", roles: ["app"], cores: 2, memory_mb: 2048}
balancer: {kind: "cloud", digitalocean: proxy_protocol: false}
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/t"}
`)
	lb, err := digitalocean.Build(s)
	if err != nil {
		t.Fatal(err)
	}
	if lb.EnableProxyProtocol || lb.HealthCheck.ProxyProtocol != nil {
		t.Errorf("PROXY protocol rendered though off: %+v", lb)
	}
}
