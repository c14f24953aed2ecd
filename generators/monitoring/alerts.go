package monitoring

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/celery"
	"github.com/hacompile/hacompile/generators/haproxy"
	"github.com/hacompile/hacompile/generators/keepalived"
	"github.com/hacompile/hacompile/generators/memcached"
	"github.com/hacompile/hacompile/generators/mtail"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/generators/rabbitmq"
	"github.com/hacompile/hacompile/generators/systemd"
	"github.com/hacompile/hacompile/schema"
)

// rule is one alerting rule. Summaries and descriptions are Prometheus
// templates: they name the host or instance from the alert's labels and
// say what to look at first.
type rule struct {
	name     string
	severity string // warning: act today; critical: act now
	// exporter tells apart the per-job TargetDown rules, which share a
	// name so that one Alertmanager route or inhibition covers them all.
	exporter string
	// app labels the rules of one of several apps (its backend's).
	app         string
	expr        string
	summary     string
	description string
	// always: the alert fires as soon as its expression holds (the
	// Watchdog, which must fire all the time).
	always bool
	// forDur, when set, replaces monitoring.for_minutes: a state that is
	// wrong within seconds of a failover (no VRRP master) is not worth
	// waiting minutes for.
	forDur string
	// runbook, when set, is the runbook_url: the section that explains
	// what to do, rather than the alert's own entry on the alerts page.
	runbook string
}

// group is one rule group: one concern, evaluated together.
type group struct {
	name    string
	comment string
	rules   []rule
}

// value is the alert's value as the templates print it.
const value = `{{ $value | printf "%.1f" }}`

// sel returns a PromQL vector selector; label values are quoted with Go
// syntax, which is PromQL's string syntax.
func sel(metric string, matchers ...string) string {
	return metric + "{" + strings.Join(matchers, ",") + "}"
}

func eq(name, v string) string { return name + "=" + strconv.Quote(v) }

// num formats a threshold the way the stack wrote it: 5, 2.5.
func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// fsFilter leaves out memory-backed and image file systems, which are
// full by design or vanish with a reboot or container.
const fsFilter = `fstype!~"tmpfs|ramfs|overlay|squashfs"`

func alertGroups(s *schema.Stack, p *plan) []group {
	m := s.Monitoring
	held := fmt.Sprintf("for %d minutes", m.ForMinutes)
	node := eq("job", jobNode)
	who := "{{ $labels.host }} ({{ $labels.instance }})"

	var gs []group
	gs = append(gs, group{
		name: "meta",
		comment: "The dead man's switch: always firing, so Alertmanager always has it to send.\n" +
			"Its receiver (alertmanager.yml) alerts when it stops arriving: Prometheus,\n" +
			"Alertmanager or the path between them is broken.",
		rules: []rule{{
			name: "Watchdog", severity: "none", always: true,
			expr:    "vector(1)",
			summary: "The alerting pipeline of " + s.Name + " is working",
			description: "This alert fires all the time on purpose. If the dead man's switch stops receiving it, " +
				"alerts are not being delivered. First check: `systemctl status prometheus prometheus-alertmanager` " +
				"on the monitoring host.",
		}},
	})
	gs = append(gs, group{
		name:    "hosts",
		comment: "Every host, from node_exporter (job " + jobNode + ").",
		rules: []rule{
			{
				name: "HostDown", severity: "critical",
				expr:    sel("up", node) + " == 0",
				summary: "Host {{ $labels.host }} is down",
				description: "Prometheus has not reached node_exporter on " + who + " " + held + ". " +
					"First check: does the host answer ping and ssh? If it does, run " +
					"`systemctl status prometheus-node-exporter` there. If it does not, check the provider's console; " +
					"an app host should already be out of the balancer's rotation, so confirm the others carry the load.",
			},
			{
				name: "HostHighCPU", severity: "warning",
				expr: "100 - avg by (instance, host) (rate(" + sel("node_cpu_seconds_total", node, eq("mode", "idle")) + "[5m])) * 100 > " +
					strconv.Itoa(m.CPUPercent),
				summary: "CPU above " + strconv.Itoa(m.CPUPercent) + "% on {{ $labels.host }}",
				description: who + " has used " + value + "% CPU " + held + " (threshold " + strconv.Itoa(m.CPUPercent) + "%). " +
					"First check: `top -o %CPU` on the host for the busiest process. If it is the app server, compare the " +
					"request rate with the other app hosts before adding workers or hosts.",
			},
			{
				name: "HostHighMemory", severity: "warning",
				expr: "(1 - " + sel("node_memory_MemAvailable_bytes", node) + " / " + sel("node_memory_MemTotal_bytes", node) + ") * 100 > " +
					strconv.Itoa(m.MemoryPercent),
				summary: "Memory above " + strconv.Itoa(m.MemoryPercent) + "% on {{ $labels.host }}",
				description: who + " has used " + value + "% of its memory " + held + " (threshold " + strconv.Itoa(m.MemoryPercent) + "%). " +
					"First check: `ps aux --sort=-rss | head` on the host. App workers are recycled after max_requests, " +
					"so a steady climb points at too many workers for the host's memory or a leak inside one request.",
			},
			{
				name: "HostDiskSpaceLow", severity: "warning",
				expr: sel("node_filesystem_avail_bytes", node, fsFilter) + " / " + sel("node_filesystem_size_bytes", node, fsFilter) + " * 100 < " +
					strconv.Itoa(m.DiskFreePercent) + "\n  and " + sel("node_filesystem_readonly", node) + " == 0",
				summary: "Less than " + strconv.Itoa(m.DiskFreePercent) + "% free on {{ $labels.mountpoint }} of {{ $labels.host }}",
				description: "{{ $labels.mountpoint }} ({{ $labels.device }}) on " + who + " has had " + value + "% free space " + held +
					" (threshold " + strconv.Itoa(m.DiskFreePercent) + "%). " +
					"First check: `du -xh --max-depth=2 {{ $labels.mountpoint }} | sort -h | tail` on the host. " +
					"Logs are the usual cause: the nginx access log and the journal (`journalctl --disk-usage`).",
			},
			{
				name: "HostFileDescriptorsHigh", severity: "warning",
				expr: sel("node_filefd_allocated", node) + " / " + sel("node_filefd_maximum", node) + " * 100 > " +
					strconv.Itoa(m.FDUsedPercent),
				summary: "Kernel file handles above " + strconv.Itoa(m.FDUsedPercent) + "% on {{ $labels.host }}",
				description: who + " has " + value + "% of the kernel's file handles (fs.file-max) allocated " + held + ". " +
					"First check: `cat /proc/sys/fs/file-nr`, then find the process holding them with " +
					"`ls /proc/*/fd | wc -l` per PID. If the load is genuine, raise fs.file-max in the stack's tuning.sysctl.",
			},
			{
				name: "HostDiskWillFillIn24Hours", severity: "warning",
				// Below 40% free only, as node-mixin does: a large disk
				// with a short burst of writes is no emergency, and a new
				// Prometheus extrapolates from few samples.
				expr: sel("node_filesystem_avail_bytes", node, fsFilter) + " / " + sel("node_filesystem_size_bytes", node, fsFilter) + " * 100 < 40\n  and " +
					"predict_linear(" + sel("node_filesystem_avail_bytes", node, fsFilter) + "[6h], 24 * 3600) < 0\n  and " +
					sel("node_filesystem_readonly", node) + " == 0",
				summary: "{{ $labels.mountpoint }} on {{ $labels.host }} will be full within a day",
				description: "At the rate of the last 6 hours, {{ $labels.mountpoint }} ({{ $labels.device }}) on " + who +
					" fills up within 24 hours; it has been heading there " + held + ". " +
					"First check: `du -xh --max-depth=2 {{ $labels.mountpoint }} | sort -h | tail` for what grows, " +
					"then `journalctl --disk-usage` and the nginx logs' rotation.",
			},
			{
				name: "HostOOMKill", severity: "warning",
				expr:    "increase(" + sel("node_vmstat_oom_kill", node) + "[15m]) > 0",
				summary: "The kernel killed a process for memory on {{ $labels.host }}",
				description: "The kernel's OOM killer has ended " + value + " processes on " + who + " in the last 15 minutes, " +
					"and kept at it " + held + ". First check: `journalctl -k | grep -i 'killed process'` on the host for which " +
					"one, then `systemctl --failed`; app workers killed this way show as 502s.",
			},
			{
				name: "ServiceDown", severity: "critical",
				expr:    servicesDown(s),
				summary: "{{ $labels.name }} is not running on {{ $labels.host }}",
				description: "systemd reports {{ $labels.name }} on " + who + " not active " + held + ": a service the stack runs there is stopped. " +
					"First check: `systemctl status {{ $labels.name }}` and `journalctl -u {{ $labels.name }} -n 50` on the host. " +
					"An app host without its app server or nginx should be out of the balancers' rotation; confirm the others carry the load, then start it.",
			},
			{
				name: "SystemdUnitFailed", severity: "warning",
				expr:    sel("node_systemd_unit_state", node, eq("state", "failed")) + " == 1",
				summary: "Unit {{ $labels.name }} failed on {{ $labels.host }}",
				description: "systemd unit {{ $labels.name }} on " + who + " has been in the failed state " + held + ". " +
					"First check: `systemctl status {{ $labels.name }}` and `journalctl -u {{ $labels.name }} -n 50` on the host; " +
					"after fixing the cause, `systemctl reset-failed {{ $labels.name }}`.",
			},
		},
	})

	if certHosts(s) != "" {
		d := strconv.Itoa(m.CertExpiryDays)
		gs = append(gs, group{
			name: "certificates",
			comment: "The TLS certificates the hosts serve, from the textfile collector: hacompile-cert-expiry.timer\n" +
				"writes each certificate's notAfter on the hosts that terminate TLS (" + certHosts(s) + ").",
			rules: []rule{
				{
					name: "CertificateExpiringSoon", severity: "warning",
					expr:    "(" + sel(nodeexporter.CertMetric, node) + " - time()) / 86400 < " + d,
					summary: "The certificate {{ $labels.path }} on {{ $labels.host }} expires within " + d + " days",
					description: "{{ $labels.path }} on " + who + " expires in " + value + " days (threshold " + d + " days). " +
						certCheck(s),
				},
				{
					name: "CertificateMissing", severity: "critical",
					expr:    sel(nodeexporter.CertPresentMetric, node) + " == 0",
					summary: "No readable certificate at {{ $labels.path }} on {{ $labels.host }}",
					description: "{{ $labels.path }} on " + who + " has been missing or unreadable " + held +
						", so HTTPS fails there. First check: `ls -l {{ $labels.path }}`; " + certProvision(s),
				},
			},
		})
	}

	gs = append(gs, group{
		name: "processes",
		comment: "Open files per process, from the process collector of every Prometheus client\n" +
			"library: each exporter scraped here, and the app once it exposes metrics.",
		rules: []rule{{
			name: "ProcessFileDescriptorsHigh", severity: "warning",
			expr:    "process_open_fds / process_max_fds * 100 > " + strconv.Itoa(m.FDUsedPercent),
			summary: "{{ $labels.job }} on {{ $labels.instance }} is near its open-file limit",
			description: "The {{ $labels.job }} process scraped at {{ $labels.instance }} has used " + value +
				"% of its open-file limit " + held + " (threshold " + strconv.Itoa(m.FDUsedPercent) + "%). " +
				"First check: `cat /proc/<pid>/limits` and `ls /proc/<pid>/fd | wc -l` for that process. At the limit it " +
				"fails accept() and open() with EMFILE; the stack sets LimitNOFILE to tuning.nofile (" +
				strconv.Itoa(s.Tuning.Nofile) + ").",
		}},
	})

	if s.PullEnabled() {
		pl := s.Delivery.Pull
		// A host applies every interval plus up to the random delay: two
		// such periods without catching up are a host stuck, three
		// without any success a host whose agent is not running.
		period := pl.IntervalMinutes + pl.RandomizedDelayMinutes
		unit := "hacompile-pull-" + s.Name
		gs = append(gs, group{
			name: "delivery",
			comment: "Pull delivery (delivery.pull), from the textfile collector: each host's hacompile apply,\n" +
				"run by " + unit + ".timer, writes what it applied and whether it failed.",
			rules: []rule{
				{
					name: "HostStuckOnOldDigest", severity: "warning",
					expr:    sel("hacompile_apply_behind", node) + " == 1",
					forDur:  strconv.Itoa(2*period) + "m",
					summary: "{{ $labels.host }} has not applied the artifact its tag points at",
					description: who + " follows a tag of " + pl.Registry + "/" + pl.Repository + " that points at an artifact it has not applied " +
						"for two of its periods (" + strconv.Itoa(period) + " minutes each): its applies fail. First check: " +
						"`journalctl -u " + unit + ".service -n 50` on the host (a signature refused, drift, a failed validate or health check) " +
						"and /var/lib/hacompile/" + s.Name + ".pull.json's last_error.",
				},
				{
					name: "PullNotApplying", severity: "warning",
					expr:    "time() - " + sel("hacompile_apply_last_success_timestamp_seconds", node) + " > " + strconv.Itoa(3*period*60),
					summary: "{{ $labels.host }} has not applied its files successfully in " + strconv.Itoa(3*period) + " minutes",
					description: who + " has had no successful apply for three of its periods (" + strconv.Itoa(period) + " minutes each). " +
						"First check: `systemctl status " + unit + ".timer " + unit + ".service` on the host, then whether it reaches " + pl.Registry + ".",
				},
			},
		})
	}

	var down []rule
	for _, j := range p.jobs {
		if j.name == jobNode {
			continue
		}
		r := rule{
			name: "TargetDown", severity: "warning", exporter: j.exporter,
			expr:    sel("up", eq("job", j.name)) + " == 0",
			summary: "Prometheus cannot scrape " + j.name + " at {{ $labels.instance }}",
		}
		switch j.name {
		case jobHAProxy:
			r.severity = "critical"
			r.summary = "HAProxy on {{ $labels.host }} does not answer"
			r.description = "HAProxy's exporter on " + who + " has not answered " + held + "; it is served by HAProxy " +
				"itself, so HAProxy is probably down and not balancing traffic. First check: `systemctl status haproxy` " +
				"and `haproxy -c -f /etc/haproxy/haproxy.cfg` on the host."
		case jobNginxlog:
			r.description = "mtail on " + who + " has not answered " + held +
				", so 5xx responses of that host are not being counted. First check: " +
				"`systemctl status mtail` on the host and `cat /etc/default/mtail`."
		case jobPostgres, jobMySQL:
			r.description = "The " + j.name + " exporter on the monitoring host has failed to probe " +
				"{{ $labels.instance }} ({{ $labels.db_role }}) " + held + ", so the database's health is unknown. " +
				"First check: `systemctl status prometheus-" + exporterPackage(j.name) + "` on the monitoring host and its log."
		case jobRedis:
			r.description = "redis_exporter on " + who + " has not answered " + held +
				", so Redis's health is unknown. First check: `systemctl status prometheus-redis-exporter` on the cache host."
		case jobRabbitMQ:
			r.severity = "critical"
			r.summary = "RabbitMQ on {{ $labels.host }} does not answer"
			r.description = "RabbitMQ's metrics on " + who + " have not answered " + held + "; they are served by the " +
				"broker itself, so RabbitMQ is probably down and Celery tasks are neither queued nor run. First check: " +
				"`systemctl status rabbitmq-server` and `rabbitmq-diagnostics status` on the queue host."
		case jobRedisProbe:
			r.description = "redis_exporter on the monitoring host has failed to probe {{ $labels.instance }} " + held +
				", so Redis's health is unknown. First check: `systemctl status prometheus-redis-exporter` on the monitoring host."
		}
		down = append(down, r)
	}
	if len(down) > 0 {
		gs = append(gs, group{
			name:    "targets",
			comment: "Exporters that stopped answering: the alerts below them cannot fire meanwhile.",
			rules:   down,
		})
	}

	errRate := num(m.ErrorRatePercent)
	switch p.httpJob {
	case jobHAProxy:
		px := []string{eq("job", jobHAProxy), proxyMatcher(s, p)}
		fives := append(px[:2:2], eq("code", "5xx"))
		gs = append(gs, group{
			name: "http",
			comment: "5xx responses of the app hosts as HAProxy counts them (backend " + p.backend + "),\n" +
				"including the 502/503/504 HAProxy sends itself when no app host answers.",
			rules: []rule{{
				name: "High5xxRate", severity: "critical",
				expr: "sum by (instance, host, proxy) (rate(" + sel("haproxy_backend_http_responses_total", fives...) + "[5m]))\n" +
					"  / sum by (instance, host, proxy) (rate(" + sel("haproxy_backend_http_responses_total", px...) + "[5m]))\n" +
					"  * 100 > " + errRate,
				summary: "More than " + errRate + "% 5xx responses through HAProxy on {{ $labels.host }}",
				description: value + "% of the responses of backend {{ $labels.proxy }} on " + who + " have been 5xx " + held +
					" (threshold " + errRate + "%). First check: the HAProxy log (`journalctl -u haproxy`) for which " +
					"server answers 5xx and the termination state; then that app host's app log " +
					"(" + appJournal(s) + ").",
			}},
		})
	case jobNginxlog:
		gs = append(gs, group{
			name: "http",
			comment: "5xx responses of each app host, from its nginx access log. The balancer's own\n" +
				"metrics (" + balancerMetrics(s) + ") are outside Prometheus.",
			rules: []rule{{
				name: "High5xxRate", severity: "critical",
				expr: "sum by (instance, host) (rate(" + sel(mtail.Metric, eq("job", jobNginxlog), `status=~"5.."`) + "[5m]))\n" +
					"  / sum by (instance, host) (rate(" + sel(mtail.Metric, eq("job", jobNginxlog)) + "[5m]))\n" +
					"  * 100 > " + errRate,
				summary: "More than " + errRate + "% 5xx responses on {{ $labels.host }}",
				description: value + "% of the responses of nginx on " + who + " have been 5xx " + held +
					" (threshold " + errRate + "%). First check: `tail /var/log/nginx/error.log` on the host " +
					"(502/504: the app server is down or too slow), then " + appJournal(s) + ".",
			}},
		})
	}

	for _, ab := range backends(s, p) {
		if !p.has(jobHAProxy) || ab.hosts == 0 {
			break
		}
		px := []string{eq("job", jobHAProxy), eq("proxy", ab.backend)}
		n := strconv.Itoa(ab.hosts)
		app := ab.app
		gs = append(gs, group{
			name:    ab.group,
			comment: "HAProxy's view of the " + n + " app hosts in backend " + ab.backend + ab.of + ".",
			rules: []rule{
				{
					name: "BackendDown", severity: "critical", app: ab.label,
					expr:    sel("haproxy_backend_active_servers", px...) + " == 0",
					summary: "No app host is serving backend {{ $labels.proxy }} on {{ $labels.host }}",
					description: "HAProxy on " + who + " has had no healthy app host in backend {{ $labels.proxy }} " + held +
						": every request gets a 503. First check: `systemctl status " + app.Name + "` on each of " + hostRuns(ab.servers) + "; then " +
						"HAProxy's health check by hand from {{ $labels.host }} to each app host's private address, where its nginx " +
						"listens (not 127.0.0.1): " + healthCurls(s, ab) + ".",
				},
				{
					name: "UnhealthyBackends", severity: "warning", app: ab.label,
					expr:    sel("haproxy_backend_active_servers", px...) + " < " + n,
					summary: "Only {{ $value }} of " + n + " app hosts are serving on {{ $labels.host }}",
					description: "HAProxy on " + who + " has had {{ $value }} of the stack's " + n + " app hosts in rotation " + held +
						", so the others carry their load. First check: the stats page (http://" +
						hostPort(s.Balancer.Stats.Address, s.Balancer.Stats.Port) + s.Balancer.Stats.URI +
						" on the lb host) for which servers are DOWN or in MAINT, and why.",
				},
				{
					name: "BackendServerDown", severity: "warning", app: ab.label,
					expr:    sel("haproxy_server_status", append(px[:2:2], eq("state", "DOWN"))...) + " == 1",
					summary: "App host {{ $labels.server }} is failing health checks on {{ $labels.host }}",
					description: "HAProxy on " + who + " has marked server {{ $labels.server }} of backend {{ $labels.proxy }} DOWN " + held +
						" (health check " + s.Balancer.Health.Path + "). First check: `journalctl -u " + app.Name + "` on " +
						"{{ $labels.server }} and whether " + s.Balancer.Health.Path + " answers 200 there.",
				},
			},
		})
	}

	if g, ok := vrrpGroup(s); ok {
		gs = append(gs, g)
	}

	if p.dbJob != "" {
		db := eq("job", p.dbJob)
		// postgres_exporter 0.17.1 (Debian 13) on /probe: pg_up, the
		// replication collector's lag behind the primary, and whether
		// the server is in recovery at all (the lag reads 0 on a
		// primary). TestPostgresExporterLive scrapes them from a real
		// primary and replica. (Debian 12's 0.11.1 has no /probe.)
		l := strconv.Itoa(m.ReplicationLagSeconds)
		up := "pg_up"
		lag := "(" + sel("pg_replication_lag_seconds", db) + "\n  and on (instance) " + sel("pg_replication_is_replica", db) + " == 1) > " + l
		if p.dbJob == jobMySQL {
			up = "mysql_up"
			lag = sel("mysql_slave_status_seconds_behind_master", db) + " - " + sel("mysql_slave_status_sql_delay", db) + " > " + l
		}
		g := group{
			name:    "database",
			comment: "The " + s.Database.Engine + " primary and its replicas, through " + exporterPackage(p.dbJob) + ".",
			rules: []rule{{
				name: "DatabaseDown", severity: "critical",
				expr:    sel(up, db) + " == 0",
				summary: "Database {{ $labels.instance }} ({{ $labels.db_role }}) is unreachable",
				description: "The exporter has not been able to connect to {{ $labels.instance }} ({{ $labels.db_role }}) " + held + ". " +
					"First check: " + dbFirstCheck(s) + " Then connect from an app host with the app's credentials.",
			}},
		}
		if p.replicas {
			g.rules = append(g.rules, rule{
				name: "DatabaseReplicationLag", severity: "warning",
				expr:    lag,
				summary: "Replica {{ $labels.instance }} is more than " + l + "s behind the primary",
				description: "{{ $labels.instance }} ({{ $labels.db_role }}) has been " + value + "s behind the primary " + held +
					" (threshold " + l + "s): reads from it return stale data. First check: write load and long-running " +
					"queries on the primary, and the replica's CPU and disk I/O" + managedHint(s) + ".",
			})
		}
		gs = append(gs, g)
	}

	if p.has(jobRedis) || p.has(jobRedisProbe) {
		rj := `job=~"` + jobRedis + "|" + jobRedisProbe + `"`
		mem := strconv.Itoa(m.RedisMemoryPercent)
		rc := redisFirstChecks(s, p)
		gs = append(gs, group{
			name:    "cache",
			comment: "Redis, through redis_exporter.",
			rules: []rule{
				{
					name: "RedisDown", severity: "critical",
					expr:    sel("redis_up", rj) + " == 0",
					summary: "Redis {{ $labels.instance }} ({{ $labels.service }}) is unreachable",
					description: "redis_exporter has not been able to connect to {{ $labels.instance }} ({{ $labels.service }}) " + held +
						". The app falls back to the database or loses sessions and queued jobs. First check: " + rc.down,
				},
				{
					name: "RedisMemoryHigh", severity: "warning",
					expr: sel("redis_memory_used_bytes", rj) + " / " + sel("redis_memory_max_bytes", rj) + " * 100 > " + mem +
						"\n  and " + sel("redis_memory_max_bytes", rj) + " > 0",
					summary: "Redis {{ $labels.instance }} uses more than " + mem + "% of its maxmemory",
					description: "Redis at {{ $labels.instance }} ({{ $labels.service }}) has used " + value + "% of maxmemory " + held +
						" (threshold " + mem + "%): next it evicts keys or, with noeviction, refuses writes. First check: " + rc.memory,
				},
				{
					name: "RedisEvictingKeys", severity: "warning",
					expr:    "rate(" + sel("redis_evicted_keys_total", rj) + "[5m]) > 0",
					summary: "Redis {{ $labels.instance }} is evicting keys",
					description: "Redis at {{ $labels.instance }} ({{ $labels.service }}) has evicted " + value + " keys a second " + held +
						": the cache is smaller than what the app keeps in it, so hit rates fall and the database takes the misses. " +
						"First check: " + rc.evicting,
				},
			},
		})
	}

	if w := s.Workers; w != nil && s.RoleCount("worker") > 0 {
		unit := celery.WorkerUnit(workersApp(s))
		g := group{
			name:    "celery",
			comment: "Celery workers: their units on the worker hosts (node_exporter's systemd collector)" + celeryQueueNote(p) + ".",
			rules: []rule{{
				name: "CeleryNoWorker", severity: "critical",
				expr: "sum(" + sel("node_systemd_unit_state", node, eq("name", unit), eq("state", "active")) + ") == 0\n" +
					"  or absent(" + sel("node_systemd_unit_state", node, eq("name", unit), eq("state", "active")) + ")",
				summary: "No Celery worker is consuming " + s.Name + "'s queues",
				description: "No worker host has had " + unit + " active " + held + ": tasks queue up and nothing runs them. " +
					"First check: `systemctl status " + unit + "` and `journalctl -u " + unit + " -n 50` on a worker host, " +
					"then whether the broker accepts its connection.",
			}},
		}
		if p.rabbitQueues() {
			g.rules = append(g.rules, workersMissing(s, unit, held))
			d := strconv.Itoa(m.QueueDepth)
			rq := sel("rabbitmq_queue_messages_ready", eq("job", jobRabbitMQ))
			g.rules = append(g.rules, rule{
				name: "CeleryQueueBacklog", severity: "warning",
				expr:    rq + " > " + d,
				summary: "Celery queue {{ $labels.queue }} holds more than " + d + " tasks",
				description: "Queue {{ $labels.queue }} (vhost {{ $labels.vhost }}) on {{ $labels.host }} has held " + value + " waiting tasks " + held +
					" (threshold " + d + "): the workers do not keep up. First check: " + celeryInspect(s) +
					" for stuck tasks, then the workers' CPU; add concurrency or worker hosts.",
			}, rule{
				name: "RabbitMQAlarm", severity: "critical",
				expr: "max by (host) (" + sel("rabbitmq_alarms_memory_used_watermark", eq("job", jobRabbitMQ)) + ") == 1\n" +
					"  or max by (host) (" + sel("rabbitmq_alarms_free_disk_space_watermark", eq("job", jobRabbitMQ)) + ") == 1",
				summary: "RabbitMQ on {{ $labels.host }} blocks publishers (memory or disk alarm)",
				description: "RabbitMQ on {{ $labels.host }} has had its memory or free-disk alarm set " + held +
					": publishers are blocked, so the app cannot queue tasks. First check: `rabbitmq-diagnostics alarms` and " +
					"`rabbitmqctl list_queues -p " + s.Queue.VHost + " name messages consumers` on the queue host; queues that grow without consumers " +
					"are the usual cause.",
			})
		}
		if p.redisQueues {
			d := strconv.Itoa(m.QueueDepth)
			g.rules = append(g.rules, rule{
				name: "CeleryQueueBacklog", severity: "warning",
				expr:    sel("redis_key_size", eq("job", jobRedis)) + " > " + d,
				summary: "Celery queue {{ $labels.key }} holds more than " + d + " tasks",
				description: "Queue {{ $labels.key }} on {{ $labels.instance }} has held " + value + " waiting tasks " + held +
					" (threshold " + d + "): the workers do not keep up. First check: " + celeryInspect(s) +
					" for stuck tasks, then the workers' CPU; add concurrency or worker hosts.",
			})
		}
		gs = append(gs, g)
	}
	return gs
}

// workersMissing is the alert on each queue the workers consume with
// fewer consumers on the stack's own RabbitMQ than there are worker
// hosts (each consumes every queue once), or none yet declared. A worker
// whose broker refuses it (a wrong password file, a broker it cannot
// reach) keeps its unit active while it retries, so the units alone
// (CeleryNoWorker) never see it; a hung host is dropped by the broker's
// heartbeat and counted here too. With one worker host, a queue without
// its consumer runs nothing: critical.
func workersMissing(s *schema.Stack, unit, held string) rule {
	n := s.RoleCount("worker")
	var terms []string
	for _, q := range s.Workers.QueueNames() {
		m := sel("rabbitmq_queue_consumers", eq("job", jobRabbitMQ), eq("vhost", s.Queue.VHost), eq("queue", q))
		terms = append(terms, "sum by (job, vhost, queue) ("+m+") < "+strconv.Itoa(n), "absent("+m+")")
	}
	severity, hosts := "warning", strconv.Itoa(n)+" worker hosts"
	if n == 1 {
		severity, hosts = "critical", "1 worker host"
	}
	return rule{
		name: "CeleryWorkersMissing", severity: severity,
		expr:    strings.Join(terms, "\n  or "),
		summary: "Queue {{ $labels.queue }} has fewer consumers than the stack's " + hosts,
		description: "Queue {{ $labels.queue }} (vhost {{ $labels.vhost }}) has had fewer consumers than the stack's " + hosts + " " + held + ", or none declared: a worker host is down, hung (its broker connection dropped by the heartbeat) " +
			"or cannot log in to the broker, and its unit may still be active while Celery retries. First check: " +
			celeryInspect(s) + ": the workers that answer are consuming; then `journalctl -u " + unit + " -n 50` on a worker host " +
			"that does not answer (a broker it cannot reach or log in to is logged there).",
	}
}

// redisChecks are the first checks of the Redis alerts, each a sentence
// or more.
type redisChecks struct{ down, memory, evicting string }

// redisFirstChecks says what to check first for the Redis servers the
// stack watches. A self-hosted Redis (job redis) runs on the cache host,
// the one host with redis-cli (redis-tools comes with redis-server),
// and every client logs in as the default user of its ACL file: redis-cli
// asks for that password (--askpass), which the app hosts have in
// cache.password_file. A Redis outside the stack (job redis-probe: a
// managed one, or a Redis broker elsewhere) has no host of the stack to
// run anything on: its provider shows its health and memory, and its
// size is no setting of the stack. No app host has redis-cli, so
// whether they reach a Redis is a plain TCP connection from bash.
func redisFirstChecks(s *schema.Stack, p *plan) redisChecks {
	var local, remote redisChecks
	if p.has(jobRedis) {
		c := s.Cache
		cli := "redis-cli"
		if c.Port != 6379 {
			cli += " -p " + strconv.Itoa(c.Port)
		}
		cli += " --askpass"
		on := "on the cache host (" + strings.Join(schema.HostNamesOf(s.CacheHosts()), ", ") + "; --askpass asks for the password of Redis's default user"
		if c.PasswordFile != "" {
			on += ", the one in " + c.PasswordFile + " on the app hosts"
		}
		on += ")"
		local = redisChecks{
			down: "`systemctl status redis-server` and `" + cli + " ping` " + on + ", then whether an app host reaches it: " +
				reachCheck(s.CacheEndpoint(), c.Port) + " (no app host has redis-cli).",
			memory: "`" + cli + " info memory` and `" + cli + " --bigkeys` " + on + "; raise cache.maxmemory_percent (now " +
				strconv.Itoa(c.MaxmemoryPercent) + ") or the host's memory.",
			evicting: "`" + cli + " info stats` (evicted_keys) and `" + cli + " info memory` " + on + ".",
		}
	}
	if p.has(jobRedisProbe) {
		var addrs []string
		for _, j := range p.jobs {
			if j.name == jobRedisProbe {
				for _, t := range j.targets {
					addrs = append(addrs, strings.TrimPrefix(t.addr, "redis://"))
				}
			}
		}
		reach := reachCheck("<host>", 0) + " with the address and port of {{ $labels.instance }}"
		where := "{{ $labels.instance }}"
		if len(addrs) == 1 {
			h, port, _ := net.SplitHostPort(addrs[0])
			n, _ := strconv.Atoi(port)
			reach, where = reachCheck(h, n), addrs[0]
		}
		outside := ": it runs outside this stack, at " + where + " (a managed service or a server of its own), and no host of the stack has redis-cli."
		remote = redisChecks{
			down: "its status in its provider's console and metrics" + outside + " Then whether an app host reaches it: " + reach + ".",
			memory: "its memory use in its provider's console and metrics" + outside + " Its size is set there (its plan, " +
				"or its server's memory), not by the stack: cache.maxmemory_percent applies to a self-hosted Redis only. " +
				"Give it more memory there, or store less in it.",
			evicting: "its memory and evictions in its provider's console and metrics" + outside + " Give it more memory there " +
				"(its size is no setting of the stack), or shorter TTLs to what the app keeps in it.",
		}
	}
	switch {
	case local.down == "":
		return remote
	case remote.down == "":
		return local
	}
	both := func(l, r string) string { return l + " For a Redis outside the stack: " + r }
	return redisChecks{both(local.down, remote.down), both(local.memory, remote.memory), both(local.evicting, remote.evicting)}
}

// reachCheck tests from a host without redis-cli that a TCP connection
// to host:port opens; port 0 writes a placeholder.
func reachCheck(host string, port int) string {
	ps := "<port>"
	if port != 0 {
		ps = strconv.Itoa(port)
	}
	return "`timeout 3 bash -c '</dev/tcp/" + host + "/" + ps + "' && echo reachable`"
}

// celeryInspect is `celery inspect active` on a worker host, run the way
// the worker unit runs celery: the app's virtualenv binary (no celery is
// on PATH), as the app's user, in its working directory, with the
// environment files that name the broker (root-only, so systemd reads
// them, as it does for the unit).
func celeryInspect(s *schema.Stack) string {
	return "`" + strings.Join(CeleryInspect(s), " ") + "` on a worker host (as " + celery.WorkerUnit(workersApp(s)) + " runs celery)"
}

// CeleryInspect is the command line of the alerts' first check of the
// Celery queue: celery inspect active, as the worker unit runs celery.
// The system test runs it on a booted worker host.
func CeleryInspect(s *schema.Stack) []string {
	app := workersApp(s)
	argv := []string{"systemd-run", "--quiet", "--pipe", "--wait", "--collect", "--uid=" + app.User}
	if app.Group != "" {
		argv = append(argv, "--gid="+app.Group)
	}
	argv = append(argv, "--working-directory="+app.WorkingDir, "-p", "EnvironmentFile="+app.EnvironmentFile)
	if appenv.Needed(s) {
		argv = append(argv, "-p", "EnvironmentFile=/"+appenv.Path(app))
	}
	return append(argv, celery.Binary(app, artifact.Options{}), "-A", s.Workers.App, "inspect", "active")
}

func exporterPackage(job string) string {
	if job == jobMySQL {
		return "mysqld-exporter"
	}
	return "postgres-exporter"
}

func dbFirstCheck(s *schema.Stack) string {
	if s.Database.Managed {
		return "the managed database's status page in the provider's console (maintenance, failover, connection limits)."
	}
	// The Debian units are named after the engines: postgresql, mysql.
	return "`systemctl status " + s.Database.Engine + "` on the database host and its log."
}

func managedHint(s *schema.Stack) string {
	if s.Database.Managed {
		return " in the provider's database metrics"
	}
	return ""
}

func balancerMetrics(s *schema.Stack) string {
	switch {
	case s.Balancer.Kind == "nginx":
		return "its stub_status counts connections, not status codes"
	case s.Provider == "aws":
		return "the ALB's HTTPCode_ELB_5XX_Count and HTTPCode_Target_5XX_Count in CloudWatch"
	case s.Provider == "digitalocean":
		return "the DigitalOcean load balancer's graphs and alert policies"
	}
	return "the cloud provider's load balancer metrics"
}

// renderAlerts writes alerts.yaml.
func renderAlerts(s *schema.Stack, p *plan) ([]byte, error) {
	w := &yamlWriter{}
	w.b.WriteString(artifact.Header("#", s))
	w.comment(0, fmt.Sprintf("Prometheus alerting rules for the %s stack. Every alert must hold for %d\n"+
		"minutes (monitoring.for_minutes) before it fires; thresholds come from the\n"+
		"stack's monitoring section. Check with: promtool check rules alerts.yaml", s.Name, s.Monitoring.ForMinutes))
	w.raw(0, "groups:")
	for i, g := range alertGroups(s, p) {
		if i > 0 {
			w.raw(0, "")
		}
		w.comment(2, g.comment)
		w.raw(2, "- name: "+w.q(g.name))
		w.raw(4, "rules:")
		for _, r := range g.rules {
			w.raw(6, "- alert: "+r.name)
			w.block(8, "expr", r.expr)
			switch {
			case r.forDur != "":
				w.raw(8, "for: "+r.forDur)
			case !r.always:
				w.raw(8, fmt.Sprintf("for: %dm", s.Monitoring.ForMinutes))
			}
			w.raw(8, "labels:")
			if r.app != "" {
				w.str(10, "app", r.app)
			}
			if r.exporter != "" {
				w.str(10, "exporter", r.exporter)
			}
			w.str(10, "severity", r.severity)
			w.raw(8, "annotations:")
			w.str(10, "summary", r.summary)
			w.str(10, "description", r.description)
			if r.runbook != "" {
				w.str(10, "runbook_url", r.runbook)
			} else {
				w.str(10, "runbook_url", RunbookURL(s, r.name, r.exporter, r.app))
			}
		}
	}
	return w.done()
}

func celeryQueueNote(p *plan) string {
	if p.rabbitQueues() {
		return ", and the queues' lengths and alarms of the self-hosted RabbitMQ (its Prometheus plugin)"
	}
	if p.redisQueues {
		return ", and the queues' lengths in the Redis broker (redis_exporter --check-single-keys)"
	}
	return "; the broker's queue lengths are not scraped (only a self-hosted RabbitMQ or a Redis broker on a cache host is)"
}

// certHosts names the hosts whose certificates are watched, "" for none.
func certHosts(s *schema.Stack) string {
	var names []string
	for _, h := range nodeexporter.CertHosts(s) {
		names = append(names, h.Name)
	}
	return strings.Join(names, ", ")
}

func certCheck(s *schema.Stack) string {
	if s.TLS.Mode == "certbot" {
		return "certbot renews 30 days ahead, so renewal is failing. First check: `certbot renew --dry-run` and " +
			"`systemctl list-timers certbot.timer` on the host; port 80 must reach certbot for the ACME challenge."
	}
	return "The certificate is provisioned by hand (tls.mode \"files\"). First check: order the new certificate, " +
		"install it at {{ $labels.path }} and reload the web server."
}

func certProvision(s *schema.Stack) string {
	if s.TLS.Mode == "certbot" {
		return "run `certbot certificates`, and the first-boot certbot command in the host's cloud-init."
	}
	return "provision the certificate there (tls.mode \"files\") and reload the web server."
}

// RunbookURL is where the runbook explains an alert: its section of the
// stack's alerts page (AlertAnchor), under monitoring.runbook_url, or
// from the runbook site's root when unset. exporter and app are the
// rule's labels of those names, "" when it has none.
func RunbookURL(s *schema.Stack, name, exporter, app string) string {
	return strings.TrimSuffix(s.Monitoring.RunbookURL, "/") + "/stacks/" + s.Name + "/alerts.html#" + AlertAnchor(name, exporter, app)
}

// AlertAnchor is the id of an alert's section on the stack's alerts
// page: alert-<name>, then its exporter label (the TargetDown rules),
// then its app label (the rules of each of several apps), so that every
// rule of alerts.yaml has a section of its own.
func AlertAnchor(name, exporter, app string) string {
	return artifact.Anchor("alert-", name+" "+exporter+" "+app)
}

// ProcedureURL is the runbook's section of the stack's procedures page
// with the given id ("failover-balancer").
func ProcedureURL(s *schema.Stack, id string) string {
	return strings.TrimSuffix(s.Monitoring.RunbookURL, "/") + "/stacks/" + s.Name + "/procedures.html#" + id
}

// services are the systemd services the stack runs, by role (and the
// beat scheduler on its one host): ServiceDown watches each where it
// runs.
func services(s *schema.Stack) [][2]string {
	var out [][2]string
	byRole := map[string][]string{}
	if s.MultiApp() {
		// Each app's unit where it runs; nginx on every app host.
		byRole["app"] = []string{"nginx.service"}
	} else {
		byRole["app"] = []string{systemd.UnitName(&s.App), "nginx.service"}
	}
	switch s.Balancer.Kind {
	case "haproxy":
		byRole["lb"] = append(byRole["lb"], "haproxy.service")
	case "nginx":
		byRole["lb"] = append(byRole["lb"], "nginx.service")
	}
	if keepalived.Enabled(s) {
		byRole["lb"] = append(byRole["lb"], "keepalived.service")
	}
	if s.Workers != nil {
		byRole["worker"] = []string{celery.WorkerUnit(&s.App)}
	}
	if s.Cache != nil && !s.Cache.Managed && s.Cache.Engine == "redis" {
		byRole["cache"] = []string{"redis-server.service"}
	}
	if memcached.Active(s) {
		byRole["cache"] = []string{memcached.Service}
	}
	if rabbitmq.Active(s) {
		byRole["queue"] = []string{rabbitmq.Service}
	}
	if pgbouncer.Active(s) {
		byRole["app"] = append(byRole["app"], pgbouncer.Unit)
		if len(byRole["worker"]) > 0 {
			byRole["worker"] = append(byRole["worker"], pgbouncer.Unit)
		}
	}
	for _, r := range []string{"lb", "app", "worker", "cache", "queue"} {
		if len(byRole[r]) > 0 && s.RoleCount(r) > 0 {
			out = append(out, [2]string{"roles=~" + strconv.Quote("(.*,)?"+r+"(,.*)?"), unitRegexp(byRole[r])})
		}
	}
	if s.MultiApp() {
		for _, a := range s.Apps {
			var hs []string
			for _, h := range s.AppHosts(a) {
				hs = append(hs, regexp.QuoteMeta(h.Name))
			}
			if len(hs) > 0 {
				out = append(out, [2]string{"host=~" + strconv.Quote("("+strings.Join(hs, "|")+")"), unitRegexp([]string{systemd.UnitName(a)})})
			}
		}
	}
	if b := s.BeatHost(); b != "" {
		out = append(out, [2]string{eq("host", b), unitRegexp([]string{celery.BeatUnit(workersApp(s))})})
	}
	return out
}

// workersApp is the app whose code the Celery workers run.
func workersApp(s *schema.Stack) *schema.App {
	if s.Workers != nil && s.Workers.Runs != "" {
		if a := s.AppByName(s.Workers.Runs); a != nil {
			return a
		}
	}
	return &s.App
}

// appBackend is one HAProxy backend of app hosts the alerts watch.
type appBackend struct {
	app            *schema.App
	backend, group string
	// of names the app, with several, and label is its name then.
	of, label string
	hosts     int
	// servers are the backend's app hosts.
	servers []*schema.Host
}

// backends are the HAProxy backends of the app hosts: "app" (or
// "app_tls"), or one per app with several.
func backends(s *schema.Stack, p *plan) []appBackend {
	if !s.MultiApp() {
		return []appBackend{{app: &s.App, backend: p.backend, group: "balancer", hosts: p.appHosts, servers: s.HostsWithRole("app")}}
	}
	var out []appBackend
	for _, a := range s.Apps {
		hs := s.AppHosts(a)
		out = append(out, appBackend{app: a, backend: "app_" + a.Name, group: "balancer-" + a.Name,
			of: " (app " + a.Name + ")", label: a.Name, hosts: len(hs), servers: hs})
	}
	return out
}

// healthCurl is HAProxy's health check of app a on host h by hand: to
// the host's private address, where its nginx listens (not loopback),
// with the Host header (or, TLS passed through, the server name) the
// check sends, and the PROXY header when the host's listeners expect
// one.
func healthCurl(s *schema.Stack, a *schema.App, h *schema.Host) string {
	curl := "curl -i"
	if s.ProxyProtocol() {
		curl += " --haproxy-protocol"
	}
	domain := ""
	if ds := s.AppDomains(a); len(ds) > 0 {
		domain = ds[0]
	}
	path := s.Balancer.Health.Path
	if passesTLS(s) && domain != "" {
		// The check only asks whether TLS answers (verify none): -k.
		addr := h.Address
		if strings.Contains(addr, ":") {
			addr = "[" + addr + "]" // curl's --resolve wants IPv6 in brackets
		}
		return fmt.Sprintf("%s -k --resolve %s:%d:%s https://%s%s", curl, domain, haproxy.AppTLSPort, addr, domain, path)
	}
	if domain != "" {
		curl += " -H 'Host: " + domain + "'"
	}
	return curl + " http://" + hostPort(h.Address, a.HTTPPort) + path
}

// hostRuns names hosts, runs of numbered names shortened: "app1…app4, db1".
func hostRuns(hs []*schema.Host) string {
	var ns []string
	for _, r := range artifact.CompactRuns(schema.HostNamesOf(hs)) {
		if r.First == r.Last {
			ns = append(ns, r.First)
		} else {
			ns = append(ns, r.First+"…"+r.Last)
		}
	}
	return strings.Join(ns, ", ")
}

// healthCurls are the health checks by hand of a backend's servers, for
// the balancer to run: one per host, or with many, the first and the
// hosts to repeat it for.
func healthCurls(s *schema.Stack, ab appBackend) string {
	const most = 3
	var cs []string
	for i, h := range ab.servers {
		if i == most-1 && len(ab.servers) > most {
			cs = append(cs, "the same with the address of "+hostRuns(ab.servers[i:]))
			break
		}
		cs = append(cs, "`"+healthCurl(s, ab.app, h)+"` ("+h.Name+")")
	}
	return strings.Join(cs, ", ")
}

// proxyMatcher selects the app hosts' backends in HAProxy's series.
func proxyMatcher(s *schema.Stack, p *plan) string {
	if !s.MultiApp() {
		return eq("proxy", p.backend)
	}
	var ns []string
	for _, a := range s.Apps {
		ns = append(ns, "app_"+a.Name)
	}
	return "proxy=~" + strconv.Quote("("+strings.Join(ns, "|")+")")
}

// appJournal is the command that reads the app's log, as a code span:
// with several apps, a placeholder and the apps' names to put there.
func appJournal(s *schema.Stack) string {
	if !s.MultiApp() {
		return "`journalctl -u " + s.App.Name + "`"
	}
	var ns []string
	for _, a := range s.Apps {
		ns = append(ns, a.Name)
	}
	return "`journalctl -u <app>` with the failing app's name: " + orList(ns)
}

// orList joins names as prose: "a", "a or b", "a, b or c".
func orList(ns []string) string {
	if len(ns) < 2 {
		return strings.Join(ns, "")
	}
	return strings.Join(ns[:len(ns)-1], ", ") + " or " + ns[len(ns)-1]
}

func unitRegexp(units []string) string {
	q := make([]string, len(units))
	for i, u := range units {
		q[i] = regexp.QuoteMeta(u)
	}
	return strings.Join(q, "|")
}

// servicesDown is ServiceDown's expression: a service of the stack not
// active on a host that runs it.
func servicesDown(s *schema.Stack) string {
	var terms []string
	for _, t := range services(s) {
		terms = append(terms, sel("node_systemd_unit_state", eq("job", jobNode), eq("state", "active"), t[0], "name=~"+strconv.Quote(t[1]))+" == 0")
	}
	if len(terms) == 0 {
		return "vector(0) == 1"
	}
	return strings.Join(terms, "\n  or ")
}
