// Package redisexporter renders redis_exporter (Debian's
// prometheus-redis-exporter) next to the stack's self-hosted Redis: on
// each cache host, reading the local Redis over loopback and serving its
// metrics on the host's private address, where monitoring/prometheus.yml
// scrapes it (job "redis"). A managed Redis has no host to run it on; the
// monitoring generator probes it from the monitoring host instead.
//
// The exporter logs in as Redis's default user. Its password is never in
// a rendered file: PasswordFile, provisioned on the cache host (mode
// 0640, group prometheus), maps the Redis address to the password as
// JSON, the format of --redis.password-file:
//
//	{"redis://127.0.0.1:6379": "<the default user's password>"}
//
// When the broker is Redis, the Celery queues' lengths are exported too
// (--check-single-keys), for the queue-depth alerts.
package redisexporter

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the redis_exporter generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "redis-exporter" }

// Package is the Debian package cloud-init installs.
const Package = "prometheus-redis-exporter"

// Paths on the host, without the leading slash.
const (
	ArgsPath     = "etc/default/prometheus-redis-exporter"
	PasswordFile = "/etc/prometheus/redis-exporter-password.json"
)

// ListenAddress is where redis_exporter listens on cache host h.
func ListenAddress(s *schema.Stack, h *schema.Host) string {
	return net.JoinHostPort(h.Address, strconv.Itoa(s.Monitoring.Ports.Redis))
}

// RedisURL is the local Redis the exporter reads.
func RedisURL(s *schema.Stack) string {
	return "redis://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Cache.Port))
}

// QueueKeys are the Redis keys holding the Celery queues, as
// --check-single-keys names them (db<N>=<queue>), when the broker is the
// self-hosted Redis; nil otherwise.
func QueueKeys(s *schema.Stack) []string {
	q, w := s.Queue, s.Workers
	if q == nil || q.Engine != "redis" || w == nil || !BrokerIsLocal(s) {
		return nil
	}
	var keys []string
	for _, name := range w.QueueNames() {
		keys = append(keys, fmt.Sprintf("db%d=%s", q.DB, name))
	}
	return keys
}

// BrokerIsLocal reports whether the Redis broker is the self-hosted cache.
func BrokerIsLocal(s *schema.Stack) bool {
	if s.Queue == nil || s.Queue.Engine != "redis" || s.Cache == nil || s.Cache.Managed {
		return false
	}
	for _, h := range s.CacheHosts() {
		if h.Address == s.Queue.Host {
			return true
		}
	}
	return false
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	c := s.Cache
	if !s.Monitoring.Enabled || c == nil || c.Managed || c.Engine != "redis" {
		return nil, nil
	}
	var files []artifact.File
	for _, h := range s.CacheHosts() {
		if !opt.Renders(h.Name) {
			continue
		}
		var b strings.Builder
		b.WriteString(artifact.Header("#", s))
		fmt.Fprintf(&b, "# redis_exporter on %s: reads the local Redis and serves its metrics on the\n", h.Name)
		b.WriteString("# host's private address for Prometheus on the monitoring host (job \"redis\").\n")
		b.WriteString("# Read by Debian's prometheus-redis-exporter.service as $ARGS.\n")
		b.WriteString("# The default user's password is not here. Provision it as JSON,\n")
		b.WriteString("# {\"" + RedisURL(s) + "\": \"<password>\"}, readable by the exporter alone\n")
		b.WriteString("# (paste the JSON, then press Ctrl-D):\n")
		b.WriteString("#   install -D -m 0640 -o root -g prometheus /dev/stdin " + PasswordFile + "\n")
		a := []string{
			"--web.listen-address=" + ListenAddress(s, h),
			"--redis.addr=" + RedisURL(s),
			"--redis.password-file=" + opt.P(PasswordFile),
		}
		if keys := QueueKeys(s); len(keys) > 0 {
			a = append(a, "--check-single-keys="+strings.Join(keys, ","))
		}
		fmt.Fprintf(&b, "ARGS=\"%s\"\n", strings.Join(a, " "))
		files = append(files, artifact.File{
			Host: h.Name, Kind: "redis-exporter", Path: ArgsPath, Content: []byte(b.String()), Mode: 0o644, Owner: "root:root",
			Reload: artifact.Restart(Package),
		})
	}
	return files, nil
}

// Reads implements artifact.Scoper: a cache host's exporter checks the
// queue's keys when any cache host is the queue's broker.
func (Gen) Reads(s *schema.Stack, h *schema.Host) []string {
	if h.Has("cache") {
		return cacheOnly
	}
	return nil
}

var cacheOnly = []string{"cache"}

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"cache", "monitoring", "queue"} }
