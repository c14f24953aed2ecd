// Package memcached renders memcached.conf for the stack's self-hosted
// Memcached: the host with the cache role, when the cache is Memcached
// and not managed. hacompile owns the whole file, which Debian's
// memcached.service passes to memcached through its wrapper, one option
// per line.
//
// Decisions, and why:
//
//   - Memcached listens on the host's private address (the app and worker
//     hosts reach it there) and on loopback, never on every address, and
//     on TCP only: UDP is off (-U 0), as it is the protocol amplification
//     attacks use and clients do not need.
//   - Memcached has no authentication as Debian builds and runs it (SASL
//     needs a build and setup of its own): reaching it must be limited to
//     the private network, and the cache must hold nothing secret. A
//     password file for a self-hosted Memcached is refused (cache-host).
//   - Item memory is a share of the host's memory
//     (cache.memory_percent), connections cache.max_connections, worker
//     threads one per core.
package memcached

import (
	"fmt"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the Memcached generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "memcached" }

// Paths and names on the host.
const (
	ConfPath = "etc/memcached.conf"
	Package  = "memcached"
	Service  = "memcached.service"
)

// Active reports whether the stack runs its own Memcached.
func Active(s *schema.Stack) bool {
	return s.Cache != nil && !s.Cache.Managed && s.Cache.Engine == "memcached"
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if !Active(s) {
		return nil, nil
	}
	var files []artifact.File
	for _, h := range s.CacheHosts() {
		if !opt.Renders(h.Name) {
			continue
		}
		files = append(files, artifact.File{
			Host: h.Name, Path: ConfPath, Content: Conf(s, h), Mode: 0o644, Owner: "root:root",
			Reload: artifact.Restart(Service),
		})
	}
	return files, nil
}

// MemoryMB is the item memory for host h.
func MemoryMB(s *schema.Stack, h *schema.Host) int {
	return max(64, h.MemoryMB*s.Cache.MemoryPercent/100)
}

// Conf is memcached.conf for host h.
func Conf(s *schema.Stack, h *schema.Host) []byte {
	c := s.Cache
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	fmt.Fprintf(&b, "# Memcached on %s, the %s stack's cache. Read by Debian's memcached.service\n", h.Name, s.Name)
	b.WriteString("# (one option per line) at start: a change restarts it, emptying the cache.\n")
	b.WriteString("# Memcached has no authentication here: only the private network reaches it.\n\n")
	b.WriteString("# Run as Debian's memcache user, in the foreground under systemd, logging to the journal.\n-u memcache\n")
	b.WriteString("# The private address for the app and worker hosts, and loopback.\n")
	fmt.Fprintf(&b, "-l %s,127.0.0.1\n-p %d\n", h.Address, c.Port)
	b.WriteString("# TCP only: UDP is off.\n-U 0\n")
	fmt.Fprintf(&b, "# Item memory: %d%% of %d MB (cache.memory_percent).\n-m %d\n", c.MemoryPercent, h.MemoryMB, MemoryMB(s, h))
	fmt.Fprintf(&b, "# Client connections (cache.max_connections).\n-c %d\n", c.MaxConnections)
	fmt.Fprintf(&b, "# One worker thread per core.\n-t %d\n", max(1, h.Cores))
	return []byte(b.String())
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a cache host's configuration is made from the host alone).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"cache", "name"} }
