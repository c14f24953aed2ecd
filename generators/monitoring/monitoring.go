// Package monitoring renders the stack's Prometheus monitoring: alerting
// rules (monitoring/alerts.yaml) with the thresholds of the stack's
// monitoring section, and the scrape configuration (monitoring/prometheus.yml)
// that collects exactly the series those rules read, under the same job
// names. Both are stack-level files: Prometheus runs outside the stack's
// hosts, on a monitoring host that reaches their private addresses.
package monitoring

import (
	"net"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/mtail"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/generators/rabbitmq"
	"github.com/hacompile/hacompile/generators/redisexporter"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the monitoring generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "monitoring" }

// AllApps implements artifact.AllApps: one Prometheus watches every app.
func (Gen) AllApps() bool { return true }

// Paths of the two stack-level files under out/<stack>/. prometheus.yml
// names the rules by a path relative to itself, so the two must be
// installed side by side.
const (
	AlertsPath = "monitoring/alerts.yaml"
	ConfigPath = "monitoring/prometheus.yml"
)

// Exporter ports and addresses. The host exporters listen on every
// interface (their Debian defaults); the database and Redis exporters run
// on the monitoring host next to Prometheus and probe the servers named
// in each scrape (the multi-target pattern), because managed databases
// and caches have no host to install an exporter on.
const (
	postgresAddr = "127.0.0.1:9187"
	mysqlAddr    = "127.0.0.1:9104"
	redisAddr    = "127.0.0.1:9121"
)

// Job names, shared by prometheus.yml and every alert expression.
const (
	jobNode     = "node"
	jobHAProxy  = "haproxy"
	jobNginxlog = "nginxlog"
	jobPostgres = "postgres"
	jobMySQL    = "mysql"
	jobRedis    = "redis"
	jobRabbitMQ = "rabbitmq"
	// jobRedisProbe probes Redis servers that are not hosts of the stack.
	jobRedisProbe = "redis-probe"
)

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if !s.Monitoring.Enabled {
		return nil, nil
	}
	p := newPlan(s)
	if err := unused(s, p); err != nil {
		return nil, err
	}
	if err := urlFiles(s); err != nil {
		return nil, err
	}
	alerts, err := renderAlerts(s, p)
	if err != nil {
		return nil, err
	}
	config, err := renderConfig(s, p)
	if err != nil {
		return nil, err
	}
	am, err := renderAlertmanager(s, alertGroups(s, p))
	if err != nil {
		return nil, err
	}
	files := []artifact.File{
		{
			Path: AlertsPath, Content: alerts, Mode: 0o644,
			Validate: artifact.Run("promtool", "check", "rules", AlertsPath),
			Reload:   artifact.ReloadUnit("prometheus"),
		},
		{
			Path: ConfigPath, Content: config, Mode: 0o644,
			Validate: artifact.Run("promtool", "check", "config", ConfigPath),
			Reload:   artifact.ReloadUnit("prometheus"),
		},
		{
			Path: AlertmanagerPath, Content: am, Mode: 0o644,
			Validate: artifact.Run("amtool", "check-config", AlertmanagerPath),
			Reload:   artifact.ReloadUnit("prometheus-alertmanager"),
		},
	}
	if p.dbJob == jobPostgres {
		files = append(files, artifact.File{
			Path: PostgresExporterPath, Content: renderPostgresExporter(s, opt), Mode: 0o644,
			Reload: artifact.Restart(PostgresExporterPackage),
		})
	}
	return files, nil
}

// unused refuses a monitoring setting the stack wrote for something it
// does not have: it would render nothing.
func unused(s *schema.Stack, p *plan) error {
	am := s.Monitoring.Alertmanager
	if am == nil {
		am = &schema.Alertmanager{}
	}
	for _, c := range []struct {
		path string
		used bool
		why  string
	}{
		{"monitoring.address", p.has(jobHAProxy), "only HAProxy's metrics listener admits the monitoring host by address; the other exporters listen on each host's private address"},
		{"monitoring.ports.haproxy", p.has(jobHAProxy), "no HAProxy balancer is scraped"},
		{"monitoring.ports.mtail", p.has(jobNginxlog), "no mtail runs (it counts responses on the app hosts when no HAProxy balancer sees them)"},
		{"monitoring.ports.redis", p.has(jobRedis), "no self-hosted Redis runs an exporter"},
		{"monitoring.redis_memory_percent", p.has(jobRedis) || p.has(jobRedisProbe), "the stack has no Redis cache"},
		{"monitoring.replication_lag_seconds", p.replicas, "the database has no replicas"},
		{"monitoring.queue_depth", p.redisQueues || p.rabbitQueues(), "no broker the stack runs (Redis on a cache host, self-hosted RabbitMQ) exports the queues' lengths"},
		{"monitoring.cert_expiry_days", certHosts(s) != "", "no host holds a certificate"},
		{"monitoring.alertmanager.auth_password_file", am.AuthUsername != "", "Alertmanager logs in to the smarthost only with auth_username"},
		{"monitoring.alertmanager.watchdog_credentials_file", am.WatchdogURL != "" || am.WatchdogURLFile != "", "there is no dead man's switch without watchdog_url or watchdog_url_file"},
	} {
		if !c.used && wrote(s, c.path) {
			return artifact.Errorf(c.path, "renders nothing: %s; remove it", c.why)
		}
	}
	return nil
}

// urlFiles: a webhook receiver names its endpoint by url or url_file,
// one of them, and the dead man's switch by watchdog_url or
// watchdog_url_file, at most one; a URL file the release's
// Alertmanager cannot read is refused rather than rendered into a
// configuration it would not load.
func urlFiles(s *schema.Stack) error {
	am := s.Monitoring.Alertmanager
	if am == nil {
		return nil
	}
	if am.Kind == "webhook" {
		switch {
		case am.URL == "" && am.URLFile == "":
			return artifact.Errorf("monitoring.alertmanager", "a webhook receiver needs its endpoint: url, or url_file (a file on the monitoring host holding the URL, when the URL is itself the secret)")
		case am.URL != "" && am.URLFile != "":
			return artifact.Errorf("monitoring.alertmanager.url_file", "url and url_file both name the webhook's endpoint: keep one")
		}
	}
	if am.WatchdogURL != "" && am.WatchdogURLFile != "" {
		return artifact.Errorf("monitoring.alertmanager.watchdog_url_file", "watchdog_url and watchdog_url_file both name the dead man's switch: keep one")
	}
	rel := osrelease.MustLookup(s.OS)
	for _, c := range []struct{ path, file string }{
		{"monitoring.alertmanager.url_file", am.URLFile},
		{"monitoring.alertmanager.watchdog_url_file", am.WatchdogURLFile},
	} {
		switch {
		case c.file == "" || rel.AlertmanagerURLFile():
		case rel.Alertmanager == nil:
			return artifact.Errorf(c.path, "Alertmanager's version on %s is not recorded, so it is not known to read url_file in a webhook (Debian 13's 0.28 does): give the URL itself, or target debian-13", rel.Pretty)
		default:
			return artifact.Errorf(c.path, "Alertmanager %s on %s reads no url_file in a webhook (Debian 13's 0.28 does): give the URL itself, or target debian-13", rel.Alertmanager, rel.Pretty)
		}
	}
	return nil
}

// wrote is s.Wrote(path) with no string built for each position: a
// fleet's stack has tens of thousands.
func wrote(s *schema.Stack, path string) bool {
	for p := range s.Positions {
		if strings.HasPrefix(p, path) && (len(p) == len(path) || p[len(path)] == '.' || p[len(path)] == '[') {
			return true
		}
	}
	return false
}

// label is one target label.
type label struct{ name, value string }

// target is one scrape target and the labels alerts name it by.
type target struct {
	addr   string
	labels []label
}

// job is one scrape job. A probe job scrapes an exporter at probe and
// passes each target to it as the target parameter.
type job struct {
	name     string
	exporter string // the program serving the metrics
	comment  string
	path     string // metrics path; "" for the default /metrics
	probe    string
	// probeTarget, when set, is the target parameter built from each
	// target's address ($1); the instance label stays the address.
	probeTarget string
	params      []label
	targets     []target
}

// plan is what the stack monitors: the scrape jobs and the facts the
// alerts depend on. Alerts are only written for jobs that exist, so every
// job an alert names is scraped.
type plan struct {
	jobs []job
	// httpJob is where 5xx responses are counted: haproxy, or nginxlog
	// on the app hosts.
	httpJob string
	// backend is the HAProxy backend holding the app hosts.
	backend  string
	appHosts int
	dbJob    string
	replicas bool
	// redisQueues: the Celery queues' lengths are exported (job redis).
	redisQueues bool
}

// rabbitQueues reports whether the Celery queues' lengths come from the
// self-hosted RabbitMQ (job rabbitmq).
func (p *plan) rabbitQueues() bool { return p.has(jobRabbitMQ) }

func (p *plan) has(name string) bool {
	for _, j := range p.jobs {
		if j.name == name {
			return true
		}
	}
	return false
}

// HAProxyBackend is the HAProxy backend whose servers are the app hosts
// and whose health checks decide their state; the exporter labels its
// series proxy="<name>". The names are the haproxy generator's: "app",
// or "app_tls" when TLS passes through to the app hosts (backend "app"
// then only tracks it).
func HAProxyBackend(s *schema.Stack) string {
	if passesTLS(s) {
		return "app_tls"
	}
	return "app"
}

// passesTLS reports whether HAProxy relays TLS to the app hosts as TCP,
// seeing no HTTP status codes.
func passesTLS(s *schema.Stack) bool { return s.TLS.Enabled() && s.TLS.Terminate == "app" }

func newPlan(s *schema.Stack) *plan {
	p := &plan{backend: HAProxyBackend(s)}
	node := job{
		name: jobNode, exporter: "node_exporter",
		comment: "node_exporter (Debian: prometheus-node-exporter) on every host: CPU, memory, disks, file handles.",
	}
	for _, n := range s.HostNames() {
		h := s.Hosts[n]
		node.targets = append(node.targets, target{
			addr:   hostPort(h.Address, s.Monitoring.Ports.Node),
			labels: []label{{"host", n}, {"roles", strings.Join(h.Roles, ",")}},
		})
	}
	p.jobs = append(p.jobs, node)

	apps := s.HostsWithRole("app")
	p.appHosts = len(apps)
	lbs := s.HostsWithRole("lb")
	if s.Balancer.Kind == "haproxy" && len(lbs) > 0 {
		j := job{
			name: jobHAProxy, exporter: "haproxy",
			comment: "HAProxy's built-in exporter (http-request use-service prometheus-exporter) on the\n" +
				"metrics listener of each lb host: its private address, port " + strconv.Itoa(s.Monitoring.Ports.HAProxy) + "\n" +
				"(monitoring.ports.haproxy), admitting this monitoring host (" + s.Monitoring.Address + ") alone.",
			path: "/metrics",
		}
		for _, h := range lbs {
			j.targets = append(j.targets, target{
				addr:   hostPort(h.Address, s.Monitoring.Ports.HAProxy),
				labels: []label{{"host", h.Name}},
			})
		}
		p.jobs = append(p.jobs, j)
		if !passesTLS(s) {
			p.httpJob = jobHAProxy
		}
	}
	if p.httpJob == "" && mtail.Enabled(s) {
		// nginx's stub_status counts connections, not status codes; a
		// cloud balancer's own 5xx counts live in the provider's
		// monitoring, outside Prometheus; HAProxy relaying TLS sees no
		// status codes at all. Every request the balancer forwards is
		// logged by the app host's nginx, so 5xx responses are counted
		// from that log (generators/mtail).
		j := job{
			name: jobNginxlog, exporter: "mtail",
			comment: "mtail (Debian: mtail) on each app host, following nginx's access log\n" +
				"(/var/log/nginx/access.log, log_format hacompile) on the host's private address\n" +
				"(monitoring.ports.mtail): " + mtail.Metric + "{status}.",
		}
		for _, h := range apps {
			j.targets = append(j.targets, target{
				addr:   hostPort(h.Address, s.Monitoring.Ports.Mtail),
				labels: []label{{"host", h.Name}},
			})
		}
		p.jobs = append(p.jobs, j)
		p.httpJob = jobNginxlog
	}

	if db := s.Database; db != nil {
		j := job{path: "/probe", params: []label{{"auth_module", s.Name}}}
		switch db.Engine {
		case "mysql":
			j.name, j.probe, j.exporter = jobMySQL, mysqlAddr, "mysqld_exporter"
			j.params = []label{{"auth_module", "client." + s.Name}}
			j.comment = "mysqld_exporter (Debian: prometheus-mysqld-exporter) on the monitoring host, probing\n" +
				"each server; its credentials are the [client." + s.Name + "] section of the exporter's .my.cnf."
		default:
			j.name, j.probe, j.exporter = jobPostgres, postgresAddr, "postgres_exporter"
			j.params = nil
			j.probeTarget = PostgresTarget(db, "${1}")
			j.comment = "postgres_exporter (Debian 13: prometheus-postgres-exporter 0.17) on the monitoring\n" +
				"host, configured by " + PostgresExporterPath + ", probing each server\n" +
				"as " + db.User + " with a DSN that has no password: the exporter reads it from\n" +
				PostgresPassFile + " on that host."
		}
		if db.Managed {
			j.comment += "\nThe managed database also publishes the provider's own metrics (on\n" +
				"DigitalOcean a Prometheus-format endpoint per cluster with account-wide\n" +
				"credentials from GET /v2/databases/metrics/credentials); they use other\n" +
				"metric names and are not what these rules read."
		}
		j.targets = append(j.targets, target{
			addr: hostPort(db.Host, db.Port), labels: []label{{"db_role", "primary"}},
		})
		for _, r := range db.Replicas {
			j.targets = append(j.targets, target{
				addr: hostPort(r, db.Port), labels: []label{{"db_role", "replica"}},
			})
		}
		p.jobs = append(p.jobs, j)
		p.dbJob = j.name
		p.replicas = len(db.Replicas) > 0
	}

	// A self-hosted Redis has its exporter beside it on each cache host
	// (generators/redisexporter); a managed one, and a Redis broker
	// elsewhere, are probed by the exporter on the monitoring host.
	if c := s.Cache; c != nil && c.Engine == "redis" && !c.Managed {
		service := "cache"
		if redisexporter.BrokerIsLocal(s) {
			service = "cache,queue"
		}
		local := job{
			name: jobRedis, exporter: "redis_exporter",
			comment: "redis_exporter (Debian: prometheus-redis-exporter) on each cache host, reading\n" +
				"the local Redis and listening on the host's private address (monitoring.ports.redis).",
		}
		for _, h := range s.CacheHosts() {
			local.targets = append(local.targets, target{
				addr:   hostPort(h.Address, s.Monitoring.Ports.Redis),
				labels: []label{{"host", h.Name}, {"service", service}},
			})
		}
		if len(local.targets) > 0 {
			p.jobs = append(p.jobs, local)
			p.redisQueues = redisexporter.BrokerIsLocal(s)
		}
	}
	// A self-hosted RabbitMQ serves its own metrics (the rabbitmq_prometheus
	// plugin) on the queue host.
	if hs := rabbitmq.Hosts(s); len(hs) > 0 {
		j := job{
			name: jobRabbitMQ, exporter: "RabbitMQ",
			comment: "RabbitMQ's own Prometheus plugin (rabbitmq_prometheus) on the queue host's private\n" +
				"address, with per-queue metrics.",
		}
		for _, h := range hs {
			j.targets = append(j.targets, target{
				addr:   hostPort(h.Address, rabbitmq.MetricsPort),
				labels: []label{{"host", h.Name}, {"service", "queue"}},
			})
		}
		p.jobs = append(p.jobs, j)
	}
	redis := job{
		name: jobRedisProbe, exporter: "redis_exporter probe", path: "/scrape", probe: redisAddr,
		comment: "redis_exporter (Debian: prometheus-redis-exporter) on the monitoring host,\n" +
			"probing each Redis server named here.",
	}
	if c := s.Cache; c != nil && c.Engine == "redis" && c.Managed {
		redis.targets = append(redis.targets, target{
			addr: "redis://" + hostPort(c.Host, c.Port), labels: []label{{"service", "cache"}},
		})
	}
	if q := s.Queue; q != nil && q.Engine == "redis" && !redisexporter.BrokerIsLocal(s) {
		addr := "redis://" + hostPort(q.Host, q.Port)
		if len(redis.targets) == 1 && redis.targets[0].addr == addr {
			redis.targets[0].labels[0].value = "cache,queue"
		} else {
			redis.targets = append(redis.targets, target{addr: addr, labels: []label{{"service", "queue"}}})
		}
	}
	if len(redis.targets) > 0 {
		p.jobs = append(p.jobs, redis)
	}
	return p
}

func hostPort(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }

// renderConfig writes prometheus.yml.
func renderConfig(s *schema.Stack, p *plan) ([]byte, error) {
	w := &yamlWriter{}
	w.b.WriteString(artifact.Header("#", s))
	w.comment(0, "Prometheus scrape configuration for the "+s.Name+" stack. Prometheus runs on a\n"+
		"monitoring host that reaches the hosts' private addresses; alerts.yaml must\n"+
		"sit beside this file. Check both with: promtool check config prometheus.yml")
	w.raw(0, "global:")
	w.raw(2, "scrape_interval: 15s")
	w.raw(2, "scrape_timeout: 10s")
	w.raw(2, "evaluation_interval: 15s")
	w.raw(2, "external_labels:")
	w.str(4, "stack", s.Name)
	w.raw(0, "")
	w.list(0, "rule_files", []string{"alerts.yaml"})
	w.raw(0, "")
	w.comment(0, "Alertmanager on the monitoring host routes alerts to people (Debian:\n"+
		"prometheus-alertmanager); receivers and their secrets are configured there.")
	w.raw(0, "alerting:")
	w.raw(2, "alertmanagers:")
	w.raw(4, "- static_configs:")
	w.list(8, "- targets", []string{"127.0.0.1:9093"})
	w.raw(0, "")
	w.raw(0, "scrape_configs:")
	for i, j := range p.jobs {
		if i > 0 {
			w.raw(0, "")
		}
		w.comment(2, j.comment)
		w.raw(2, "- job_name: "+w.q(j.name))
		if j.path != "" {
			w.str(4, "metrics_path", j.path)
		}
		if len(j.params) > 0 {
			w.raw(4, "params:")
			for _, l := range j.params {
				w.list(6, l.name, []string{l.value})
			}
		}
		w.raw(4, "static_configs:")
		for _, t := range j.targets {
			w.list(6, "- targets", []string{t.addr})
			w.raw(8, "labels:")
			for _, l := range t.labels {
				w.str(10, l.name, l.value)
			}
		}
		if j.probe != "" {
			// The target becomes the exporter's target parameter and the
			// instance label; the scrape itself goes to the exporter.
			w.raw(4, "relabel_configs:")
			w.list(6, "- source_labels", []string{"__address__"})
			w.raw(8, "target_label: __param_target")
			instance := "__param_target"
			if j.probeTarget != "" {
				w.str(8, "replacement", j.probeTarget)
				instance = "__address__"
			}
			w.list(6, "- source_labels", []string{instance})
			w.raw(8, "target_label: instance")
			w.raw(6, "- target_label: __address__")
			w.str(8, "replacement", j.probe)
		}
	}
	return w.done()
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (it makes stack-level files only, which are always made again).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }
