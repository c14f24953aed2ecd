//go:build unix

// Package systest is `hacompile test`: it boots every host of a
// rendered stack as a systemd container (systemd-nspawn) on an overlay
// of a Debian image built once with debootstrap, each in a network
// namespace of its own with the stack's address on a bridge the test
// creates, provisions it from nothing but its cloud-init user data from
// out/ (the NoCloud datasource), and then drives load and faults
// through the balancers and reports what the stack survived.
//
// The stack's addresses exist only inside the namespaces the test
// makes; nothing is sent anywhere else.
package systest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/schema"
)

// Scenario names, in the order they run.
const (
	ScenarioBoot       = "boot"
	ScenarioPull       = "pull"
	ScenarioBackend    = "backend-faults"
	ScenarioBalancer   = "balancer-loss"
	ScenarioMonitoring = "monitoring"
	ScenarioProvision  = "provisioning"
)

// Scenarios lists every scenario in run order.
var Scenarios = []string{ScenarioBoot, ScenarioPull, ScenarioBackend, ScenarioMonitoring, ScenarioProvision, ScenarioBalancer}

// Options say where the test keeps its image and hosts and what it runs.
type Options struct {
	CacheDir  string   // images are cached under it
	WorkDir   string   // host roots and logs; a fresh temporary directory when empty
	Scenarios []string // all when empty
	Keep      bool     // leave the hosts running and their roots in place
	// Packages go into the image beside the stack's own: the packages
	// of every stack tested in one run, so that stacks of one release
	// share one image.
	Packages []string
	// Agent is the hacompile binary a stack that pulls (delivery.pull)
	// finds in its hosts' image: the test copies it there, standing in
	// for an image that carries the agent.
	Agent string
	Log   io.Writer
}

// Stack is what the test needs of a compiled stack: the typed stack and
// the cloud-init user data of each host as committed in out/.
type Stack struct {
	Stack    *schema.Stack
	UserData map[string][]byte // host → out/<stack>/cloud-init/<host>.yaml
	Files    []artifact.File   // the rendered files, for what the hosts run
	// Set renders the stack again (the provisioning scenario adds a
	// host as the runbook says).
	Set *compile.GeneratorSet
	// Alter, when set, changes every rendering the scenarios make while
	// they run (a host added, drained, a sysctl changed): the
	// broken-variant tests render as a stack without a feature would.
	Alter func(*compile.Rendered)
}

// render renders the stack c with the stack's generators, as altered
// by Alter.
func (st *Stack) render(c *schema.Stack) (*compile.Rendered, error) {
	r, err := st.Set.Render(c, artifact.Options{})
	if err == nil && st.Alter != nil {
		st.Alter(r)
	}
	return r, err
}

// Report is the outcome of one stack's test.
type Report struct {
	Stack     string            `json:"stack"`
	OS        string            `json:"os"`
	OK        bool              `json:"ok"`
	Scenarios []*ScenarioReport `json:"scenarios"`
	Kept      []KeptHost        `json:"kept,omitempty"`
	// StartS is how long starting the containers took (overlays, network,
	// nspawn); cloud-init's first boot is inside the boot scenario's
	// time. Each scenario has its own.
	StartS float64 `json:"start_s"`
	// Deviations are what the test had to change for this machine,
	// each with why.
	Deviations []string `json:"deviations,omitempty"`
}

// KeptHost says how to enter a host left running by --keep.
type KeptHost struct {
	Host  string `json:"host"`
	Enter string `json:"enter"`
}

// ScenarioReport is one scenario's outcome: its checks and, for load
// phases, their figures.
type ScenarioReport struct {
	Name   string   `json:"name"`
	OK     bool     `json:"ok"`
	Checks []Check  `json:"checks"`
	Phases []*Phase `json:"phases,omitempty"`
	Note   string   `json:"note,omitempty"`
	// Seconds is the scenario's wall-clock time.
	Seconds float64 `json:"seconds"`
}

// Check is one assertion.
type Check struct {
	What   string `json:"what"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Phase is a fault injected under load and what the clients saw.
type Phase struct {
	Name  string `json:"name"`
	Stats Stats  `json:"stats"`
	// DetectS is how long the balancer took to take the faulty backend
	// out (-1 when the balancer does not say); RecoverS how long until
	// it served requests again after the fault ended.
	DetectS  float64 `json:"detect_s"`
	RecoverS float64 `json:"recover_s"`
	// FailWindowS spans the first to the last failed request.
	FailWindowS float64 `json:"fail_window_s"`
}

func (r *ScenarioReport) check(what string, ok bool, format string, args ...any) bool {
	r.Checks = append(r.Checks, Check{What: what, OK: ok, Detail: fmt.Sprintf(format, args...)})
	if !ok {
		r.OK = false
	}
	return ok
}

// env is one stack's running test.
type env struct {
	st     *Stack
	s      *schema.Stack
	opt    Options
	fab    *Fabric
	hosts  map[string]*Machine
	client string // the load generator's namespace
	log    io.Writer
	id     string
	mu     sync.Mutex
	devs   []string
	pw     string
	addrs  map[string]netip.Addr
	rip    *reservedIP
	// clientSources are the client namespace's addresses, the first
	// of which single requests come from.
	clientSources []netip.Addr
	// foreignFailed are, by host, the failed units the stack does not
	// own (a distribution unit a container cannot run), seen at boot.
	foreignFailed map[string][]string
	img           *Image
	operatorKey   string // the operator's SSH public key (provisioning)
	monNS         string // the monitoring host's namespace, once made
	clb           *cloudLB
	closers       []func()  // stand-ins to stop at the end
	instances     []string  // an Auto Scaling group's instances
	reg           *registry // the registry a stack that pulls follows
	// provisioned are the hosts whose secrets the test provisioned.
	provisioned map[string]bool
}

// deviate records a change the test made for this machine's sake.
func (e *env) deviate(msg string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !slices.Contains(e.devs, msg) {
		e.devs = append(e.devs, msg)
	}
}

// fitHAProxy lowers HAProxy's connection limit for the test when this
// machine does not let a process open the files maxconn needs: HAProxy
// refuses to start below that (strict-limits), and the containers
// inherit the test's own hard limit, which only CAP_SYS_RESOURCE could
// raise. Debian's unit passes $EXTRAOPTS to haproxy; -n caps maxconn.
func (e *env) fitHAProxy(m *Machine) error {
	max, err := openFilesMax()
	if err != nil {
		return err
	}
	need := uint64(2*e.s.Balancer.MaxConn + 100)
	if max >= need {
		return nil
	}
	fit := (max - 100) / 2
	e.deviate(fmt.Sprintf("HAProxy's maxconn %d needs about %d open files and this machine lets a process open %d: the balancers run with haproxy -n %d (a drop-in adding it to $EXTRAOPTS)", e.s.Balancer.MaxConn, need, max, fit))
	conf := fmt.Sprintf("# hacompile test: this machine's open-files limit is %d.\n[Service]\nEnvironment=\"EXTRAOPTS=-S /run/haproxy-master.sock -n %d\"\n", max, fit)
	return m.Write("etc/systemd/system/haproxy.service.d/zz-hacompile-test.conf", []byte(conf), 0o644)
}

// OSOf is the release a stack targets.
func OSOf(s *schema.Stack) string {
	if v := stackOS(s); v != "" {
		return v
	}
	return "debian-13"
}

// Run tests one stack.
func Run(ctx context.Context, st *Stack, opt Options) (*Report, error) {
	st0 := st
	s := st.Stack
	if opt.Log == nil {
		opt.Log = io.Discard
	}
	rep := &Report{Stack: s.Name, OS: OSOf(s), OK: true}
	if err := Preflight(); err != nil {
		return nil, err
	}
	// An Auto Scaling group's template host runs as the group's
	// instances.
	st, insts := instances(st)
	s = st.Stack
	var pkgs []string
	for _, name := range s.HostNames() {
		ud, ok := st.UserData[name]
		if !ok {
			return nil, fmt.Errorf("%s/%s: no cloud-init user data in out/", s.Name, name)
		}
		pkgs = append(pkgs, cloudPackages(ud)...)
	}
	img, err := EnsureImage(opt.CacheDir, rep.OS, append(pkgs, opt.Packages...), opt.Log)
	if err != nil {
		return nil, err
	}
	e := &env{st: st, s: s, opt: opt, hosts: map[string]*Machine{}, log: opt.Log, id: runID(), foreignFailed: map[string][]string{}, instances: insts, provisioned: map[string]bool{}}
	if len(insts) > 0 {
		e.deviate(fmt.Sprintf("the Auto Scaling group runs its minimum of %d instances (%s), each booted from the launch template's user data (the cloud-init of %s)",
			len(insts), strings.Join(insts, ", "), st0.Stack.ScalingTemplateHost().Name))
	}
	if opt.WorkDir == "" {
		dir, err := os.MkdirTemp("", "hacompile-test-")
		if err != nil {
			return nil, err
		}
		opt.WorkDir = dir
		e.opt.WorkDir = dir
		if !opt.Keep {
			defer os.RemoveAll(dir)
		}
	}
	e.addrs, err = addresses(s)
	if err != nil {
		return nil, err
	}
	network, err := networkOf(s, e.addrs)
	if err != nil {
		return nil, err
	}
	e.fab, err = NewFabric(e.id, network)
	if err != nil {
		return nil, err
	}
	defer func() {
		if opt.Keep {
			for _, name := range s.HostNames() {
				if m := e.hosts[name]; m != nil && m.Running() {
					rep.Kept = append(rep.Kept, KeptHost{Host: name, Enter: fmt.Sprintf("nsenter -t %d -a", m.leader)})
				}
			}
			return
		}
		for _, m := range e.hosts {
			m.Close(false)
		}
		if e.rip != nil {
			e.rip.close()
		}
		for _, c := range e.closers {
			c()
		}
		e.clb.stop()
		e.fab.Close()
	}()
	e.img = img
	started := time.Now()
	if s.PullEnabled() {
		// Before any host boots: a first boot applies what is published.
		if err := e.startRegistry(ctx); err != nil {
			return nil, err
		}
	}
	err = e.start(img)
	rep.StartS = roundS(time.Since(started))
	rep.Deviations = e.devs
	if err != nil {
		return nil, err
	}
	want := opt.Scenarios
	if len(want) == 0 {
		want = Scenarios
	}
	for _, name := range Scenarios {
		if !slices.Contains(want, name) {
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		fmt.Fprintf(e.log, "%s: scenario %s\n", s.Name, name)
		sr := &ScenarioReport{Name: name, OK: true}
		began := time.Now()
		switch name {
		case ScenarioBoot:
			e.boot(ctx, sr)
		case ScenarioPull:
			e.pullDelivery(ctx, sr)
		case ScenarioBackend:
			e.backendFaults(ctx, sr)
			e.workerFrozen(ctx, sr)
		case ScenarioBalancer:
			e.balancerLoss(ctx, sr)
		case ScenarioMonitoring:
			e.monitoring(ctx, sr)
		case ScenarioProvision:
			e.provisioning(ctx, sr)
		}
		sr.Seconds = roundS(time.Since(began))
		rep.Scenarios = append(rep.Scenarios, sr)
		rep.OK = rep.OK && sr.OK
		if name == ScenarioBoot && !sr.OK {
			// Nothing else means anything on hosts that did not come up.
			break
		}
	}
	return rep, nil
}

// roundS is d in seconds to a tenth, as the report gives times.
func roundS(d time.Duration) float64 { return d.Round(100 * time.Millisecond).Seconds() }

// Preflight says what this machine lacks to run the test.
func Preflight() error {
	if err := osPreflight(); err != nil {
		return err
	}
	if os.Geteuid() != 0 {
		return errors.New("hacompile test boots containers and creates network namespaces: it needs root (run it with sudo)")
	}
	var missing []string
	for tool, pkg := range map[string]string{"systemd-nspawn": "systemd-container", "ip": "iproute2", "nsenter": "util-linux", "debootstrap": "debootstrap", "unshare": "util-linux"} {
		if _, err := execLookPath(tool); err != nil {
			missing = append(missing, fmt.Sprintf("%s (%s)", tool, pkg))
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("hacompile test needs %s: apt-get install systemd-container debootstrap iproute2 util-linux", strings.Join(missing, ", "))
	}
	return nil
}

func runID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// unspecifiedNet holds the addresses the test gives hosts whose stack
// address is 0.0.0.0 (an instance of a launch template, whose address
// is known only at launch). It exists only inside the test's namespaces.
var unspecifiedNet = netip.MustParsePrefix("10.200.0.0/24")

// addresses are the hosts' addresses on the test network: the stack's,
// or one of unspecifiedNet for a host whose address is 0.0.0.0.
func addresses(s *schema.Stack) (map[string]netip.Addr, error) {
	out := map[string]netip.Addr{}
	next := unspecifiedNet.Addr().Next().Next()
	for _, name := range s.HostNames() {
		a, err := netip.ParseAddr(s.Hosts[name].Address)
		if err != nil || !a.Is4() {
			return nil, fmt.Errorf("%s/%s: the system test needs an IPv4 address, not %q", s.Name, name, s.Hosts[name].Address)
		}
		if a.IsUnspecified() {
			a, next = next, next.Next()
		}
		out[name] = a
	}
	return out, nil
}

// networkOf is the smallest network (at most a /24) holding every host
// address of the stack: the bridge is one link, as a provider's private
// network is.
func networkOf(s *schema.Stack, addrs map[string]netip.Addr) (netip.Prefix, error) {
	all := slices.Collect(func(yield func(netip.Addr) bool) {
		for _, a := range addrs {
			if !yield(a) {
				return
			}
		}
	})
	all = append(all, extraAddrs(s)...)
	slices.SortFunc(all, func(a, b netip.Addr) int { return a.Compare(b) })
	for bits := 24; bits >= 8; bits-- {
		p, _ := all[0].Prefix(bits)
		if !slices.ContainsFunc(all, func(a netip.Addr) bool { return !p.Contains(a) }) {
			return p, nil
		}
	}
	return netip.Prefix{}, fmt.Errorf("%s: the host addresses share no /8", s.Name)
}

// addr is a host's address on the test network.
func (e *env) addr(host string) string { return e.addrs[host].String() }

// start prepares and boots every host.
func (e *env) start(img *Image) error {
	names := e.s.HostNames()
	var mu sync.Mutex
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := e.startHost(img, name)
			mu.Lock()
			if m != nil {
				e.hosts[name] = m
			}
			mu.Unlock()
			errs[i] = err
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *env) startHost(img *Image, name string) (*Machine, error) {
	h := e.s.Hosts[name]
	ifname := "eth0"
	if v := e.s.Balancer.VRRP; v != nil && h.Has("lb") && v.Interface != "" {
		ifname = v.Interface
	}
	ns, port, err := e.fab.AttachAs(name, ifname, e.addrs[name])
	if err != nil {
		return nil, err
	}
	m, err := prepare(img, filepath.Join(e.opt.WorkDir, e.s.Name, name), name)
	if err != nil {
		return nil, err
	}
	m.NS, m.Port, m.Address = ns, port, e.addr(name)
	meta := fmt.Sprintf("instance-id: %s-%s\nlocal-hostname: %s\n", e.s.Name, name, name)
	if err := m.Write("var/lib/cloud/seed/nocloud/meta-data", []byte(meta), 0o644); err != nil {
		return m, err
	}
	if err := m.Write("var/lib/cloud/seed/nocloud/user-data", e.st.UserData[name], 0o600); err != nil {
		return m, err
	}
	if err := m.Write("usr/local/bin/certbot", []byte(certbotStandIn), 0o755); err != nil {
		return m, err
	}
	if err := m.Write("etc/hostname", []byte(name+"\n"), 0o644); err != nil {
		return m, err
	}
	// The image has every package of the stack; this host runs the
	// services of those its cloud-init installs, as a new machine would.
	own := map[string]bool{}
	for _, p := range cloudPackages(e.st.UserData[name]) {
		for _, u := range img.Units[p] {
			own[u] = true
		}
	}
	var off []string
	for _, p := range slices.Sorted(mapKeys(img.Units)) {
		for _, u := range img.Units[p] {
			if !own[u] {
				off = append(off, u)
			}
		}
	}
	slices.Sort(off)
	off = slices.Compact(off)
	if len(off) > 0 {
		if err := m.Chroot(append([]string{"systemctl", "disable", "--quiet"}, off...)...); err != nil {
			return m, err
		}
	}
	if h.Has("lb") && e.s.Balancer.Kind == "haproxy" {
		if err := e.fitHAProxy(m); err != nil {
			return m, err
		}
	}
	if h.Has("lb") && e.s.Balancer.Failover == "reserved-ip" {
		if err := e.reservedIPStandIn(m); err != nil {
			return m, err
		}
	}
	if err := e.pullImage(m); err != nil {
		return m, err
	}
	if err := e.awsStandIn(m, name); err != nil {
		return m, err
	}
	if err := deployStandIn(m, e.s, h); err != nil {
		return m, fmt.Errorf("%s: deploying the stand-in application: %w", name, err)
	}
	if h.Has("lb") {
		if err := e.serveReservedIP(name, ns); err != nil {
			return m, err
		}
	}
	fmt.Fprintf(e.log, "%s: booting %s (%s)\n", e.s.Name, name, e.addr(name))
	return m, m.Boot()
}

// Packages lists the packages a stack's hosts install (its image holds
// them all).
func (st *Stack) Packages() []string {
	var out []string
	for _, ud := range st.UserData {
		out = append(out, cloudPackages(ud)...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// cloudPackages reads the packages: list of a #cloud-config document
// (hacompile writes it as one quoted item a line).
func cloudPackages(doc []byte) []string {
	var pkgs []string
	in := false
	sc := bufio.NewScanner(bytes.NewReader(doc))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "packages:":
			in = true
		case in && strings.HasPrefix(line, "  - "):
			pkgs = append(pkgs, strings.Trim(strings.TrimPrefix(line, "  - "), `"`))
		default:
			in = false
		}
	}
	return pkgs
}

// hostsWith lists the stack's hosts with a role, sorted.
func (e *env) hostsWith(role string) []string {
	var out []string
	for _, name := range e.s.HostNames() {
		if e.s.Hosts[name].Has(role) {
			out = append(out, name)
		}
	}
	return out
}

// file returns a rendered host file.
func (e *env) file(host, p string) ([]byte, bool) {
	p = strings.TrimPrefix(p, "/")
	for _, f := range e.st.Files {
		if f.Host == host && f.Path == p {
			return f.Content, true
		}
	}
	return nil, false
}

// hostFiles lists a host's rendered files under dir.
func (e *env) hostFiles(host, dir string) []artifact.File {
	var out []artifact.File
	for _, f := range e.st.Files {
		if f.Host == host && strings.HasPrefix(f.Path, dir) {
			out = append(out, f)
		}
	}
	return out
}

// units lists the systemd services a host's rendered files define or
// configure (drop-ins included), by unit name.
func (e *env) units(host string) []string {
	var out []string
	for _, f := range e.hostFiles(host, "etc/systemd/system/") {
		rest := strings.TrimPrefix(f.Path, "etc/systemd/system/")
		unit, _, _ := strings.Cut(rest, "/")
		unit = strings.TrimSuffix(unit, ".d")
		if strings.HasSuffix(unit, ".service") && !strings.Contains(unit, "@") {
			out = append(out, unit)
		}
	}
	// A service a timer starts runs now and then: the timer is what is
	// active.
	for i, u := range out {
		timer := strings.TrimSuffix(u, ".service") + ".timer"
		if _, ok := e.file(host, "etc/systemd/system/"+timer); ok {
			out[i] = timer
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
