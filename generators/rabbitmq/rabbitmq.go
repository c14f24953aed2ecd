// Package rabbitmq renders the stack's self-hosted RabbitMQ: one node on
// the host with the queue role, when the queue is RabbitMQ and not
// managed.
//
// Decisions, and why:
//
//   - AMQP listens on the host's private address only (the app and
//     worker hosts reach it there); the guest user stays loopback-only,
//     as RabbitMQ ships it.
//   - Erlang distribution (the CLI tools' link to the node) listens on
//     loopback only: a single node has no peers, and rabbitmqctl runs on
//     the host itself.
//   - The vhost and the app's user are created from the password file the
//     operator provisions on the queue host (the same secret as on the
//     app and worker hosts), by a oneshot unit that runs after each start
//     of rabbitmq-server: the password is never in a rendered file. A
//     missing file is said in the journal and leaves the broker running
//     without the user, rather than failing the boot.
//   - Memory and disk alarms are set from the stack (as a share of the
//     host's memory, and in MB): above them RabbitMQ blocks publishers
//     rather than crash, and the alarms are alerts.
//   - With monitoring, the built-in Prometheus plugin serves metrics on
//     the private address, per queue (return_per_object_metrics: a
//     Celery stack has a handful of queues), for the queue-depth alerts.
package rabbitmq

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/systemd"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the RabbitMQ generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "rabbitmq" }

// Paths on the host, without the leading slash.
const (
	ConfPath    = "etc/rabbitmq/rabbitmq.conf"
	PluginsPath = "etc/rabbitmq/enabled_plugins"
	SetupPath   = "usr/local/sbin/hacompile-rabbitmq-setup"
	SetupUnit   = "hacompile-rabbitmq-setup.service"
	UnitPath    = "etc/systemd/system/" + SetupUnit
	Package     = "rabbitmq-server"
	Service     = "rabbitmq-server.service"
)

// Fixed ports of the node, besides the stack's AMQP port.
const (
	// DistPort is Erlang distribution's listener (rabbitmqctl's link).
	DistPort = 25672
	// EPMDPort is the Erlang port mapper the node registers with.
	EPMDPort = 4369
	// MetricsPort is the Prometheus plugin's port.
	MetricsPort = 15692
)

// HeartbeatSeconds is the AMQP heartbeat timeout the node proposes.
// A Celery worker's consuming connection takes it, as the lower of the
// two (Celery asks for 120 s); connections that only publish (the app
// hosts, beat) ask for none and keep none. The node checks for a
// client's frames once a timeout and drops a client two checks found
// silent, within three timeouts of its last frame (28 to 29 s measured,
// TestLiveFrozenWorker); the messages it held unacknowledged go back to
// the queue, to the other workers (a host that comes back may run some
// of them again: delivery is at least once). At RabbitMQ's default of
// 60 s, a worker host that hangs or loses its network keeps its
// prefetched tasks for up to three minutes. RabbitMQ advises 5 to 20 s;
// much lower drops busy clients by mistake, as would a gevent worker
// whose task blocks its loop for 20 s.
const HeartbeatSeconds = 10

// Active reports whether the stack runs its own RabbitMQ.
func Active(s *schema.Stack) bool {
	return s.Queue != nil && s.Queue.Engine == "rabbitmq" && !s.Queue.Managed
}

// Hosts are the hosts running the node.
func Hosts(s *schema.Stack) []*schema.Host {
	if !Active(s) {
		return nil
	}
	return s.QueueHosts()
}

// ListenPorts are the TCP ports the node listens on.
func ListenPorts(s *schema.Stack) []int {
	ps := []int{s.Queue.Port, DistPort, EPMDPort}
	if s.Monitoring.Enabled {
		ps = append(ps, MetricsPort)
	}
	return ps
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	hosts := Hosts(s)
	if len(hosts) == 0 {
		return nil, nil
	}
	q := s.Queue
	for _, fv := range [][2]string{{"queue.user", q.User}, {"queue.password_file", q.PasswordFile},
		{"queue.tls_cert_file", q.TLSCertFile}, {"queue.tls_key_file", q.TLSKeyFile}, {"queue.tls_ca_file", q.TLSCAFile}} {
		if strings.ContainsAny(fv[1], " '\"\\\n$`") {
			return nil, artifact.Errorf(fv[0], "%q: want no spaces or quotes", fv[1])
		}
	}
	restart := artifact.Restart(Service)
	plugins := artifact.Header("%%", s) + "[].\n"
	if s.Monitoring.Enabled {
		plugins = artifact.Header("%%", s) + "%% The Prometheus plugin serves the node's metrics (rabbitmq.conf says where).\n[rabbitmq_prometheus].\n"
	}
	script := setupScript(s)
	unit, err := setupUnit(s, opt)
	if err != nil {
		return nil, err
	}
	var files []artifact.File
	for _, h := range hosts {
		if !opt.Renders(h.Name) {
			continue
		}
		files = append(files,
			artifact.File{Host: h.Name, Path: ConfPath, Content: conf(s, h), Mode: 0o644, Owner: "root:root", Reload: restart},
			artifact.File{Host: h.Name, Path: PluginsPath, Content: []byte(plugins), Mode: 0o644, Owner: "root:root", Reload: restart},
			artifact.File{Host: h.Name, Path: SetupPath, Content: script, Mode: 0o755, Owner: "root:root",
				Validate: artifact.Run("sh", "-n", opt.P("/"+SetupPath)), Reload: artifact.Restart(SetupUnit)},
			artifact.File{Host: h.Name, Path: UnitPath, Content: unit, Mode: 0o644, Owner: "root:root",
				Validate: artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+UnitPath)),
				Reload:   artifact.DaemonReload().Then(artifact.Enable(SetupUnit), artifact.Restart(SetupUnit))},
		)
	}
	return files, nil
}

func conf(s *schema.Stack, h *schema.Host) []byte {
	q := s.Queue
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	fmt.Fprintf(&b, "# RabbitMQ on %s, the %s stack's broker (queue). Read by Debian's\n# rabbitmq-server.service at start: a change restarts the node.\n\n", h.Name, s.Name)
	if q.TLS {
		b.WriteString("# AMQP over TLS only, on the private address; the app and worker hosts connect\n")
		b.WriteString("# here (amqps://) and verify the broker against the CA. The certificate and key\n")
		b.WriteString("# are provisioned on this host, readable by rabbitmq (queue.tls_*_file).\n")
		b.WriteString("listeners.tcp = none\n")
		fmt.Fprintf(&b, "listeners.ssl.1 = %s:%d\n", h.Address, q.Port)
		fmt.Fprintf(&b, "ssl_options.certfile = %s\nssl_options.keyfile = %s\nssl_options.cacertfile = %s\n", q.TLSCertFile, q.TLSKeyFile, q.TLSCAFile)
		b.WriteString("ssl_options.versions.1 = tlsv1.3\nssl_options.versions.2 = tlsv1.2\n")
		b.WriteString("# Clients are not asked for certificates: they log in with the user's password.\n")
		b.WriteString("ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")
	} else {
		b.WriteString("# AMQP on the private address only; the app and worker hosts connect here.\n")
		fmt.Fprintf(&b, "listeners.tcp.1 = %s:%d\n", h.Address, q.Port)
	}
	b.WriteString("# The guest user may log in from this host only, as RabbitMQ ships it.\n")
	b.WriteString("loopback_users.guest = true\n\n")
	b.WriteString("# Erlang distribution, which rabbitmqctl uses, on loopback: a single node has no peers.\n")
	b.WriteString("distribution.listener.interface = 127.0.0.1\n\n")
	b.WriteString("# Heartbeat timeout, which each Celery worker's consuming connection takes as the\n")
	b.WriteString("# lower of its own (120 s) and this: a worker silent for two of the node's checks,\n")
	b.WriteString("# one a timeout, is dropped (within 30 s), and the tasks it held unacknowledged go\n")
	b.WriteString("# back to the queue for the other workers (run again if the host comes back: tasks\n")
	b.WriteString("# must be idempotent). At RabbitMQ's default of 60 s, a worker host that hangs or\n")
	b.WriteString("# loses its network keeps its prefetched tasks for up to three minutes.\n")
	fmt.Fprintf(&b, "heartbeat = %d\n\n", HeartbeatSeconds)
	fmt.Fprintf(&b, "# Publishers are blocked above %d%% of the host's memory, and below %d MB of free\n", q.MemoryHighWatermarkPercent, q.DiskFreeLimitMB)
	b.WriteString("# disk, until consumers catch up (queue.memory_high_watermark_percent,\n# queue.disk_free_limit_mb); both alarms are alerts.\n")
	fmt.Fprintf(&b, "vm_memory_high_watermark.relative = %s\n", strconv.FormatFloat(float64(q.MemoryHighWatermarkPercent)/100, 'f', -1, 64))
	fmt.Fprintf(&b, "disk_free_limit.absolute = %dMB\n", q.DiskFreeLimitMB)
	if s.Monitoring.Enabled {
		b.WriteString("\n# Metrics for Prometheus on the monitoring host (job \"rabbitmq\"), per queue for\n# the queue-depth alerts.\n")
		fmt.Fprintf(&b, "prometheus.tcp.ip = %s\nprometheus.tcp.port = %d\n", h.Address, MetricsPort)
		b.WriteString("prometheus.return_per_object_metrics = true\n")
	}
	b.WriteString("\n# Logs to the journal.\nlog.console = true\nlog.file = false\n")
	return []byte(b.String())
}

func setupScript(s *schema.Stack) []byte {
	q := s.Queue
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString(artifact.Header("#", s))
	fmt.Fprintf(&b, "# Creates the vhost %s and the user %s on this node, with the password from\n", q.VHost, q.User)
	fmt.Fprintf(&b, "# %s (provisioned here, the same secret the app and worker hosts hold).\n", q.PasswordFile)
	b.WriteString("# Provision it here, readable by root only (paste the secret, then Ctrl-D):\n")
	b.WriteString("#   install -D -m 0600 -o root -g root /dev/stdin " + q.PasswordFile + "\n")
	b.WriteString("#   systemctl restart " + SetupUnit + "\n")
	b.WriteString("# Run by " + SetupUnit + " after each start of rabbitmq-server; safe to run again.\n")
	b.WriteString("# The password reaches RabbitMQ as a salted SHA-256 hash in a definitions file\n")
	b.WriteString("# readable by root and rabbitmq only, never on a command line; importing it again\n")
	b.WriteString("# updates the user's password and keeps its permissions.\n")
	b.WriteString("set -eu\n")
	fmt.Fprintf(&b, "vhost=%s\nuser=%s\nQUEUE_PASSWORD_FILE=%s\npw_file=$QUEUE_PASSWORD_FILE\n", artifact.ShellQuote(q.VHost), artifact.ShellQuote(q.User), artifact.ShellQuote(q.PasswordFile))
	b.WriteString(`if [ ! -s "$pw_file" ]; then
	echo "hacompile: $pw_file is missing: the broker's user $user is not created and clients cannot log in; provision it, then: systemctl restart ` + SetupUnit + `" >&2
	exit 0
fi
defs=$(mktemp /run/hacompile-rabbitmq-defs.XXXXXX)
trap 'rm -f "$defs"' EXIT
python3 - "$pw_file" "$user" "$vhost" >"$defs" <<'PY'
import base64, hashlib, json, os, sys
pw_file, user, vhost = sys.argv[1:4]
with open(pw_file, "rb") as f:
    pw = f.read().strip()
salt = os.urandom(4)
h = base64.b64encode(salt + hashlib.sha256(salt + pw).digest()).decode()
json.dump({
    "users": [{"name": user, "password_hash": h, "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []}],
    "vhosts": [{"name": vhost}],
    "permissions": [{"user": user, "vhost": vhost, "configure": ".*", "write": ".*", "read": ".*"}],
}, sys.stdout)
PY
chgrp rabbitmq "$defs" && chmod 0640 "$defs"
rabbitmqctl -q await_startup
rabbitmqctl -q import_definitions "$defs"
echo "hacompile: user $user may use vhost $vhost"
`)
	return []byte(b.String())
}

func setupUnit(s *schema.Stack, opt artifact.Options) ([]byte, error) {
	exec, err := systemd.ExecLine(opt.P("/" + SetupPath))
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	b.WriteString("# Creates the broker's vhost and user after each start of RabbitMQ.\n")
	b.WriteString("[Unit]\nDescription=" + systemd.SpecEscape("hacompile: RabbitMQ vhost and user for "+s.App.Name) + "\n")
	b.WriteString("After=" + Service + "\nRequires=" + Service + "\nPartOf=" + Service + "\n\n")
	b.WriteString("[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=" + exec + "\n")
	b.WriteString("# rabbitmqctl waits for the node; a node that never comes up fails this unit, not the boot.\nTimeoutStartSec=300\n\n")
	b.WriteString("[Install]\nWantedBy=" + Service + "\n")
	return []byte(b.String()), nil
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a queue host's configuration is made from the host alone).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"app", "monitoring", "name", "queue"} }
