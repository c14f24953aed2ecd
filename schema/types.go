package schema

import (
	"encoding/json"
	"fmt"
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
	Region      string           `json:"region,omitempty"`
	Domain      string           `json:"domain"`
	Aliases     []string         `json:"aliases"`
	TLS         TLS              `json:"tls"`
	Hosts       map[string]*Host `json:"hosts"`
	Balancer    Balancer         `json:"balancer"`
	App         App              `json:"app"`
	Tuning      Tuning           `json:"tuning"`
	Monitoring  Monitoring       `json:"monitoring"`
	Database    *Database        `json:"database,omitempty"`
	Cache       *Cache           `json:"cache,omitempty"`
	Queue       *Queue           `json:"queue,omitempty"`
	Capacity    Capacity         `json:"capacity"`
	Waive       []Waiver         `json:"waive"`

	// Source is the stack file, slash-separated and relative to the
	// directory above the stacks directory (for example
	// "stacks/shop.cue"); it is what generated headers name.
	Source string `json:"-"`
	// SourceDigest is the sha256 of the stack file's bytes.
	SourceDigest string `json:"-"`
	// Positions maps field paths ("balancer.kind", "hosts.app1") to
	// where the author wrote them in Source.
	Positions map[string]Position `json:"-"`
}

// Position is a line and column in a stack file.
type Position struct{ Line, Column int }

// At returns a diagnostic for the field path, positioned at the closest
// enclosing field the author wrote.
func (s *Stack) At(path string) Diagnostic {
	d := Diagnostic{File: s.Source, Path: path}
	for p := path; p != ""; {
		if pos, ok := s.Positions[p]; ok {
			d.Line, d.Column = pos.Line, pos.Column
			break
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return d
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
	Mode        string `json:"mode"`
	Profile     string `json:"profile"`
	HSTS        bool   `json:"hsts"`
	HSTSMaxAge  int    `json:"hsts_max_age"`
	Terminate   string `json:"terminate"`
	Certificate string `json:"certificate,omitempty"`
	Key         string `json:"key,omitempty"`
	Email       string `json:"email,omitempty"`
	ACMERoot    string `json:"acme_root"`
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
	Timeout  int    `json:"timeout"`
	Rise     int    `json:"rise"`
	Fall     int    `json:"fall"`
}

// Timeouts of a proxy hop, in seconds.
type Timeouts struct {
	Connect int `json:"connect"`
	Read    int `json:"read"`
	Send    int `json:"send"`
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
}

// Database is the stack's SQL database.
type Database struct {
	Engine             string   `json:"engine"`
	Managed            bool     `json:"managed"`
	Host               string   `json:"host"`
	Port               int      `json:"port"`
	Name               string   `json:"name"`
	Replicas           []string `json:"replicas"`
	PoolSize           int      `json:"pool_size"`
	MaxOverflow        int      `json:"max_overflow"`
	MaxConnections     int      `json:"max_connections,omitempty"`
	ReplicaPoolSize    int      `json:"replica_pool_size,omitempty"`
	ReplicaMaxOverflow int      `json:"replica_max_overflow,omitempty"`
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
	Engine string `json:"engine"`
	Host   string `json:"host"`
	Port   int    `json:"port"`
}

// Queue is the stack's message broker.
type Queue struct {
	Engine string `json:"engine"`
	Host   string `json:"host"`
}

// HostNames returns the host names in sorted order.
func (s *Stack) HostNames() []string {
	names := make([]string, 0, len(s.Hosts))
	for n := range s.Hosts {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// HostsWithRole returns the hosts having role, sorted by name.
func (s *Stack) HostsWithRole(role string) []*Host {
	var hs []*Host
	for _, n := range s.HostNames() {
		if h := s.Hosts[n]; h.Has(role) {
			hs = append(hs, h)
		}
	}
	return hs
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
