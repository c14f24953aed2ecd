package push

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/termtext"
)

// Auth says how push authenticates and which host keys it trusts.
type Auth struct {
	// KnownHosts are OpenSSH known_hosts files; hashed entries,
	// [host]:port entries and @cert-authority lines are understood.
	// Files that do not exist are skipped, so every host is unknown
	// when none exists.
	KnownHosts []string
	// Identity is a private key file tried before the agent's keys.
	Identity string
	// Passphrase decrypts encrypted identity files. Without it an
	// encrypted key is an error, not a prompt: push runs unattended.
	Passphrase []byte
	// AgentSocket is ssh-agent's socket (SSH_AUTH_SOCK); empty for none.
	AgentSocket string
}

// Endpoint is where and as whom push logs in to a host.
type Endpoint struct {
	HostName      string // dialled, and looked up in known_hosts
	Port          int
	User          string
	IdentityFiles []string // from --ssh-config, after Auth.Identity
	// Local makes the host this machine (hacompile apply): no SSH, the
	// same SFTP operations through OpenSSH's sftp-server run as a child
	// process, commands through the local shell. HostName still names
	// the host's address for its health check.
	Local bool
}

// Addr is host:port as dialled and as known_hosts names it.
func (e Endpoint) Addr() string {
	if e.Local {
		return "local"
	}
	return net.JoinHostPort(e.HostName, strconv.Itoa(e.Port))
}

func (e Endpoint) String() string {
	if e.Local {
		return "local"
	}
	return e.User + "@" + e.Addr()
}

// dialer opens verified, authenticated connections. It is shared by the
// hosts of one run.
type dialer struct {
	auth    Auth
	timeout time.Duration
	dialTCP func(ctx context.Context, network, addr string) (net.Conn, error)
	hkdb    *knownhosts.HostKeyDB // nil when no known_hosts file exists

	mu      sync.Mutex
	signers map[string]ssh.Signer // identity file → signer
	agent   agent.ExtendedAgent
	agentNC net.Conn
}

func newDialer(auth Auth, timeout time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*dialer, error) {
	if dial == nil {
		dial = (&net.Dialer{Timeout: timeout}).DialContext
	}
	d := &dialer{auth: auth, timeout: timeout, dialTCP: dial, signers: map[string]ssh.Signer{}}
	var files []string
	for _, f := range auth.KnownHosts {
		if _, err := os.Stat(f); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
		files = append(files, f)
	}
	if len(files) > 0 {
		db, err := knownhosts.NewDB(files...)
		if err != nil {
			return nil, fmt.Errorf("known_hosts: %w", err)
		}
		d.hkdb = db
	}
	if auth.AgentSocket != "" {
		nc, err := net.DialTimeout("unix", auth.AgentSocket, timeout)
		if err != nil {
			return nil, fmt.Errorf("ssh-agent at SSH_AUTH_SOCK=%s: %w", auth.AgentSocket, err)
		}
		d.agentNC = nc
		d.agent = agent.NewClient(nc)
	}
	// The identity given (-i) is every host's: one that cannot be read
	// is said once, before any host is dialled.
	if auth.Identity != "" {
		if _, err := d.signer(auth.Identity); err != nil {
			d.close()
			return nil, err
		}
	}
	return d, nil
}

func (d *dialer) close() {
	if d.agentNC != nil {
		d.agentNC.Close()
	}
}

// signer loads an identity file once. An encrypted key needs
// Auth.Passphrase; there is no prompt because push is unattended and may
// drive many hosts at once.
func (d *dialer) signer(file string) (ssh.Signer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if s, ok := d.signers[file]; ok {
		return s, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if len(d.auth.Passphrase) == 0 {
			return nil, fmt.Errorf("identity %s is encrypted and no passphrase was given: %w", file, ErrEncryptedKey)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(b, d.auth.Passphrase)
		if errors.Is(err, x509.IncorrectPasswordError) {
			return nil, fmt.Errorf("identity %s: wrong passphrase", file)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("identity %s: %w", file, err)
	}
	d.signers[file] = s
	return s, nil
}

// authMethods are the explicit identities first (as ssh -i), then the
// agent's keys.
func (d *dialer) authMethods(e Endpoint) ([]ssh.AuthMethod, error) {
	var files []string
	if d.auth.Identity != "" {
		files = append(files, d.auth.Identity)
	}
	files = append(files, e.IdentityFiles...)
	var signers []ssh.Signer
	for _, f := range files {
		s, err := d.signer(f)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
	}
	if len(signers) == 0 && d.agent == nil {
		return nil, fmt.Errorf("no SSH credentials: SSH_AUTH_SOCK is not set and no --identity or IdentityFile was given: %w", ErrAuth)
	}
	cb := func() ([]ssh.Signer, error) {
		out := append([]ssh.Signer(nil), signers...)
		if d.agent != nil {
			as, err := d.agent.Signers()
			if err != nil {
				return nil, fmt.Errorf("ssh-agent: %w", err)
			}
			out = append(out, as...)
		}
		return out, nil
	}
	return []ssh.AuthMethod{ssh.PublicKeysCallback(cb)}, nil
}

// conn is one host's SSH connection and SFTP session. Every remote
// operation runs under a deadline: when it passes, the connection is
// closed, which fails the pending operation (pkg/sftp has no per-request
// cancellation) and every later one with the same error.
type conn struct {
	ep      Endpoint
	timeout time.Duration
	raw     io.Closer   // the TCP connection, or the local sftp-server
	ssh     *ssh.Client // nil for a local target
	sftp    *sftp.Client

	mu     sync.Mutex
	err    error // why the connection was closed
	done   chan struct{}
	closed bool
}

// dial connects to e with a deadline on each step: TCP connect,
// the SSH handshake with host key verification, and authentication.
func (d *dialer) dial(ctx context.Context, e Endpoint) (*conn, error) {
	if e.Local {
		return d.dialLocal(ctx, e)
	}
	addr := e.Addr()
	methods, err := d.authMethods(e)
	if err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, d.timeout)
	raw, err := d.dialTCP(dctx, "tcp", addr)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, unwrapOp(err))
	}
	// One deadline covers the version exchange, key exchange, host key
	// check and authentication: a server that accepts TCP and never
	// speaks fails here.
	_ = raw.SetDeadline(time.Now().Add(d.timeout))
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	var keyErr error
	cfg := &ssh.ClientConfig{
		User: e.User,
		Auth: methods,
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			keyErr = d.checkHostKey(hostname, remote, key)
			return keyErr
		},
		Timeout: d.timeout,
	}
	if d.hkdb != nil {
		cfg.HostKeyAlgorithms = hostKeyAlgorithms(d.hkdb.HostKeyAlgorithms(addr))
	}
	c, chans, reqs, err := ssh.NewClientConn(raw, addr, cfg)
	stopped := stop()
	if err != nil {
		raw.Close()
		switch {
		case keyErr != nil:
			return nil, keyErr
		case !stopped:
			return nil, fmt.Errorf("ssh to %s: %w", addr, ctx.Err())
		case isTimeout(err):
			return nil, fmt.Errorf("ssh handshake with %s: no answer within %s: %w", addr, d.timeout, ErrTimeout)
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, fmt.Errorf("ssh to %s as %s: authentication failed (the server accepted none of the offered keys): %w", addr, e.User, ErrAuth)
		}
		return nil, fmt.Errorf("ssh to %s: %w", addr, err)
	}
	_ = raw.SetDeadline(time.Time{})
	cn := &conn{ep: e, timeout: d.timeout, raw: raw, ssh: ssh.NewClient(c, chans, reqs), done: make(chan struct{})}
	context.AfterFunc(ctx, func() { cn.fail(ctx.Err()) })
	go cn.keepalive()
	err = cn.do("sftp session", "", func() error {
		var err error
		cn.sftp, err = sftp.NewClient(cn.ssh)
		return err
	})
	if err != nil {
		cn.close()
		return nil, err
	}
	return cn, nil
}

// hostKeyAlgorithms puts the key types known_hosts has for a host
// first, so a host with several keys presents the one we know, then
// every other supported type, as OpenSSH does: were the list only the
// known types, a host whose key changed type would fail negotiation
// with "no common algorithm" instead of being reported as changed.
func hostKeyAlgorithms(known []string) []string {
	if len(known) == 0 {
		return nil
	}
	out := slices.Clone(known)
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// checkHostKey verifies key against known_hosts and turns the outcome
// into the two errors an operator must tell apart: a host never seen
// (add it after checking the fingerprint) and a key that changed (stop:
// reinstalled host or an attack).
func (d *dialer) checkHostKey(hostname string, remote net.Addr, key ssh.PublicKey) error {
	fp := ssh.FingerprintSHA256(key)
	if d.hkdb == nil {
		return &HostKeyError{Addr: hostname, Type: key.Type(), Fingerprint: fp, Files: d.auth.KnownHosts}
	}
	err := d.hkdb.HostKeyCallback()(hostname, remote, key)
	if err == nil {
		return nil
	}
	var ke *xknownhosts.KeyError
	if !errors.As(err, &ke) {
		return fmt.Errorf("host key of %s: %w", hostname, err)
	}
	he := &HostKeyError{Addr: hostname, Type: key.Type(), Fingerprint: fp, Files: d.auth.KnownHosts}
	for _, w := range ke.Want {
		he.Known = append(he.Known, fmt.Sprintf("%s:%d (%s)", w.Filename, w.Line, w.Key.Type()))
	}
	return he
}

func (c *conn) keepalive() {
	every := max(c.timeout/3, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		timer := time.AfterFunc(c.timeout, func() {
			c.fail(fmt.Errorf("connection to %s lost: no keepalive answer within %s: %w", c.ep.Addr(), c.timeout, ErrTimeout))
		})
		// OpenSSH answers an unknown global request with a failure
		// reply: any reply proves the peer is alive.
		_, _, err := c.ssh.SendRequest("keepalive@openssh.com", true, nil)
		timer.Stop()
		if err != nil {
			c.fail(fmt.Errorf("connection to %s lost: %w", c.ep.Addr(), err))
			return
		}
	}
}

// fail closes the connection, remembering the first reason.
func (c *conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	c.err = err
	close(c.done)
	c.raw.Close()
}

func (c *conn) close() {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return
	}
	// Under the deadline too: with the peer gone silent, even the close
	// messages could block on a full TCP window.
	_ = c.do("close connection", "", func() error {
		if c.sftp != nil {
			c.sftp.Close()
		}
		if c.ssh == nil {
			return nil
		}
		return c.ssh.Close()
	})
	c.fail(errors.New("connection closed"))
}

func (c *conn) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// do runs one remote operation under the deadline. what and path name
// it in errors.
func (c *conn) do(what, path string, fn func() error) error {
	if err := c.failure(); err != nil {
		return opError(what, path, err)
	}
	t := time.AfterFunc(c.timeout, func() {
		c.fail(fmt.Errorf("no answer within %s: %w", c.timeout, ErrTimeout))
	})
	err := fn()
	if !t.Stop() {
		return opError(what, path, c.failure())
	}
	if err != nil {
		if cerr := c.failure(); cerr != nil {
			// The connection died under the operation: its cause is
			// the better message.
			return opError(what, path, cerr)
		}
		return opError(what, path, unwrapOp(err))
	}
	return nil
}

func opError(what, path string, err error) error {
	if path == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	return fmt.Errorf("%s %s: %w", what, path, err)
}

// CommandError is a remote command that ran and failed.
type CommandError struct {
	Command string
	Status  int    // exit status; -1 when it did not exit normally
	Output  string // the tail of its combined stdout and stderr
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("%q exited with status %d", e.Command, e.Status)
	if e.Status < 0 {
		msg = fmt.Sprintf("%q did not finish", e.Command)
	}
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += ":\n" + indent(termtext.Escape(out), "    ")
	}
	return msg
}

// run executes cmd through the remote user's shell with HACOMPILE_ROOT
// exported, waiting at most timeout. Output is kept to its last 4 KiB.
func (c *conn) run(ctx context.Context, root, cmd string, timeout time.Duration) (string, error) {
	if c.ssh == nil {
		return c.runLocal(ctx, root, cmd, timeout)
	}
	var s *ssh.Session
	err := c.do("open session", "", func() error {
		var err error
		s, err = c.ssh.NewSession()
		return err
	})
	if err != nil {
		return "", err
	}
	defer s.Close()
	out := &tailBuffer{max: 4096}
	s.Stdout, s.Stderr = out, out
	// The variable is set in the command line, not with Setenv: sshd
	// drops environment requests not listed in AcceptEnv.
	full := "HACOMPILE_ROOT=" + artifact.ShellQuote(root) + "; export HACOMPILE_ROOT; " + cmd
	if err := s.Start(full); err != nil {
		return "", fmt.Errorf("run %q: %w", cmd, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- s.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err = <-waited:
	case <-timer.C:
		_ = s.Signal(ssh.SIGKILL)
		s.Close()
		return out.String(), fmt.Errorf("run %q: still running after %s: %w", cmd, timeout, ErrTimeout)
	case <-ctx.Done():
		s.Close()
		return out.String(), fmt.Errorf("run %q: %w", cmd, ctx.Err())
	case <-c.done:
		return out.String(), fmt.Errorf("run %q: %w", cmd, c.failure())
	}
	if err != nil {
		var ee *ssh.ExitError
		if errors.As(err, &ee) {
			return out.String(), &CommandError{Command: cmd, Status: ee.ExitStatus(), Output: out.String()}
		}
		if cerr := c.failure(); cerr != nil {
			return out.String(), fmt.Errorf("run %q: %w", cmd, cerr)
		}
		return out.String(), &CommandError{Command: cmd, Status: -1, Output: out.String() + "\n" + err.Error()}
	}
	return out.String(), nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte(nil), t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, []byte("?")))
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(s, "\n", "\n"+pre)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// unwrapOp drops the *net.OpError / *os.PathError / *sftp.StatusError
// decoration whose text repeats what the caller already says.
func unwrapOp(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

var _ io.Writer = (*tailBuffer)(nil)
