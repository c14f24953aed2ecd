// Package redis renders redis.conf for the stack's self-hosted Redis: the
// host with the cache role, when the cache is not managed. hacompile owns
// the whole file, which Debian's redis-server.service reads (its
// ExecStart adds --supervised systemd --daemonize no, as this file says
// too).
//
// Decisions, and why:
//
//   - Redis listens on the host's private address (the app and worker
//     hosts reach it there) and on loopback (redis-cli on the host), never
//     on every address.
//   - Clients must authenticate. Protected mode stays on, and with it a
//     Redis without a password refuses every client that is not on
//     loopback, so a password is required, not optional. It is not in
//     this file: aclfile names an ACL file provisioned on the host, where
//     the default user's password is stored as a SHA-256 hash. Redis
//     refuses to start without that file, which is what a missing secret
//     should do.
//   - maxmemory is a share of the host's memory (cache.maxmemory_percent),
//     leaving room for the fork that writes snapshots and for the kernel;
//     the eviction policy is the stack's.
//   - tcp-backlog follows net.core.somaxconn from the stack's sysctls: the
//     kernel caps a larger backlog anyway, and Redis warns when it does.
//   - Logs go to the journal (logfile ""), not to a file of their own.
//
// Paths move with Options.Root so tests can start the real redis-server
// on the rendered file.
package redis

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the Redis generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "redis" }

// ConfPath is redis.conf's path on the host.
const ConfPath = "etc/redis/redis.conf"

// defaultBacklog is Redis's tcp-backlog when the stack sets no somaxconn.
const defaultBacklog = 511

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	c := s.Cache
	if c == nil || c.Managed || c.Engine != "redis" {
		return nil, nil
	}
	var files []artifact.File
	for _, h := range s.CacheHosts() {
		if !opt.Renders(h.Name) {
			continue
		}
		content, err := conf(s, h, opt)
		if err != nil {
			return nil, artifact.InHost(h.Name, err)
		}
		files = append(files, artifact.File{
			Host: h.Name, Path: ConfPath, Content: content,
			// Debian's own redis.conf is redis:redis 0640: Redis reads it
			// as its user, and nobody else needs to.
			Mode: 0o640, Owner: "redis:redis",
			// Redis has no configuration check; a bad file fails the
			// restart, which systemd reports.
			Reload: artifact.Restart("redis-server"),
		})
	}
	return files, nil
}

// MaxmemoryMB is the cache's maxmemory on host h, in MiB.
func MaxmemoryMB(c *schema.Cache, h *schema.Host) int { return h.MemoryMB * c.MaxmemoryPercent / 100 }

// Backlog is tcp-backlog: the stack's net.core.somaxconn, or Redis's
// default when the stack leaves it to the kernel.
func Backlog(s *schema.Stack) (int, error) {
	v, ok := s.Tuning.Sysctl["net.core.somaxconn"]
	if !ok {
		return defaultBacklog, nil
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n < 1 {
		return 0, artifact.Errorf(schema.FieldPath("tuning.sysctl", "net.core.somaxconn"), "%q: want a positive number", v)
	}
	return n, nil
}

func conf(s *schema.Stack, h *schema.Host, opt artifact.Options) ([]byte, error) {
	c := s.Cache
	for _, p := range []string{c.ACLFile} {
		if strings.ContainsAny(p, " \"'\\\n") {
			return nil, artifact.Errorf("cache.acl_file", "%q: want a path without spaces or quotes", p)
		}
	}
	backlog, err := Backlog(s)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	line := func(args ...string) { b.WriteString(strings.Join(args, " ") + "\n") }
	comment := func(lines ...string) {
		for _, l := range lines {
			b.WriteString("# " + l + "\n")
		}
	}
	b.WriteString(artifact.Header("#", s))
	comment(fmt.Sprintf("Redis for the %s app's cache, on %s. hacompile owns this file.", s.App.Name, h.Name))
	b.WriteString("\n")
	comment("The app and worker hosts connect on the private address; redis-cli on loopback.")
	line("bind", h.Address, "127.0.0.1")
	line("port", strconv.Itoa(c.Port))
	comment("Protected mode stays on: clients must authenticate (see aclfile).")
	line("protected-mode", "yes")
	comment("The kernel caps the backlog at net.core.somaxconn; keep them equal.")
	line("tcp-backlog", strconv.Itoa(backlog))
	line("timeout", "0")
	line("tcp-keepalive", "300")
	b.WriteString("\n")
	comment("systemd supervises Redis (Debian's redis-server.service); logs go to the journal.")
	line("daemonize", "no")
	line("supervised", "systemd")
	line("pidfile", opt.P("/run/redis/redis-server.pid"))
	line("loglevel", "notice")
	line("logfile", `""`)
	line("databases", "16")
	b.WriteString("\n")
	comment("Users and passwords: the ACL file is provisioned on this host, never rendered.",
		"It holds the default user's password as a SHA-256 hash, for example:",
		"  printf 'user default on #%s ~* &* +@all\\n' \"$(printf %s \"$PASSWORD\" | sha256sum | cut -d' ' -f1)\" \\",
		"    | install -m 0640 -o root -g redis /dev/stdin "+c.ACLFile,
		"Redis does not start without it.")
	line("aclfile", opt.P(c.ACLFile))
	b.WriteString("\n")
	comment(fmt.Sprintf("%d %% of this host's %d MiB; the rest is for snapshots' fork and the kernel.", c.MaxmemoryPercent, h.MemoryMB))
	line("maxmemory", strconv.Itoa(MaxmemoryMB(c, h))+"mb")
	line("maxmemory-policy", c.MaxmemoryPolicy)
	b.WriteString("\n")
	line("dir", opt.P("/var/lib/redis"))
	line("dbfilename", "dump.rdb")
	switch c.Persistence {
	case "rdb":
		comment("Snapshots: after 1 change in an hour, 100 in 5 minutes, 10000 in a minute.")
		line("save", "3600 1 300 100 60 10000")
		line("appendonly", "no")
	case "aof":
		comment("Append-only log, written to disk every second; no snapshots besides.")
		line("save", `""`)
		line("appendonly", "yes")
		line("appendfsync", "everysec")
	default:
		comment("A pure cache: nothing is written to disk; it starts empty after a restart.")
		line("save", `""`)
		line("appendonly", "no")
	}
	return []byte(b.String()), nil
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a cache host's redis.conf is made from the host alone).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"app", "cache"} }
