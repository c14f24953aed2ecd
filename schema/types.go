package schema

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// Stack is a validated, defaulted stack. Every field has been checked by
// the CUE schema; Go code downstream can trust it.
type Stack struct {
	Name        string           `json:"name"`
	Description string           `json:"description"`
	Notes       string           `json:"notes,omitempty"`
	Provider    string           `json:"provider"`
	OS          string           `json:"os"` // the hosts' release ("debian-13"): generators/osrelease
	Region      string           `json:"region,omitempty"`
	Domain      string           `json:"domain"`
	Aliases     []string         `json:"aliases"`
	TLS         TLS              `json:"tls"`
	Hosts       map[string]*Host `json:"hosts"`
	Balancer    Balancer         `json:"balancer"`
	// App is the stack's one application; with several (apps:), the
	// first by name. Generators render per app through ForApp.
	App App `json:"app"`
	// AppsByName is apps: as written (nil for a stack with app:).
	AppsByName map[string]*App `json:"apps,omitempty"`
	// Apps are the applications, sorted by name: &App alone for a stack
	// with app:, so code that loops over apps takes one turn there.
	Apps       []*App     `json:"-"`
	Tuning     Tuning     `json:"tuning"`
	Monitoring Monitoring `json:"monitoring"`
	Database   *Database  `json:"database,omitempty"`
	Cache      *Cache     `json:"cache,omitempty"`
	Queue      *Queue     `json:"queue,omitempty"`
	Workers    *Workers   `json:"workers,omitempty"`
	RateLimit  *RateLimit `json:"rate_limit,omitempty"`
	Scaling    *Scaling   `json:"scaling,omitempty"`
	Capacity   Capacity   `json:"capacity"`
	Delivery   *Delivery  `json:"delivery,omitempty"`
	Waive      []Waiver   `json:"waive"`
	// Generators are the custom (Jsonnet) generators the stack lists.
	Generators []CustomGenerator `json:"generators"`

	// Source is the stack file, slash-separated and relative to the
	// directory above the stacks directory (for example
	// "stacks/shop.cue"); it is what generated headers name.
	Source string `json:"-"`
	// SourceDigest is the sha256 of the stack file's bytes.
	SourceDigest string `json:"-"`
	index        *hostIndex
	// whole is the stack this is one app's view of (ForApp), or nil.
	whole *Stack
	// Positions maps field paths ("balancer.kind", "hosts.app1") to
	// where the author wrote them in Source (or in a file it imports).
	// Code that changes a loaded stack's positions gives it a map of
	// its own (maps.Clone) and changes that.
	Positions map[string]Position `json:"-"`
	written   *writtenIndex
}

// writtenIndex is every path Wrote is true for: each path of Positions
// and each prefix of one that ends before a '.' or '['. Rules and
// generators ask Wrote dozens of times per stack, and a 10,000-host
// stack has 40,000 positions.
type writtenIndex struct {
	of    map[string]Position // the map indexed, to detect a replaced map
	n     int
	paths map[string]struct{}
}

// indexWritten records what Wrote answers from the positions. The loader
// calls it; without, or after the positions are replaced, Wrote still
// answers correctly, only slower.
func (s *Stack) indexWritten() {
	idx := &writtenIndex{of: s.Positions, n: len(s.Positions), paths: make(map[string]struct{}, 2*len(s.Positions))}
	for p := range s.Positions {
		idx.paths[p] = struct{}{}
		for i := range len(p) {
			if p[i] == '.' || p[i] == '[' {
				idx.paths[p[:i]] = struct{}{}
			}
		}
	}
	s.written = idx
}

// Position is a line and column in a stack file.
type Position struct {
	// File is set when the position is in a file the stack file
	// imports (a Jsonnet library) rather than in the stack file itself.
	File         string
	Line, Column int
}

// Written returns the first of the field paths that the author wrote,
// or the first non-empty one when none was written: an error about two
// fields that clash points at the one the author chose.
func (s *Stack) Written(paths ...string) string {
	for _, p := range paths {
		if _, ok := s.Positions[p]; ok && p != "" {
			return p
		}
	}
	return cmp.Or(paths...)
}

// Wrote reports whether the stack file sets path or a field inside it,
// rather than leaving it to the schema's default.
func (s *Stack) Wrote(path string) bool {
	if idx := s.written; idx != nil && idx.n == len(s.Positions) && reflect.ValueOf(idx.of).UnsafePointer() == reflect.ValueOf(s.Positions).UnsafePointer() {
		_, ok := idx.paths[path]
		return ok
	}
	for p := range s.Positions {
		if p == path || strings.HasPrefix(p, path+".") || strings.HasPrefix(p, path+"[") {
			return true
		}
	}
	return false
}

// At returns a diagnostic for the field path, positioned at the closest
// enclosing field the author wrote.
func (s *Stack) At(path string) Diagnostic {
	d := Diagnostic{File: s.Source, Path: path}
	if pos, ok := lookup(s.Positions, path); ok {
		d.File = cmp.Or(pos.File, s.Source)
		d.Line, d.Column = pos.Line, pos.Column
	}
	return d
}

// CustomGenerator is a Jsonnet program the stack lists: it receives the
// stack (and, per host, the host) and returns files for the hosts.
type CustomGenerator struct {
	// File is the program, relative to the stack file's directory or
	// to a library path (-J).
	File string `json:"file"`
	// PerHost runs the program once per host, with the host as an
	// argument; otherwise it runs once and its files go to every host.
	PerHost bool `json:"per_host"`
	// Roles limits the hosts to those having one of these roles.
	Roles []string `json:"roles,omitempty"`
}

// Host is one machine of the stack.
type Host struct {
	Name     string   `json:"-"`
	Address  string   `json:"address"`
	Roles    []string `json:"roles"`
	Size     string   `json:"size,omitempty"`
	Cores    int      `json:"cores"`
	MemoryMB int      `json:"memory_mb"`
	SSH      SSH      `json:"ssh"`
	Notes    string   `json:"notes,omitempty"`
	// Drain takes the host out of the balancers' rotation (hosts.X.drain).
	Drain bool `json:"drain"`
}

// SSH says how push reaches a host.
type SSH struct {
	User string `json:"user"`
	Port int    `json:"port"`
}

// Has reports whether the host has the role.
func (h *Host) Has(role string) bool { return slices.Contains(h.Roles, role) }

// TLS settings shared by every TLS endpoint of the stack.
type TLS struct {
	Mode       string `json:"mode"`
	Profile    string `json:"profile"`
	HSTS       bool   `json:"hsts"`
	HSTSMaxAge int    `json:"hsts_max_age"`
	// OCSPStapling turns on stapling where the profile advises it.
	OCSPStapling bool   `json:"ocsp_stapling"`
	Terminate    string `json:"terminate"`
	Certificate  string `json:"certificate,omitempty"`
	Key          string `json:"key,omitempty"`
	Email        string `json:"email,omitempty"`
	ACMERoot     string `json:"acme_root"`
}

// Enabled reports whether the stack serves HTTPS.
func (t TLS) Enabled() bool { return t.Mode != "none" }

// Balancer is the traffic entry point in front of the app hosts.
type Balancer struct {
	Kind        string   `json:"kind"`
	Algorithm   string   `json:"algorithm"`
	Health      Health   `json:"health"`
	Timeouts    Timeouts `json:"timeouts"`
	MaxFails    int      `json:"max_fails"`
	FailTimeout int      `json:"fail_timeout"`
	Keepalive   int      `json:"keepalive"`
	// TrustedProxies are extra addresses/CIDRs trusted for X-Forwarded-For.
	TrustedProxies  []string `json:"trusted_proxies"`
	MaxConn         int      `json:"maxconn"`
	Retries         int      `json:"retries"`
	Slowstart       int      `json:"slowstart"`
	Stats           Stats    `json:"stats"`
	EnvironmentFile string   `json:"environment_file"`
	Failover        string   `json:"failover"`
	// VRRP is keepalived between the lb hosts (failover "keepalived"
	// or "reserved-ip").
	VRRP *VRRP `json:"vrrp,omitempty"`
	// DigitalOcean is the DigitalOcean cloud load balancer, set for
	// kind "cloud" on DigitalOcean.
	DigitalOcean *DigitalOceanLB `json:"digitalocean,omitempty"`
}

// VRRP is keepalived between the lb hosts.
type VRRP struct {
	VirtualAddress string         `json:"virtual_address"`
	Prefix         int            `json:"prefix"`
	RouterID       int            `json:"router_id"`
	Interface      string         `json:"interface"`
	Priority       map[string]int `json:"priority"`
	// ElasticIPAllocation is the AWS Elastic IP associated with the
	// virtual address (failover "reserved-ip" on AWS).
	ElasticIPAllocation string `json:"elastic_ip_allocation,omitempty"`
}

// VRRPPriority is the VRRP priority of an lb host: the stack's, else
// 150 for the first lb host by name, 10 less for each one after it.
func (s *Stack) VRRPPriority(host string) int {
	if s.Balancer.VRRP != nil {
		if p, ok := s.Balancer.VRRP.Priority[host]; ok {
			return p
		}
	}
	p := 150
	for _, h := range s.HostsWithRole("lb") {
		if h.Name == host {
			return max(p, 1)
		}
		p -= 10
	}
	return max(p, 1)
}

// DigitalOceanLB is what the stack says about a DigitalOcean load
// balancer beyond what the balancer section already gives.
type DigitalOceanLB struct {
	Name          string `json:"name,omitempty"`
	SizeUnit      int    `json:"size_unit"`
	DropletTag    string `json:"droplet_tag"`
	CertificateID string `json:"certificate_id,omitempty"`
	VPCUUID       string `json:"vpc_uuid,omitempty"`
	ProxyProtocol bool   `json:"proxy_protocol"`
}

// ProxyProtocol reports whether a cloud balancer sends the PROXY
// protocol to the app hosts' nginx (DigitalOcean's, when its
// proxy_protocol is on; AWS's ALB has none).
func (s *Stack) ProxyProtocol() bool {
	return s.Provider == "digitalocean" && s.Balancer.Kind == "cloud" &&
		s.Balancer.DigitalOcean != nil && s.Balancer.DigitalOcean.ProxyProtocol
}

// Stats is HAProxy's statistics listener.
type Stats struct {
	Address string `json:"address"`
	Port    int    `json:"port"`
	URI     string `json:"uri"`
	User    string `json:"user"`
}

// Health is the active health check of the app hosts.
type Health struct {
	Path     string `json:"path"`
	Interval int    `json:"interval"`
	// Timeout is whole seconds (5) or milliseconds ("500ms").
	Timeout Millis `json:"timeout"`
	Rise    int    `json:"rise"`
	Fall    int    `json:"fall"`
}

// Millis is a duration in milliseconds, written in a stack as whole
// seconds (a number) or as milliseconds ("500ms").
type Millis int

// UnmarshalJSON implements json.Unmarshaler.
func (m *Millis) UnmarshalJSON(b []byte) error {
	var n int
	if err := json.Unmarshal(b, &n); err == nil {
		*m = Millis(n * 1000)
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSuffix(str, "ms"))
	if err != nil || !strings.HasSuffix(str, "ms") {
		return fmt.Errorf("%q is neither whole seconds nor milliseconds (such as \"500ms\")", str)
	}
	*m = Millis(n)
	return nil
}

// MarshalJSON writes what the stack wrote: a number of seconds, or
// "<n>ms".
func (m Millis) MarshalJSON() ([]byte, error) {
	if n, ok := m.Seconds(); ok {
		return json.Marshal(n)
	}
	return json.Marshal(strconv.Itoa(int(m)) + "ms")
}

// Seconds returns the duration in whole seconds, and whether it is a
// whole number of them.
func (m Millis) Seconds() (int, bool) { return int(m) / 1000, m%1000 == 0 }

// String is "5 s" or "500 ms", for the runbook.
func (m Millis) String() string {
	if n, ok := m.Seconds(); ok {
		return strconv.Itoa(n) + " s"
	}
	return strconv.Itoa(int(m)) + " ms"
}

// Timeouts of a proxy hop, in seconds.
type Timeouts struct {
	Connect int `json:"connect"`
	Read    int `json:"read"`
	Send    int `json:"send"`
}

// AppTimeouts are an app's own balancer timeouts (apps.<name>.
// balancer_timeouts); 0 keeps balancer.timeouts'.
type AppTimeouts struct {
	Connect int `json:"connect,omitempty"`
	Read    int `json:"read,omitempty"`
	Send    int `json:"send,omitempty"`
}

// App is the application server run on every app host.
type App struct {
	Name              string      `json:"name"`
	Runtime           string      `json:"runtime"`
	Server            string      `json:"server"`
	Module            string      `json:"module,omitempty"`
	WorkerClass       string      `json:"worker_class,omitempty"`
	Threads           int         `json:"threads,omitempty"`
	WorkerConnections int         `json:"worker_connections,omitempty"`
	Virtualenv        string      `json:"virtualenv,omitempty"`
	ForwardedAllowIPs []string    `json:"forwarded_allow_ips,omitempty"`
	PSGI              string      `json:"psgi,omitempty"`
	Lib               []string    `json:"lib,omitempty"`
	Workers           WorkerCount `json:"workers"`
	Timeout           int         `json:"timeout"`
	GracefulTimeout   int         `json:"graceful_timeout"`
	Keepalive         int         `json:"keepalive"`
	MaxRequests       int         `json:"max_requests"`
	MaxRequestsJitter int         `json:"max_requests_jitter"`
	Backlog           int         `json:"backlog"`
	Bind              Bind        `json:"bind"`
	User              string      `json:"user"`
	Group             string      `json:"group"`
	WorkingDir        string      `json:"working_dir"`
	EnvironmentFile   string      `json:"environment_file"`
	HTTPPort          int         `json:"http_port"`
	Static            []StaticDir `json:"static"`
	ClientMaxBodySize string      `json:"client_max_body_size"`
	ErrorPages        string      `json:"error_pages"`
	// Routing of one of several apps (apps.<name>): the host names it
	// answers, its path prefixes and the hosts running it.
	Domains []string `json:"domains,omitempty"`
	Paths   []string `json:"paths,omitempty"`
	Hosts   []string `json:"hosts,omitempty"`
	// TargetConcurrency is the app's own capacity target.
	TargetConcurrency int `json:"target_concurrency,omitempty"`
	// BalancerTimeouts replace balancer.timeouts' for this app.
	BalancerTimeouts *AppTimeouts `json:"balancer_timeouts,omitempty"`
	// Field is where the app is in the stack ("app", "apps.web"), the
	// prefix of its diagnostics' field paths.
	Field string `json:"-"`
}

// Bind is where the app server listens on its host: a unix socket or a
// loopback TCP port.
type Bind struct {
	Socket string `json:"socket,omitempty"`
	Port   int    `json:"port,omitempty"`
}

// StaticDir is a URL prefix served from a directory by nginx.
type StaticDir struct {
	URL     string `json:"url"`
	Dir     string `json:"dir"`
	Expires string `json:"expires"`
}

// WorkerCount is a number of worker processes, or 0 for "auto".
type WorkerCount int

// UnmarshalJSON accepts a number or the string "auto".
func (w *WorkerCount) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		if s != "auto" {
			return fmt.Errorf("workers: want a number or \"auto\", got %q", s)
		}
		*w = 0
		return nil
	}
	n, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("workers: want a number or \"auto\", got %s", b)
	}
	*w = WorkerCount(n)
	return nil
}

// MarshalJSON writes 0 as "auto", the way the stack says it.
func (w WorkerCount) MarshalJSON() ([]byte, error) {
	if w == 0 {
		return []byte(`"auto"`), nil
	}
	return []byte(strconv.Itoa(int(w))), nil
}

// For returns the worker processes on a host: the configured number, or
// 2 × cores + 1 for "auto".
func (w WorkerCount) For(h *Host) int {
	if w > 0 {
		return int(w)
	}
	return 2*h.Cores + 1
}

// Tuning holds kernel and process limits.
type Tuning struct {
	Nofile                 int               `json:"nofile"`
	NginxWorkerConnections int               `json:"nginx_worker_connections"`
	Sysctl                 map[string]Scalar `json:"sysctl"`
}

// Monitoring holds the alert thresholds.
type Monitoring struct {
	Enabled               bool    `json:"enabled"`
	ForMinutes            int     `json:"for_minutes"`
	CPUPercent            int     `json:"cpu_percent"`
	MemoryPercent         int     `json:"memory_percent"`
	DiskFreePercent       int     `json:"disk_free_percent"`
	ErrorRatePercent      float64 `json:"error_rate_percent"`
	FDUsedPercent         int     `json:"fd_used_percent"`
	ReplicationLagSeconds int     `json:"replication_lag_seconds"`
	QueueDepth            int     `json:"queue_depth"`
	CertExpiryDays        int     `json:"cert_expiry_days"`
	RedisMemoryPercent    int     `json:"redis_memory_percent"`
	// Address is the monitoring host's private address ("" when unset).
	Address      string        `json:"address,omitempty"`
	RunbookURL   string        `json:"runbook_url"`
	Ports        MonitorPorts  `json:"ports"`
	Alertmanager *Alertmanager `json:"alertmanager,omitempty"`
}

// Delivery is how hosts get their files beyond push.
type Delivery struct {
	Pull *Pull `json:"pull,omitempty"`
}

// Pull makes every host apply its signed artifact from an OCI registry
// on a timer (hacompile apply).
type Pull struct {
	Registry               string    `json:"registry"`
	Repository             string    `json:"repository"`
	Channel                string    `json:"channel"`
	CanaryHosts            []string  `json:"canary_hosts"`
	IntervalMinutes        int       `json:"interval_minutes"`
	RandomizedDelayMinutes int       `json:"randomized_delay_minutes"`
	PublicKey              string    `json:"public_key,omitempty"`
	PublicKeyPath          string    `json:"public_key_path"`
	CredentialsFile        string    `json:"credentials_file,omitempty"`
	PlainHTTP              bool      `json:"plain_http"`
	Agent                  PullAgent `json:"agent"`
}

// PullAgent is the hacompile binary on the hosts.
type PullAgent struct {
	Path   string `json:"path"`
	URL    string `json:"url,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// PullEnabled reports whether the stack's hosts pull.
func (s *Stack) PullEnabled() bool { return s.Delivery != nil && s.Delivery.Pull != nil }

// MonitorPorts are the exporters' ports on each host's private address.
type MonitorPorts struct {
	Node    int `json:"node"`
	HAProxy int `json:"haproxy"`
	Mtail   int `json:"mtail"`
	Redis   int `json:"redis"`
}

// Alertmanager is where alerts go: one named receiver.
type Alertmanager struct {
	Receiver         string `json:"receiver"`
	Kind             string `json:"kind"`
	URL              string `json:"url,omitempty"`
	URLFile          string `json:"url_file,omitempty"`
	CredentialsFile  string `json:"credentials_file,omitempty"`
	APIURLFile       string `json:"api_url_file,omitempty"`
	Channel          string `json:"channel,omitempty"`
	To               string `json:"to,omitempty"`
	From             string `json:"from,omitempty"`
	Smarthost        string `json:"smarthost,omitempty"`
	AuthUsername     string `json:"auth_username,omitempty"`
	AuthPasswordFile string `json:"auth_password_file,omitempty"`
	WatchdogURL      string `json:"watchdog_url,omitempty"`
	// WatchdogURLFile holds WatchdogURL, in a file on the monitoring host.
	WatchdogURLFile string `json:"watchdog_url_file,omitempty"`
	// WatchdogCredentialsFile holds a bearer token for WatchdogURL.
	WatchdogCredentialsFile string `json:"watchdog_credentials_file,omitempty"`
}

// Database is the stack's SQL database.
type Database struct {
	Engine             string   `json:"engine"`
	Managed            bool     `json:"managed"`
	Host               string   `json:"host"`
	Port               int      `json:"port"`
	Name               string   `json:"name"`
	User               string   `json:"user"`
	PasswordFile       string   `json:"password_file"`
	SSLMode            string   `json:"sslmode"`
	Replicas           []string `json:"replicas"`
	PoolSize           int      `json:"pool_size"`
	MaxOverflow        int      `json:"max_overflow"`
	MaxConnections     int      `json:"max_connections,omitempty"`
	ReplicaPoolSize    int      `json:"replica_pool_size,omitempty"`
	ReplicaMaxOverflow int      `json:"replica_max_overflow,omitempty"`
	// ReplicaMaxConnections is each replica's max_connections, when
	// stated; ReplicaLimit resolves it.
	ReplicaMaxConnections int     `json:"replica_max_connections,omitempty"`
	Pooler                *Pooler `json:"pooler,omitempty"`
	// Alias is, in one app's view of a stack of several apps with a
	// pooler (Stack.ForApp), the database name that app's processes ask
	// PgBouncer for (Stack.PoolerAlias): a pool of its own on Name.
	// Empty elsewhere: the processes ask for Name.
	Alias string `json:"-"`
}

// ClientName is the database name the app's processes connect to:
// Alias through PgBouncer with several apps, else Name.
func (d *Database) ClientName() string {
	if d.Alias != "" {
		return d.Alias
	}
	return d.Name
}

// ProcessPool is the database connections one app process may hold:
// its primary and replica pools with their overflow; 0 without a
// database.
func (d *Database) ProcessPool() int {
	if d == nil {
		return 0
	}
	return d.PoolSize + d.MaxOverflow + d.ReplicaPoolSize + d.ReplicaMaxOverflow
}

// ReadPool reports whether the app processes keep a pool to the
// replicas: replicas declared and replica_pool_size set.
func (d *Database) ReadPool() bool {
	return d != nil && len(d.Replicas) > 0 && d.ReplicaPoolSize > 0
}

// ReplicaLimit is the connections each replica accepts, and the field
// that says so: replica_max_connections, else max_connections (a
// read-only node of the primary's size); 0 and "" when neither is
// stated.
func (d *Database) ReplicaLimit() (int, string) {
	switch {
	case d.ReplicaMaxConnections > 0:
		return d.ReplicaMaxConnections, "database.replica_max_connections"
	case d.MaxConnections > 0:
		return d.MaxConnections, "database.max_connections"
	}
	return 0, ""
}

// Pooler is PgBouncer on each app and worker host, in front of the
// primary.
type Pooler struct {
	Engine          string `json:"engine"`
	PoolMode        string `json:"pool_mode"`
	Port            int    `json:"port"`
	DefaultPoolSize int    `json:"default_pool_size"`
	ReservePoolSize int    `json:"reserve_pool_size"`
	MaxClientConn   int    `json:"max_client_conn"`
}

// Capacity is what the stack must hold.
type Capacity struct {
	TargetConcurrency int `json:"target_concurrency,omitempty"`
}

// Waiver accepts one warning until a date.
type Waiver struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
	Until  string `json:"until"`
}

// Cache is the stack's cache service.
type Cache struct {
	Engine  string `json:"engine"`
	Managed bool   `json:"managed"`
	// Host is empty for a self-hosted cache that leaves it to the cache
	// host's address; Endpoint resolves it.
	Host         string `json:"host,omitempty"`
	Port         int    `json:"port"`
	DB           int    `json:"db,omitempty"`
	TLS          bool   `json:"tls"`
	PasswordFile string `json:"password_file,omitempty"`
	// Self-hosted Redis only.
	ACLFile          string `json:"acl_file,omitempty"`
	MaxmemoryPercent int    `json:"maxmemory_percent,omitempty"`
	MaxmemoryPolicy  string `json:"maxmemory_policy,omitempty"`
	Persistence      string `json:"persistence,omitempty"`
	// Self-hosted Memcached only.
	MemoryPercent  int `json:"memory_percent,omitempty"`
	MaxConnections int `json:"max_connections,omitempty"`
}

// CacheHosts returns the hosts that run the stack's self-hosted cache:
// those with the cache role, when the cache is not managed.
func (s *Stack) CacheHosts() []*Host {
	if s.Cache == nil || s.Cache.Managed {
		return nil
	}
	return s.HostsWithRole("cache")
}

// CacheEndpoint is the address clients reach the cache at: cache.host,
// or the first cache host's address for a self-hosted cache; "" when
// there is none.
func (s *Stack) CacheEndpoint() string {
	if s.Cache == nil {
		return ""
	}
	if s.Cache.Host != "" {
		return s.Cache.Host
	}
	if hs := s.CacheHosts(); len(hs) > 0 {
		return hs[0].Address
	}
	return ""
}

// Queue is the stack's message broker.
type Queue struct {
	Engine       string `json:"engine"`
	Host         string `json:"host"`
	Port         int    `json:"port"`
	TLS          bool   `json:"tls"`
	VHost        string `json:"vhost,omitempty"`
	User         string `json:"user,omitempty"`
	DB           int    `json:"db,omitempty"`
	PasswordFile string `json:"password_file,omitempty"`
	Managed      bool   `json:"managed"`
	// Self-hosted RabbitMQ.
	MemoryHighWatermarkPercent int    `json:"memory_high_watermark_percent,omitempty"`
	DiskFreeLimitMB            int    `json:"disk_free_limit_mb,omitempty"`
	TLSCertFile                string `json:"tls_cert_file,omitempty"`
	TLSKeyFile                 string `json:"tls_key_file,omitempty"`
	TLSCAFile                  string `json:"tls_ca_file,omitempty"`
}

// QueueHosts are the hosts running the self-hosted broker: those with
// the queue role, when the queue is not managed.
func (s *Stack) QueueHosts() []*Host {
	if s.Queue == nil || s.Queue.Managed {
		return nil
	}
	return s.HostsWithRole("queue")
}

// QueueEndpoint is the address clients reach the broker at: queue.host,
// or the queue host's address for a self-hosted broker; "" when there
// is none.
func (s *Stack) QueueEndpoint() string {
	if s.Queue == nil {
		return ""
	}
	if s.Queue.Host != "" {
		return s.Queue.Host
	}
	if hs := s.QueueHosts(); len(hs) > 0 {
		return hs[0].Address
	}
	return ""
}

// Workers are the Celery workers on the hosts with the worker role.
type Workers struct {
	// Runs names the app (of several) whose code the workers run.
	Runs string `json:"runs,omitempty"`
	App  string `json:"app"`
	Pool string `json:"pool"`
	// Concurrency is 0 for "auto": one process per core.
	Concurrency      WorkerCount `json:"concurrency"`
	Queues           []string    `json:"queues"`
	MaxTasksPerChild int         `json:"max_tasks_per_child"`
	TimeLimit        int         `json:"time_limit"`
	SoftTimeLimit    int         `json:"soft_time_limit,omitempty"`
	Beat             Beat        `json:"beat"`
}

// Beat is Celery's periodic task scheduler.
type Beat struct {
	Enabled bool   `json:"enabled"`
	Host    string `json:"host,omitempty"`
}

// QueueNames returns the queues the workers consume: workers.queues, or
// Celery's default queue when none is listed.
func (w *Workers) QueueNames() []string {
	if len(w.Queues) == 0 {
		return []string{"celery"}
	}
	return w.Queues
}

// ConcurrencyFor returns the worker processes or greenlets on a host:
// the configured number, or one per core for "auto".
func (w *Workers) ConcurrencyFor(h *Host) int {
	if w.Concurrency > 0 {
		return int(w.Concurrency)
	}
	return h.Cores
}

// BeatHost returns the host that runs Celery beat, or "" when beat is
// off: beat.host, else the first worker host by name.
func (s *Stack) BeatHost() string {
	if s.Workers == nil || !s.Workers.Beat.Enabled {
		return ""
	}
	if s.Workers.Beat.Host != "" {
		return s.Workers.Beat.Host
	}
	if hs := s.HostsWithRole("worker"); len(hs) > 0 {
		return hs[0].Name
	}
	return ""
}

// RateLimit is nginx's per-client request rate limiting.
type RateLimit struct {
	Rate      string              `json:"rate"`
	Burst     int                 `json:"burst"`
	NoDelay   bool                `json:"nodelay"`
	Status    int                 `json:"status"`
	ZoneSize  string              `json:"zone_size"`
	Locations []RateLimitLocation `json:"locations"`
}

// RateLimitLocation is a path with a rate of its own.
type RateLimitLocation struct {
	Path    string `json:"path"`
	Rate    string `json:"rate"`
	Burst   int    `json:"burst"`
	NoDelay bool   `json:"nodelay"`
}

// Scaling is an AWS Auto Scaling group of app instances.
type Scaling struct {
	Min                      int               `json:"min"`
	Max                      int               `json:"max"`
	Desired                  int               `json:"desired,omitempty"`
	TemplateHost             string            `json:"template_host,omitempty"`
	OnDemandBaseCapacity     int               `json:"on_demand_base_capacity"`
	OnDemandPercentAboveBase int               `json:"on_demand_percent_above_base"`
	SpotAllocationStrategy   string            `json:"spot_allocation_strategy"`
	SpotInstancePools        int               `json:"spot_instance_pools,omitempty"`
	SpotMaxPrice             string            `json:"spot_max_price,omitempty"`
	InstanceTypes            []string          `json:"instance_types"`
	Image                    string            `json:"image"`
	VPC                      string            `json:"vpc"`
	Subnets                  []string          `json:"subnets"`
	SecurityGroups           []string          `json:"security_groups"`
	KeyName                  string            `json:"key_name,omitempty"`
	InstanceProfile          string            `json:"instance_profile,omitempty"`
	TargetGroupARN           string            `json:"target_group_arn,omitempty"`
	LoadBalancerARN          string            `json:"load_balancer_arn,omitempty"`
	AlarmTopics              []string          `json:"alarm_topics"`
	HealthCheckGracePeriod   int               `json:"health_check_grace_period"`
	CapacityRebalance        bool              `json:"capacity_rebalance"`
	AppSource                AppSource         `json:"app_source"`
	Secrets                  map[string]string `json:"secrets,omitempty"`
}

// AppSource is where an instance's app code comes from (#AppSource).
type AppSource struct {
	Kind   string `json:"kind"`
	URL    string `json:"url,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
}

// ScalingTemplateHost returns the app host the launch template boots
// instances as: scaling.template_host, else the first app host; nil
// without scaling or app hosts.
func (s *Stack) ScalingTemplateHost() *Host {
	if s.Scaling == nil {
		return nil
	}
	if n := s.Scaling.TemplateHost; n != "" {
		return s.Hosts[n]
	}
	if hs := s.HostsWithRole("app"); len(hs) > 0 {
		return hs[0]
	}
	return nil
}

// hostIndex holds the sorted host names and hosts by role. Generators
// ask for them once per host, so computing them each time made a build
// quadratic in the fleet.
type hostIndex struct {
	hosts  map[string]*Host // the map indexed, to detect a replaced map
	names  []string
	byRole map[string][]*Host
}

// Reindex records the sorted host names and roles. The loader calls it;
// code that builds or changes a Stack's hosts calls it again (without, the
// accessors still answer correctly, only slower).
func (s *Stack) Reindex() {
	idx := &hostIndex{hosts: s.Hosts, byRole: map[string][]*Host{}}
	for n := range s.Hosts {
		idx.names = append(idx.names, n)
	}
	slices.Sort(idx.names)
	for _, n := range idx.names {
		for _, r := range s.Hosts[n].Roles {
			idx.byRole[r] = append(idx.byRole[r], s.Hosts[n])
		}
	}
	s.index = idx
}

func (s *Stack) currentIndex() *hostIndex {
	idx := s.index
	if idx == nil || len(idx.names) != len(s.Hosts) || reflect.ValueOf(idx.hosts).UnsafePointer() != reflect.ValueOf(s.Hosts).UnsafePointer() {
		c := *s
		c.Reindex()
		return c.index
	}
	return idx
}

// HostNames returns the host names in sorted order.
func (s *Stack) HostNames() []string { return slices.Clone(s.currentIndex().names) }

// HostsWithRole returns the hosts having role, sorted by name.
func (s *Stack) HostsWithRole(role string) []*Host {
	return slices.Clone(s.currentIndex().byRole[role])
}

// RoleCount is how many hosts have role: len(HostsWithRole(role))
// without the copy, for checks a generator makes once per host.
func (s *Stack) RoleCount(role string) int {
	return len(s.currentIndex().byRole[role])
}

// Scalar is a string or a number, kept as its text.
type Scalar string

// UnmarshalJSON accepts a JSON string or number.
func (v *Scalar) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = Scalar(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number, got %s", b)
	}
	*v = Scalar(n.String())
	return nil
}
