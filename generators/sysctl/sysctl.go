// Package sysctl renders the stack's kernel settings as a sysctl.d drop-in
// on every host, with what each host's own services need: the ports they
// listen on kept out of the ephemeral range, and on a self-hosted Redis
// host the memory overcommit Redis asks for.
package sysctl

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/haproxy"
	"github.com/hacompile/hacompile/generators/memcached"
	"github.com/hacompile/hacompile/generators/mtail"
	"github.com/hacompile/hacompile/generators/nginx"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/generators/rabbitmq"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the sysctl generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "sysctl" }

// Path is the drop-in's path on the host. The 60- prefix sorts it after
// the distribution's defaults (10-…, 50-…) so its values win.
const Path = "etc/sysctl.d/60-hacompile.conf"

// Keys the generator sets per host; the stack may not set them itself.
const (
	ReservedPortsKey = "net.ipv4.ip_local_reserved_ports"
	OvercommitKey    = "vm.overcommit_memory"
)

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	for _, k := range []string{ReservedPortsKey, OvercommitKey} {
		if _, ok := s.Tuning.Sysctl[k]; ok {
			return nil, artifact.Errorf(schema.FieldPath("tuning.sysctl", k), "hacompile sets %s on each host from what the host runs: remove it", k)
		}
	}
	lo, hi, err := portRange(s)
	if err != nil {
		return nil, err
	}
	var common strings.Builder
	common.WriteString(artifact.Header("#", s))
	common.WriteString("# Kernel settings for the stack's network load; applied with sysctl --system.\n")
	for _, k := range slices.Sorted(maps.Keys(s.Tuning.Sysctl)) {
		common.WriteString(k + " = " + string(s.Tuning.Sysctl[k]) + "\n")
	}
	names := s.HostNames()
	files := make([]artifact.File, 0, len(names))
	reload := artifact.SysctlSystem()
	// Hosts running the same services get the same file: rendered into
	// one buffer, each distinct content kept once.
	same := artifact.Same{}
	var b bytes.Buffer
	for _, n := range names {
		if !opt.Renders(n) {
			continue
		}
		h := s.Hosts[n]
		b.Reset()
		b.WriteString(common.String())
		if ports := inRange(ListenPorts(s, h), lo, hi); len(ports) > 0 {
			b.WriteString("\n# The ports this host's services listen on, kept out of the ephemeral range\n")
			b.WriteString("# (net.ipv4.ip_local_port_range): an outgoing connection never takes one, so a\n")
			b.WriteString("# service restarting can always bind its port again.\n")
			b.WriteString(ReservedPortsKey + " = " + ranges(ports) + "\n")
		}
		if selfHostedRedis(s, h) {
			b.WriteString("\n# Redis forks to write snapshots and rewrite its log: with the kernel's default\n")
			b.WriteString("# heuristic overcommit the fork can fail under memory pressure, and Redis warns\n")
			b.WriteString("# at start unless overcommit is always allowed. (Transparent huge pages, the\n")
			b.WriteString("# other setting Redis warns about, are \"madvise\" on Debian, which it accepts.)\n")
			b.WriteString(OvercommitKey + " = 1\n")
		}
		if b.Len() == common.Len() && len(s.Tuning.Sysctl) == 0 {
			continue
		}
		files = append(files, artifact.File{
			Host: n, Path: Path, Content: same.Of(b.Bytes()), Mode: 0o644, Owner: "root:root",
			Reload: reload,
		})
	}
	return files, nil
}

// AllApps implements artifact.AllApps: a host's kernel settings are
// the host's, whatever apps it runs.
func (Gen) AllApps() bool { return true }

func selfHostedRedis(s *schema.Stack, h *schema.Host) bool {
	return s.Cache != nil && !s.Cache.Managed && s.Cache.Engine == "redis" && h.Has("cache")
}

// ListenPorts are the TCP ports the services hacompile renders listen on,
// on host h, sorted and distinct.
func ListenPorts(s *schema.Stack, h *schema.Host) []int {
	var ps []int
	m := s.Monitoring
	if m.Enabled {
		ps = append(ps, m.Ports.Node)
	}
	if h.Has("lb") {
		switch s.Balancer.Kind {
		case "haproxy":
			ps = append(ps, 80, s.Balancer.Stats.Port)
			if s.TLS.Enabled() {
				ps = append(ps, 443)
			}
			if m.Enabled {
				ps = append(ps, m.Ports.HAProxy)
			}
			if s.TLS.Enabled() && s.TLS.Terminate == "balancer" && s.TLS.Mode == "certbot" {
				ps = append(ps, haproxy.ACMEPort)
			}
		case "nginx":
			ps = append(ps, 80)
			if s.TLS.Enabled() {
				ps = append(ps, 443)
			}
		}
	}
	for _, a := range s.AppsOn(h) {
		ps = append(ps, a.HTTPPort)
		if a.Bind.Port > 0 {
			ps = append(ps, a.Bind.Port)
		}
	}
	if h.Has("app") {
		if s.TLS.Enabled() && s.TLS.Terminate == "app" {
			ps = append(ps, 443)
		}
		if s.ProxyProtocol() {
			ps = append(ps, nginx.ACMERelayPort)
		}
		if mtail.Enabled(s) {
			ps = append(ps, m.Ports.Mtail)
		}
	}
	if pgbouncer.Active(s) && slices.Contains(pgbouncer.Hosts(s), h) {
		ps = append(ps, s.Database.Pooler.Port)
	}
	if memcached.Active(s) && h.Has("cache") {
		ps = append(ps, s.Cache.Port)
	}
	if slices.Contains(rabbitmq.Hosts(s), h) {
		ps = append(ps, rabbitmq.ListenPorts(s)...)
	}
	if selfHostedRedis(s, h) {
		ps = append(ps, s.Cache.Port)
		if m.Enabled {
			ps = append(ps, m.Ports.Redis)
		}
	}
	slices.Sort(ps)
	return slices.Compact(ps)
}

// portRange is the ephemeral range the stack sets, or Linux's default.
func portRange(s *schema.Stack) (lo, hi int, err error) {
	v, ok := s.Tuning.Sysctl["net.ipv4.ip_local_port_range"]
	if !ok {
		return 32768, 60999, nil
	}
	f := strings.Fields(string(v))
	if len(f) == 2 {
		lo, err1 := strconv.Atoi(f[0])
		hi, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && lo >= 1 && lo <= hi && hi <= 65535 {
			return lo, hi, nil
		}
	}
	return 0, 0, artifact.Errorf(schema.FieldPath("tuning.sysctl", "net.ipv4.ip_local_port_range"), "%q: want two port numbers, low and high (\"1024 65535\")", v)
}

func inRange(ps []int, lo, hi int) []int {
	return slices.DeleteFunc(slices.Clone(ps), func(p int) bool { return p < lo || p > hi })
}

// ranges writes sorted distinct ports as the kernel's list: 80,8000-8002.
func ranges(ps []int) string {
	var parts []string
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(ps[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", ps[i], ps[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a host's kernel settings are made from the host alone (the ports it listens on follow its roles)).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string {
	return []string{"app", "apps", "balancer", "cache", "database", "monitoring", "provider", "queue", "tls"}
}
