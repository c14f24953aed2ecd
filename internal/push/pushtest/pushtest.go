// Package pushtest runs real OpenSSH servers for push tests: one sshd
// per host (unprivileged unless the tests run as root) on its own
// loopback address, with a throwaway host key, an authorized client key,
// a temp directory as the host's root, and stub nginx/systemctl/sysctl/…
// commands first on the PATH the server gives sessions, so validate and
// reload commands run for real without touching the machine. Only
// 127.0.0.0/8 is used.
package pushtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/hacompile/hacompile/internal/testtool"
)

// RequireSSHD returns the sshd binary, or skips (fails under CI=true).
// sshd lives in /usr/sbin, which an unprivileged user's PATH often
// lacks, so that is tried first.
func RequireSSHD(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return testtool.Require(t, "sshd", "openssh-server")
}

// Stubs are the commands the stack's validate and reload actions call,
// replaced on the hosts' PATH.
var Stubs = []string{"nginx", "haproxy", "systemd-analyze", "systemctl", "sysctl", "promtool", "runuser", "systemd-run"}

// stub logs its command line, sleeps and fails when told to. Absolute path
// arguments must exist, so a validate command pointing outside the
// host's root (a missing sandbox render) fails as it would on a host.
const stub = `#!/bin/sh
name=$(basename "$0")
if [ "$name" = runuser ]; then
	# runuser -u USER -- COMMAND…: the command, as the session's user (it logs
	# itself).
	while [ $# -gt 0 ] && [ "$1" != -- ]; do shift; done
	shift
	exec "$@"
fi
printf '%s\n' "$name $*" >> "$HACOMPILE_TEST_LOG"
if [ "$name" = systemd-run ]; then
	# systemd-run [--unit=U] --on-active=Ns [--…] COMMAND…: a transient
	# timer, here a detached process that sleeps, then runs the command
	# (logging its exit status to the command log).
	delay=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--on-active=*) delay=${1#--on-active=}; delay=${delay%s} ;;
		--*) ;;
		*) break ;;
		esac
		shift
	done
	setsid nohup sh -c 'sleep "$0"; "$@"; echo "timer fired: exit $?" >> "$HACOMPILE_TEST_LOG"' "$delay" "$@" </dev/null >/dev/null 2>&1 &
	exit 0
fi
if [ -z "$HACOMPILE_ROOT" ]; then echo "$name: HACOMPILE_ROOT is not set" >&2; exit 3; fi
for a in "$@"; do
	case "$a" in
	/*) [ -e "$a" ] || { echo "$name: $a: no such file" >&2; exit 4; } ;;
	esac
done
if [ "$name" = nginx ] && [ ! -e "$HACOMPILE_ROOT/etc/nginx/nginx.conf" ]; then
	echo "nginx: [emerg] open() \"$HACOMPILE_ROOT/etc/nginx/nginx.conf\" failed" >&2; exit 1
fi
if [ -e "$HACOMPILE_TEST_FAIL/$name.sleep" ]; then : >"$HACOMPILE_TEST_FAIL/$name.sleeping"; sleep "$(cat "$HACOMPILE_TEST_FAIL/$name.sleep")"; fi
if [ -e "$HACOMPILE_TEST_FAIL/$name" ]; then
	cat "$HACOMPILE_TEST_FAIL/$name" >&2
	exit 1
fi
if [ -e "$HACOMPILE_TEST_FAIL/$name.once" ]; then
	cat "$HACOMPILE_TEST_FAIL/$name.once" >&2
	rm -f "$HACOMPILE_TEST_FAIL/$name.once"
	exit 1
fi
exit 0
`

// Fleet is a set of sshd hosts sharing one client key.
type Fleet struct {
	t         testing.TB
	opts      Options
	sshd      string
	Dir       string
	User      string
	ClientKey string // private key file (unencrypted ed25519)
	Hosts     map[string]*Host
	Names     []string // in start order
}

// Host is one sshd acting as a host.
type Host struct {
	Name    string
	Addr    string // 127.0.0.x
	Port    int
	Root    string // the host's root directory
	HostKey ssh.PublicKey
	Log     string // the stub command log
	FailDir string // a file named after a stub here makes it fail
	dir     string
	cmd     *exec.Cmd
	stderr  *bytes.Buffer
}

// Start runs one sshd per name, on 127.0.0.(first), 127.0.0.(first+1), …
func Start(t testing.TB, first int, names ...string) *Fleet {
	t.Helper()
	return StartWith(t, Options{}, first, names...)
}

// Options change how the fleet's sshds run.
type Options struct {
	// SFTPUmask, when set, is the umask internal-sftp applies to the
	// files and directories it creates (its -u flag).
	SFTPUmask string
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options, first int, names ...string) *Fleet {
	t.Helper()
	sshd := RequireSSHD(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd started as root insists on its privilege separation
		// directory, which the distribution's service unit creates.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatalf("sshd needs /run/sshd: %v", err)
		}
	}
	dir := t.TempDir()
	f := &Fleet{t: t, opts: opts, sshd: sshd, Dir: dir, User: u.Username, Hosts: map[string]*Host{}}
	f.ClientKey = filepath.Join(dir, "client_key")
	keygen(t, f.ClientKey, "")
	pub, err := os.ReadFile(f.ClientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "authorized_keys"), pub, 0o600)
	bin := filepath.Join(dir, "bin")
	for _, s := range Stubs {
		mustWrite(t, filepath.Join(bin, s), []byte(stub), 0o755)
	}
	for i, name := range names {
		f.start(name, fmt.Sprintf("127.0.0.%d", first+i))
	}
	return f
}

func (f *Fleet) start(name, addr string) {
	t := f.t
	hd := filepath.Join(f.Dir, name)
	h := &Host{Name: name, Addr: addr, dir: hd, Root: filepath.Join(hd, "root"),
		Log: filepath.Join(hd, "commands.log"), FailDir: filepath.Join(hd, "fail")}
	for _, d := range []string{h.Root, h.FailDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	keyFile := filepath.Join(hd, "ssh_host_ed25519_key")
	keygen(t, keyFile, "")
	h.HostKey = readPub(t, keyFile+".pub")
	f.Hosts[name] = h
	f.Names = append(f.Names, name)
	var lastErr string
	for attempt := 0; attempt < 5; attempt++ {
		h.Port = testtool.FreePort(t, addr)
		conf := strings.Join([]string{
			"ListenAddress " + net.JoinHostPort(addr, strconv.Itoa(h.Port)),
			"HostKey " + keyFile,
			"AuthorizedKeysFile " + filepath.Join(f.Dir, "authorized_keys"),
			"PidFile " + filepath.Join(hd, "sshd.pid"),
			"UsePAM no",
			"StrictModes no",
			"PasswordAuthentication no",
			"KbdInteractiveAuthentication no",
			"PubkeyAuthentication yes",
			"PermitRootLogin prohibit-password",
			strings.TrimSpace("Subsystem sftp internal-sftp " + umaskFlag(f.opts.SFTPUmask)),
			"MaxStartups 100",
			"LogLevel ERROR",
			// HOME too: the login shell must not read the real
			// user's rc files, which may change PATH or be slow.
			"SetEnv PATH=" + filepath.Join(f.Dir, "bin") + ":/usr/bin:/bin HOME=" + hd +
				" HACOMPILE_TEST_LOG=" + h.Log + " HACOMPILE_TEST_FAIL=" + h.FailDir,
		}, "\n") + "\n"
		cfg := filepath.Join(hd, "sshd_config")
		mustWrite(t, cfg, []byte(conf), 0o600)
		h.stderr = &bytes.Buffer{}
		h.cmd = exec.Command(f.sshd, "-D", "-e", "-f", cfg)
		h.cmd.Stderr = &syncWriter{w: h.stderr}
		if err := h.cmd.Start(); err != nil {
			t.Fatalf("start sshd for %s: %v", name, err)
		}
		exited := make(chan struct{})
		go func() { h.cmd.Wait(); close(exited) }()
		if waitListening(net.JoinHostPort(addr, strconv.Itoa(h.Port)), exited) {
			cmd := h.cmd
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("sshd %s stderr:\n%s", name, h.stderr.String())
				}
			})
			return
		}
		h.cmd.Process.Kill()
		<-exited
		lastErr = h.stderr.String()
	}
	t.Fatalf("sshd for %s did not start:\n%s", name, lastErr)
}

func umaskFlag(u string) string {
	if u == "" {
		return ""
	}
	return "-u " + u
}

// Endpoint is host:port of the host's sshd.
func (h *Host) Endpoint() string { return net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)) }

// Commands returns the stub commands run on the host so far, and
// forgets them.
func (h *Host) Commands(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile(h.Log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	os.Remove(h.Log)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, strings.ReplaceAll(l, h.Root, "$ROOT"))
		}
	}
	return out
}

// SlowCommand makes the stub named cmd sleep for secs seconds after
// logging; 0 makes it quick again.
func (h *Host) SlowCommand(t testing.TB, cmd string, secs int) {
	t.Helper()
	p := filepath.Join(h.FailDir, cmd+".sleep")
	if secs == 0 {
		os.Remove(p)
		return
	}
	mustWrite(t, p, []byte(strconv.Itoa(secs)+"\n"), 0o644)
}

// WaitSlow waits until the stub named cmd, made slow by SlowCommand,
// has begun its sleep: a push is then inside that command, however
// busy the machine.
func (h *Host) WaitSlow(t testing.TB, cmd string, timeout time.Duration) {
	t.Helper()
	p := filepath.Join(h.FailDir, cmd+".sleeping")
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(p); err == nil {
			return
		}
	}
	t.Fatalf("%s did not start within %s", cmd, timeout)
}

// FailCommand makes the stub named cmd fail with message on stderr;
// an empty message makes it succeed again.
func (h *Host) FailCommand(t testing.TB, cmd, message string) {
	t.Helper()
	p := filepath.Join(h.FailDir, cmd)
	if message == "" {
		os.Remove(p)
		return
	}
	mustWrite(t, p, []byte(message+"\n"), 0o644)
}

// FailOnce makes the next run of the stub named cmd fail with message
// on stderr; the runs after it succeed.
func (h *Host) FailOnce(t testing.TB, cmd, message string) {
	t.Helper()
	mustWrite(t, filepath.Join(h.FailDir, cmd+".once"), []byte(message+"\n"), 0o644)
}

// File returns the content of the host file p (absolute on the host).
func (h *Host) File(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Root, p))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Tree returns every regular file under the host's root by host path,
// with its mode, for whole-host comparisons.
func (h *Host) Tree(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(h.Root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(h.Root, p)
			out["/"+filepath.ToSlash(rel)] = fmt.Sprintf("%04o %s", fi.Mode().Perm(), b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Stub places the stub command at the host path p inside the host's
// root, for validate commands that name a binary by absolute path.
func (h *Host) Stub(t testing.TB, p string) {
	t.Helper()
	mustWrite(t, filepath.Join(h.Root, p), []byte(stub), 0o755)
}

// KnownHosts writes a known_hosts file for the named hosts (all when
// none are named), with hashed host names as ssh-keygen -H writes them.
func (f *Fleet) KnownHosts(hashed bool, names ...string) string {
	f.t.Helper()
	if len(names) == 0 {
		names = f.Names
	}
	var b strings.Builder
	for _, n := range names {
		h := f.Hosts[n]
		b.WriteString(KnownHostsLine(h.Endpoint(), h.HostKey, hashed) + "\n")
	}
	p := filepath.Join(f.Dir, fmt.Sprintf("known_hosts-%d", time.Now().UnixNano()))
	mustWrite(f.t, p, []byte(b.String()), 0o600)
	return p
}

// KnownHostsLine is a known_hosts line for addr (host:port) and key.
func KnownHostsLine(addr string, key ssh.PublicKey, hashed bool) string {
	name := knownhosts.Normalize(addr)
	if hashed {
		name = knownhosts.HashHostname(name)
	}
	return name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// NewKey generates a throwaway ed25519 key pair; passphrase may be
// empty. It returns the private key file and the public key.
func NewKey(t testing.TB, dir, name, passphrase string) (string, ssh.PublicKey) {
	t.Helper()
	p := filepath.Join(dir, name)
	keygen(t, p, passphrase)
	return p, readPub(t, p+".pub")
}

// StackCUE returns a stack with one lb host (the first name starting
// with "lb") and app hosts for the rest, at the fleet's addresses and
// ports, logging in as the current user. appTimeout varies gunicorn's
// timeout, so two values give two versions of the stack.
func (f *Fleet) StackCUE(name string, appTimeout int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %q\ndomain: \"fleet.example.com\"\ntls: mode: \"none\"\nhosts: {\n", name)
	lb := false
	for _, n := range f.Names {
		h := f.Hosts[n]
		role := "app"
		if strings.HasPrefix(n, "lb") {
			role, lb = "lb", true
		}
		fmt.Fprintf(&b, "\t%s: {address: %q, roles: [%q], cores: 1, memory_mb: 1024, ssh: {user: %q, port: %d}}\n",
			n, h.Addr, role, f.User, h.Port)
	}
	b.WriteString("}\n")
	if lb {
		b.WriteString("balancer: {kind: \"nginx\", health: path: \"/healthz\"}\n")
		b.WriteString("waive: [{rule: \"ha-single-lb\", reason: \"test fleet\", until: \"2999-01-01\"}]\n")
	} else {
		b.WriteString("balancer: {kind: \"cloud\", health: path: \"/healthz\"}\n")
	}
	fmt.Fprintf(&b, "app: {\n\truntime: \"python\"\n\tmodule: \"wsgi:app\"\n\tworking_dir: \"/srv/app\"\n\tvirtualenv: \"/srv/app/venv\"\n\tbind: port: 8000\n\ttimeout: %d\n}\n", appTimeout)
	return b.String()
}

// Proxy relays TCP to a target and can fail like a network between
// push and a host: drop every connection, or freeze them (packets stop,
// nothing is closed).
type Proxy struct {
	Addr   string
	ln     net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	frozen chan struct{} // non-nil while frozen; closed to thaw
}

// StartProxy listens on listenIP with a free port, relaying to target.
func StartProxy(t testing.TB, listenIP, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(listenIP, "0"))
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), ln: ln}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(u, c)
			go p.pipe(c, u)
		}
	}()
	return p
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			frozen := p.frozen
			p.mu.Unlock()
			if frozen != nil {
				<-frozen
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Cut closes every relayed connection (and thaws a freeze, so the
// relays notice).
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
}

// Close stops the proxy: every relayed connection is cut and new ones
// are refused, like a host that no longer lets push in.
func (p *Proxy) Close() {
	p.ln.Close()
	p.Cut()
}

// Freeze stops relaying bytes in both directions while keeping the
// connections open, like a network path that silently drops packets.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == nil {
		p.frozen = make(chan struct{})
	}
}

// Port is the proxy's port.
func (p *Proxy) Port() int {
	_, port, _ := net.SplitHostPort(p.Addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Health is an HTTP server answering health checks for many hosts at
// /<host>, with a status per host and an optional gate that holds a
// host's check until released.
type Health struct {
	URL    string // template for --health-url: http://127.0.0.1:N/{host}
	mu     sync.Mutex
	status map[string]int
	gates  map[string]chan struct{}
	hits   map[string]int
	waits  map[string]chan struct{}
}

// StartHealth starts the server; every host is healthy until told.
func StartHealth(t testing.TB) *Health {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &Health{URL: "http://" + ln.Addr().String() + "/{host}", status: map[string]int{},
		gates: map[string]chan struct{}{}, hits: map[string]int{}, waits: map[string]chan struct{}{}}
	srv := &http.Server{Handler: http.HandlerFunc(hs.serve), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return hs
}

func (hs *Health) serve(w http.ResponseWriter, r *http.Request) {
	host := strings.TrimPrefix(r.URL.Path, "/")
	hs.mu.Lock()
	hs.hits[host]++
	gate := hs.gates[host]
	if ch := hs.waits[host]; ch != nil {
		close(ch)
		delete(hs.waits, host)
	}
	code := hs.status[host]
	hs.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		}
	}
	if code == 0 {
		code = http.StatusOK
	}
	w.WriteHeader(code)
}

// SetStatus makes host's check answer code.
func (hs *Health) SetStatus(host string, code int) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hs.status[host] = code
}

// Hold makes host's next checks wait until the returned release is
// called; reached is closed when a check arrives.
func (hs *Health) Hold(host string) (reached <-chan struct{}, release func()) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	gate, arrived := make(chan struct{}), make(chan struct{})
	hs.gates[host], hs.waits[host] = gate, arrived
	var once sync.Once
	return arrived, func() {
		once.Do(func() {
			hs.mu.Lock()
			delete(hs.gates, host)
			hs.mu.Unlock()
			close(gate)
		})
	}
}

// Hits returns how many checks host received.
func (hs *Health) Hits(host string) int {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.hits[host]
}

// SilentServer accepts TCP connections and never answers, like a host
// whose sshd hangs. It returns its address.
func SilentServer(t testing.TB, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// keygen writes an ed25519 key pair as ssh-keygen would: the private
// key in OpenSSH format (encrypted when passphrase is set) and the
// public key in authorized_keys format beside it.
func keygen(t testing.TB, file, passphrase string) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var block *pem.Block
	if passphrase == "" {
		block, err = ssh.MarshalPrivateKey(priv, "hacompile-test")
	} else {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "hacompile-test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, file, pem.EncodeToMemory(block), 0o600)
	mustWrite(t, file+".pub", ssh.MarshalAuthorizedKey(sp), 0o644)
}

func readPub(t testing.TB, file string) ssh.PublicKey {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func waitListening(addr string, exited <-chan struct{}) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func mustWrite(t testing.TB, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Sorted returns the keys of m, sorted.
func Sorted[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
