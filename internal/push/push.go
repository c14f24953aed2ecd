// Package push deploys a stack's rendered host files over SFTP, safely:
// host keys are always verified, every remote operation has a deadline,
// every host is planned (and drift detected) before any host is written,
// each file is replaced atomically (temp file, fsync, posix-rename) with
// a backup kept in a numbered generation on the host, the manifest's
// validate commands run before anything is reloaded (a failure puts the
// backups back), and hosts go in health-gated batches derived from their
// roles. Rollback undoes the newest push generation byte for byte.
//
// The host keeps its own record under /var/lib/hacompile (see StateDir),
// so drift and rollback need nothing but the host and the stack.
package push

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/secret"
)

// File is one file a host should have.
type File struct {
	Path     string // absolute path on the host ("/etc/nginx/nginx.conf")
	Content  []byte
	Mode     fs.FileMode
	Owner    string // user:group
	Kind     string
	Validate artifact.Action
	Reload   artifact.Action
}

// Host is one deployment target.
type Host struct {
	Name    string
	Address string
	Roles   []string
	SSH     Endpoint
	// Root is the directory on the host under which its tree lives:
	// "/" for a real host, a prefix for a chroot or staging tree.
	Root string
	// HealthURL is checked (GET, 2xx) after the host's files are live;
	// empty for no check. HealthRedirectOK lets a 3xx pass too, for a
	// balancer that redirects plain HTTP to HTTPS.
	HealthURL string
	// MoreHealthURLs are checked after HealthURL the same way: on a host
	// running several apps, each other app's port.
	MoreHealthURLs   []string
	HealthRedirectOK bool
	// HealthPROXY sends a PROXY protocol v1 header first: the host's
	// listener expects one from the provider's balancer in front.
	HealthPROXY bool
	// HealthDefault: HealthURL is the host's own address from the stack,
	// not a --health-url: under a root prefix it would check the
	// machine's services, not the tree, and is left out.
	HealthDefault bool
	Files         []File // sorted by path
}

func (h *Host) has(role string) bool { return slices.Contains(h.Roles, role) }

// Options configure a push or a rollback.
type Options struct {
	Stack        string
	SourceSHA256 string
	Hosts        []Host
	Auth         Auth

	Timeout        time.Duration // each dial, handshake, SFTP operation; keepalive answers
	CommandTimeout time.Duration // each validate or reload command
	HealthTimeout  time.Duration // a host's health check, retries included
	LockTimeout    time.Duration // a lock not refreshed for this long is stale

	Batch   string // app hosts per batch: "N" or "P%"
	MaxFail int    // failed hosts tolerated before the rollout stops
	// RequireAll writes nothing anywhere unless every host passes its
	// preflight, whatever MaxFail says.
	RequireAll bool
	// Parallel caps the hosts worked on at once, each with one SSH
	// connection; 0 means DefaultParallel.
	Parallel int
	// Canary is the size of a first batch of non-balancer hosts, after
	// the balancers: when any of its hosts fails, the rollout stops. 0
	// for none; below 0 for DefaultCanary.
	Canary int
	// NoAutoRevert leaves a host whose reload or health check failed
	// with the new files (today's "run hacompile rollback") instead of
	// restoring and reloading the previous ones.
	NoAutoRevert bool
	// ConfirmTimeout, when positive, guards a generation that changes a
	// file able to cut the connection (sysctl, limits, sshd, firewall,
	// network) with a dead-man timer on the host: armed before the
	// reloads, it restores the previous files and reloads them unless
	// push confirms over a new connection within this long.
	ConfirmTimeout time.Duration
	DryRun         bool
	Force          bool // overwrite drifted files (keeping a backup)
	Keep           int  // generations kept per host; 0 keeps all

	Progress Progress
	By       string // user@machine, recorded in locks and generations

	// Dial, when set, opens every TCP connection push makes (SSH and
	// health checks) instead of the local network stack's dialer: the
	// system test reaches its hosts inside network namespaces.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	PID  int

	// Stop, when it closes (the first interrupt), ends the rollout
	// gracefully: no host begins its preflight or its batch after it;
	// the hosts being planned or written go on to their end (files,
	// validation, reloads, health check, dead-man confirmation, or
	// their revert) and release their locks. The context ending (the
	// second interrupt) stops everything at once, which leaves the
	// locks of the hosts under way (their holder is proven gone when
	// its heartbeat has stopped for LockTimeout).
	Stop <-chan struct{}

	// sandboxCommands, set by tests whose hosts' PATH has stub
	// commands, runs every validate and reload command under a root
	// prefix too (see hostRun.rootCommands).
	sandboxCommands bool
	// beforeRename, when set (by tests), runs after a file's temp copy
	// is complete and before it is renamed over the target.
	beforeRename func(host, path, tmp string)
	now          func() time.Time
	started      time.Time // when the push began, recorded in its locks
}

func (o *Options) clock() time.Time {
	if o.now != nil {
		return o.now()
	}
	return time.Now()
}

// ErrUnknownHost is a --hosts name the stack does not have.
var ErrUnknownHost = errors.New("unknown host")

// TargetOptions select and address the hosts of a rendered stack.
type TargetOptions struct {
	Hosts     []string   // names; empty for all
	SSHConfig *SSHConfig // overrides of the stack's ssh settings; may be nil
	// HealthURL is a template with {host}, {address}, {port} and {path}
	// replacing the default http://{address}:{port}{path}.
	HealthURL string
	NoHealth  bool
	// Root is where each host's tree goes on the host: "/" (the
	// default) for real hosts, or a prefix for chroots and staging
	// trees, in which "{host}" stands for the host's name. Under a
	// prefix the stack is rendered again with the prefix (a sandbox
	// render), so the absolute paths inside the files and in the
	// validate commands point into the tree they belong to.
	Root string
}

// Targets turns a rendered stack into hosts to push, in name order.
// Each app host is checked at http://<address>:<app.http_port><health
// path>; an lb host (without the app role) at port 80 of its address,
// where a redirect to HTTPS also passes; other hosts have no HTTP
// service to check.
func Targets(r *compile.Rendered, to TargetOptions) ([]Host, error) {
	s := r.Stack
	names := s.HostNames()
	if len(to.Hosts) > 0 {
		var sel []string
		for _, n := range to.Hosts {
			if s.Hosts[n] == nil {
				return nil, fmt.Errorf("%w %q: stack %s has %s", ErrUnknownHost, n, s.Name, strings.Join(names, ", "))
			}
			if !slices.Contains(sel, n) {
				sel = append(sel, n)
			}
		}
		slices.Sort(sel)
		names = sel
	}
	rootTmpl := to.Root
	if rootTmpl == "" {
		rootTmpl = "/"
	}
	if err := CheckRoot(rootTmpl); err != nil {
		return nil, err
	}
	renders := map[string]*compile.Rendered{"/": r}
	var hosts []Host
	for _, n := range names {
		sh := s.Hosts[n]
		root := path.Clean(strings.ReplaceAll(rootTmpl, "{host}", n))
		rr := renders[root]
		if rr == nil {
			// The compile's own generator set: the stack's custom
			// generators' files go under the root too.
			var err error
			if rr, err = r.Set.Render(s, artifact.Options{Root: root}); err != nil {
				return nil, fmt.Errorf("render %s under %s: %w", s.Name, root, err)
			}
			renders[root] = rr
		}
		h := Host{Name: n, Address: sh.Address, Roles: slices.Clone(sh.Roles), Root: root,
			SSH: Endpoint{HostName: sh.Address, Port: sh.SSH.Port, User: sh.SSH.User}}
		o := to.SSHConfig.For(n, sh.Address)
		if o.HostName != "" {
			h.SSH.HostName = o.HostName
		}
		if o.User != "" {
			h.SSH.User = o.User
		}
		if o.Port != 0 {
			h.SSH.Port = o.Port
		}
		h.SSH.IdentityFiles = o.IdentityFiles
		if h.SSH.Port == 0 {
			h.SSH.Port = 22
		}
		if !to.NoHealth {
			var ports []int
			switch {
			case h.has("app"):
				ports = []int{s.App.HTTPPort}
				// With several apps, each the host runs, on its own port.
				if as := s.AppsOn(sh); len(as) > 0 {
					ports = ports[:0]
					for _, a := range as {
						if !slices.Contains(ports, a.HTTPPort) {
							ports = append(ports, a.HTTPPort)
						}
					}
				}
				h.HealthPROXY = s.ProxyProtocol()
			case h.has("lb"):
				ports, h.HealthRedirectOK = []int{80}, true
			}
			tmpl := to.HealthURL
			if tmpl == "" {
				tmpl = "http://{address}:{port}{path}"
				h.HealthDefault = true
			}
			for i, port := range ports {
				u := strings.NewReplacer(
					"{host}", n,
					"{address}", hostForURL(sh.Address),
					"{port}", strconv.Itoa(port),
					"{path}", s.Balancer.Health.Path,
				).Replace(tmpl)
				if i == 0 {
					h.HealthURL = u
				} else if !slices.Contains(h.MoreHealthURLs, u) && u != h.HealthURL {
					h.MoreHealthURLs = append(h.MoreHealthURLs, u)
				}
			}
		}
		for _, f := range rr.Files {
			if f.Host != n {
				continue
			}
			h.Files = append(h.Files, File{Path: "/" + f.Path, Content: f.Content, Mode: f.Mode.Perm(),
				Owner: f.Owner, Kind: f.Kind, Validate: f.Validate, Reload: f.Reload})
		}
		slices.SortFunc(h.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// rootPath is what a --root may come to for a host: "/" or a path the
// stack's own paths could be (the schema's #Path), so that every path
// rendered under it is one too. Placeholders are filled in first, and
// the path cleaned as Targets cleans it.
var rootPath = regexp.MustCompile(`^(/|(/[A-Za-z0-9._@+-]+)+)$`)

// CheckRoot checks a --root template before any stack is read: an
// absolute path whose one placeholder is {host}, of the characters the
// stack's paths may hold. Found out later, a bad root read as errors
// in the stack's fields rendered under it.
func CheckRoot(tmpl string) error {
	if !strings.HasPrefix(tmpl, "/") {
		return fmt.Errorf("--root %q: want an absolute path", tmpl)
	}
	// A host's name is a lower-case name: letters, digits and '-'.
	p := strings.ReplaceAll(tmpl, "{host}", "app1")
	if ph := unknownPlaceholder.FindString(p); ph != "" {
		return fmt.Errorf("--root %q: %s is no placeholder: want {host} (the host's name)", tmpl, ph)
	}
	if !rootPath.MatchString(path.Clean(p)) {
		return fmt.Errorf("--root %q: want an absolute path of letters, digits and ._@+- (and {host} for the host's name), such as /srv/staging/{host}", tmpl)
	}
	return nil
}

// healthPlaceholders replace a --health-url template's placeholders
// with values of their form, for CheckHealthURL.
var healthPlaceholders = strings.NewReplacer("{host}", "app1", "{address}", "192.0.2.1", "{port}", "8000", "{path}", "/healthz")

var unknownPlaceholder = regexp.MustCompile(`\{[^{}]*\}`)

// CheckHealthURL checks a --health-url template before any host is
// contacted: an http or https URL with a host, whose braces are the
// placeholders Targets fills in.
func CheckHealthURL(tmpl string) error {
	scheme, _, ok := strings.Cut(tmpl, "://")
	if scheme = strings.ToLower(scheme); !ok || scheme != "http" && scheme != "https" {
		return fmt.Errorf("--health-url %q: want an http:// or https:// URL, such as http://{address}:{port}{path}", secret.RedactURL(tmpl))
	}
	u := healthPlaceholders.Replace(tmpl)
	if p := unknownPlaceholder.FindString(u); p != "" {
		return fmt.Errorf("--health-url %q: %s is no placeholder: want {host}, {address}, {port} or {path}", secret.RedactURL(tmpl), p)
	}
	parsed, err := url.Parse(u)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("--health-url %q: want a URL: %w", secret.RedactURL(tmpl), err)
	}
	if parsed.Host == "" {
		return fmt.Errorf("--health-url %q: want a URL with a host, such as http://{address}:{port}{path}", secret.RedactURL(tmpl))
	}
	return nil
}

func hostForURL(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]"
	}
	return addr
}

// ParseBatch checks a --batch value: a host count ("2") or a
// percentage of the role's hosts ("25%").
func ParseBatch(spec string) (n int, percent bool, err error) {
	s, percent := strings.CutSuffix(spec, "%")
	n, err = strconv.Atoi(s)
	switch {
	case err != nil:
		return 0, false, fmt.Errorf("--batch: want a number of hosts or a percentage like 25%%, got %q", spec)
	case n < 1 || (percent && n > 100):
		return 0, false, fmt.Errorf("--batch: want 1 or more hosts, or 1%%-100%%, got %q", spec)
	}
	return n, percent, nil
}

// ParseMaxFail checks a --max-fail value: a host count ("3", 0 or
// more) or a percentage of the hosts pushed ("1%", up to 100%).
func ParseMaxFail(spec string) (n int, percent bool, err error) {
	s, percent := strings.CutSuffix(spec, "%")
	n, err = strconv.Atoi(s)
	if err != nil || n < 0 || (percent && n > 100) {
		return 0, false, fmt.Errorf("--max-fail: want 0 or more hosts, or 0%%-100%% of them, got %q", spec)
	}
	return n, percent, nil
}

// Batches orders hosts for a rolling push: load balancers one at a
// time (so one always serves while another restarts), then a canary
// batch of the first canary non-balancer hosts (when canary > 0), then
// app hosts, then the rest (workers, caches), each group in batches of
// spec hosts or spec percent of the group, rounded up. Names are sorted
// in each group.
func Batches(hosts []Host, spec string, canary int) ([][]string, error) {
	n, percent, err := ParseBatch(spec)
	if err != nil {
		return nil, err
	}
	var lbs, apps, rest []string
	for _, h := range hosts {
		switch {
		case h.has("lb"):
			lbs = append(lbs, h.Name)
		case h.has("app"):
			apps = append(apps, h.Name)
		default:
			rest = append(rest, h.Name)
		}
	}
	var out [][]string
	for _, name := range slices.Sorted(slices.Values(lbs)) {
		out = append(out, []string{name})
	}
	slices.Sort(apps)
	slices.Sort(rest)
	sizes := []int{len(apps), len(rest)}
	if canary > 0 {
		all := append(slices.Clone(apps), rest...)
		k := min(canary, len(all))
		if k > 0 {
			out = append(out, all[:k])
		}
		ka := min(k, len(apps))
		apps, rest = apps[ka:], rest[k-ka:]
	}
	for gi, group := range [][]string{apps, rest} {
		size := n
		if percent {
			size = max(1, int(math.Ceil(float64(sizes[gi])*float64(n)/100)))
		}
		for len(group) > 0 {
			k := min(size, len(group))
			out = append(out, group[:k])
			group = group[k:]
		}
	}
	return out, nil
}

// Summary is what a push or rollback did, host by host, in rollout
// order.
type Summary struct {
	Stack  string       `json:"stack"`
	Action string       `json:"action"` // push | rollback
	DryRun bool         `json:"dry_run"`
	OK     bool         `json:"ok"`
	Hosts  []HostResult `json:"hosts"`
}

// Host statuses in a Summary.
const (
	StatusPlanned   = "planned"   // dry run
	StatusUnchanged = "unchanged" // nothing to write
	StatusDone      = "done"      // written, validated, reloaded, healthy
	StatusFailed    = "failed"
	StatusReverted  = "reverted" // validate, reload or health check failed; the previous files are back
	StatusSkipped   = "skipped"  // the rollout stopped before this host was started
	StatusAborted   = "aborted"  // more hosts failed planning than tolerated; nothing written
)

// HostResult is one host's outcome.
type HostResult struct {
	Host       string   `json:"host"`
	Endpoint   string   `json:"endpoint"`
	Root       string   `json:"root"`
	Batch      int      `json:"batch"` // 0: failed its preflight, in no batch
	Status     string   `json:"status"`
	Created    int      `json:"created"`
	Updated    int      `json:"updated"`
	Removed    int      `json:"removed"`
	Unchanged  int      `json:"unchanged"`
	Generation int      `json:"generation,omitempty"`
	Validated  []string `json:"validated,omitempty"`
	Reloaded   []string `json:"reloaded,omitempty"`
	Health     string   `json:"health,omitempty"` // the URL checked
	Notes      []string `json:"notes,omitempty"`
	Error      string   `json:"error,omitempty"`
	Plan       *Plan    `json:"plan,omitempty"`

	err error
}

// Err is the host's failure, or nil.
func (r *HostResult) Err() error { return r.err }

// Err joins every host's failure; nil when all succeeded.
func (s *Summary) Err() error {
	var errs []error
	for i := range s.Hosts {
		if e := s.Hosts[i].err; e != nil {
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

func validateOptions(o *Options) error {
	if o.Stack == "" {
		return errors.New("no stack name")
	}
	if o.Timeout <= 0 || o.CommandTimeout <= 0 || o.HealthTimeout <= 0 || o.LockTimeout <= 0 {
		return errors.New("timeouts must be positive")
	}
	if o.MaxFail < 0 {
		return fmt.Errorf("--max-fail: want 0 or more, got %d", o.MaxFail)
	}
	if o.Parallel < 0 {
		return fmt.Errorf("--parallel: want 1 or more, got %d", o.Parallel)
	}
	if o.Parallel == 0 {
		o.Parallel = DefaultParallel
	}
	o.started = o.clock()
	if o.Canary < 0 {
		o.Canary = DefaultCanary(o.Hosts)
	}
	seen := map[string]bool{}
	for i, h := range o.Hosts {
		if seen[h.Name] {
			return fmt.Errorf("host %s given twice", h.Name)
		}
		seen[h.Name] = true
		if h.Root == "" {
			o.Hosts[i].Root = "/"
		} else if !strings.HasPrefix(h.Root, "/") {
			return fmt.Errorf("%s: root %q: want an absolute path", h.Name, h.Root)
		}
		if h.SSH.HostName == "" {
			return fmt.Errorf("%s: no address", h.Name)
		}
	}
	return nil
}
