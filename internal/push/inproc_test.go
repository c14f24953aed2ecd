package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/hacompile/hacompile/internal/push/pushtest"
)

// The in-process server: x/crypto/ssh with pkg/sftp's server behind
// it. It is fast and needs no OpenSSH, so it carries the error paths.
// It is not OpenSSH: it offers no fsync@openssh.com (push refuses to
// write through it, which TestInprocRefusesWithoutFsync checks), and
// its exec runs sh -c locally.

type inproc struct {
	addr    string
	hostKey ssh.Signer
	authKey ssh.PublicKey
	stall   bool   // accept the sftp subsystem but never answer
	uid     string // what "id -u" answers; empty runs it
}

func startInproc(t *testing.T, authKey ssh.PublicKey, stall bool) *inproc {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s := &inproc{hostKey: hk, authKey: authKey, stall: stall}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), s.authKey.Marshal()) {
				return nil, nil
			}
			return nil, errors.New("not authorized")
		},
	}
	cfg.AddHostKey(hk)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); close(done) })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(nc, cfg, done)
		}
	}()
	return s
}

func (s *inproc) serve(nc net.Conn, cfg *ssh.ServerConfig, done chan struct{}) {
	defer nc.Close()
	go func() { <-done; nc.Close() }()
	_, chans, reqs, err := ssh.NewServerConn(nc, cfg)
	if err != nil {
		return
	}
	go ssh.DiscardRequests(reqs)
	for nch := range chans {
		if nch.ChannelType() != "session" {
			nch.Reject(ssh.UnknownChannelType, "no")
			continue
		}
		ch, creqs, err := nch.Accept()
		if err != nil {
			return
		}
		go s.session(ch, creqs)
	}
}

func (s *inproc) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	for req := range reqs {
		switch req.Type {
		case "subsystem":
			req.Reply(true, nil)
			if s.stall {
				for range reqs {
				}
				return
			}
			srv, err := sftp.NewServer(ch)
			if err != nil {
				return
			}
			srv.Serve()
			return
		case "exec":
			var p struct{ Cmd string }
			ssh.Unmarshal(req.Payload, &p)
			req.Reply(true, nil)
			cmd := exec.Command("sh", "-c", p.Cmd)
			if s.uid != "" && strings.HasSuffix(p.Cmd, "; id -u") {
				cmd = exec.Command("echo", s.uid)
			}
			cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
			code := 0
			if err := cmd.Run(); err != nil {
				code = 255
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				}
			}
			status := make([]byte, 4)
			binary.BigEndian.PutUint32(status, uint32(code))
			ch.SendRequest("exit-status", false, status)
			return
		default:
			req.Reply(false, nil)
		}
	}
}

// inprocEnv is one in-process host with a fresh root and client key.
type inprocEnv struct {
	srv   *inproc
	root  string
	key   string
	known string
	dir   string
}

func newInproc(t *testing.T, stall bool) *inprocEnv {
	t.Helper()
	dir := t.TempDir()
	key, pub := pushtest.NewKey(t, dir, "client", "")
	srv := startInproc(t, pub, stall)
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte(pushtest.KnownHostsLine(srv.addr, srv.hostKey.PublicKey(), true)+"\n"), 0o600)
	root := filepath.Join(dir, "root")
	os.MkdirAll(root, 0o755)
	return &inprocEnv{srv: srv, root: root, key: key, known: known, dir: dir}
}

// opts pushes a one-host stack to the in-process server.
func (e *inprocEnv) opts(t *testing.T) Options {
	t.Helper()
	host, port, _ := net.SplitHostPort(e.srv.addr)
	n, _ := strconv.Atoi(port)
	src := `name: "fleet"
domain: "fleet.example.com"
tls: mode: "none"
hosts: app1: {address: "` + host + `", roles: ["app"], cores: 1, memory_mb: 1024, ssh: {user: "deploy", port: ` + port + `}}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", bind: port: 8000}
`
	hosts, err := Targets(renderStack(t, src), TargetOptions{Root: e.root, NoHealth: true})
	if err != nil {
		t.Fatal(err)
	}
	if hosts[0].SSH.Port != n {
		t.Fatalf("port %d", hosts[0].SSH.Port)
	}
	return Options{
		Stack: "fleet", Hosts: hosts,
		Auth:    Auth{KnownHosts: []string{e.known}, Identity: e.key},
		Timeout: 2 * time.Second, CommandTimeout: 5 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
		Batch: "1", By: "test@inproc", PID: 1,
	}
}

func TestInprocHostKeyUnknownAndChanged(t *testing.T) {
	t.Parallel()
	e := newInproc(t, false)
	o := e.opts(t)
	o.DryRun = true
	o.Auth.KnownHosts = []string{filepath.Join(e.dir, "none")}
	_, err := Run(context.Background(), o)
	if !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("no known_hosts file: %v", err)
	}
	_, other := pushtest.NewKey(t, e.dir, "other", "")
	changed := filepath.Join(e.dir, "known_changed")
	os.WriteFile(changed, []byte(pushtest.KnownHostsLine(e.srv.addr, other, true)+"\n"), 0o600)
	o.Auth.KnownHosts = []string{changed}
	_, err = Run(context.Background(), o)
	if !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("changed: %v", err)
	}
	// A known key of another type is a change too, not a failed
	// negotiation: known types are preferred, not the only ones offered.
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPub, _ := ssh.NewPublicKey(&ecKey.PublicKey)
	os.WriteFile(changed, []byte(pushtest.KnownHostsLine(e.srv.addr, ecPub, true)+"\n"), 0o600)
	if _, err = Run(context.Background(), o); !errors.Is(err, ErrHostKeyChanged) || !strings.Contains(err.Error(), "(ecdsa-sha2-nistp256)") {
		t.Fatalf("changed key type: %v", err)
	}
	// A key for the same address on another port is not this host's.
	_, port, _ := net.SplitHostPort(e.srv.addr)
	p, _ := strconv.Atoi(port)
	otherPort := filepath.Join(e.dir, "known_other_port")
	os.WriteFile(otherPort, []byte(pushtest.KnownHostsLine("127.0.0.1:"+strconv.Itoa(p+1), e.srv.hostKey.PublicKey(), false)+"\n"), 0o600)
	o.Auth.KnownHosts = []string{otherPort}
	if _, err = Run(context.Background(), o); !errors.Is(err, ErrHostKeyUnknown) {
		t.Fatalf("key for another port: %v", err)
	}
}

func TestInprocAuth(t *testing.T) {
	t.Parallel()
	e := newInproc(t, false)
	o := e.opts(t)
	o.DryRun = true

	stranger, _ := pushtest.NewKey(t, e.dir, "stranger", "")
	o.Auth.Identity = stranger
	_, err := Run(context.Background(), o)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "as deploy: authentication failed") {
		t.Fatalf("unauthorized key: %v", err)
	}

	o.Auth.Identity = ""
	_, err = Run(context.Background(), o)
	if !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "no SSH credentials") {
		t.Fatalf("no credentials: %v", err)
	}

	// An encrypted key fails clearly without a passphrase, and with a
	// wrong one; with the right one it works.
	locked, pub := pushtest.NewKey(t, e.dir, "locked", "correct horse")
	e.srv.authKey = pub
	o.Auth.Identity = locked
	_, err = Run(context.Background(), o)
	if !errors.Is(err, ErrEncryptedKey) || !strings.Contains(err.Error(), locked+" is encrypted") {
		t.Fatalf("encrypted key: %v", err)
	}
	o.Auth.Passphrase = []byte("wrong")
	if _, err = Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "wrong passphrase") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	o.Auth.Passphrase = []byte("correct horse")
	if _, err = Run(context.Background(), o); err != nil {
		t.Fatalf("right passphrase: %v", err)
	}
}

// A symlink where a file goes is refused: writing through it would put
// config wherever the link points.
func TestInprocSymlinkRefused(t *testing.T) {
	t.Parallel()
	e := newInproc(t, false)
	o := e.opts(t)
	elsewhere := filepath.Join(e.dir, "elsewhere")
	os.WriteFile(elsewhere, []byte("precious\n"), 0o644)
	link := filepath.Join(e.root, "etc/nginx/nginx.conf")
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(elsewhere, link); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		o.DryRun = dry
		_, err := Run(context.Background(), o)
		if !errors.Is(err, ErrUnsafeTarget) || !strings.Contains(err.Error(), "app1: /etc/nginx/nginx.conf is a symlink (to "+elsewhere+")") {
			t.Fatalf("dry run %v: %v", dry, err)
		}
	}
	if b, _ := os.ReadFile(elsewhere); string(b) != "precious\n" {
		t.Error("symlink target written")
	}
	if _, err := os.Stat(filepath.Join(e.root, "etc/app")); !os.IsNotExist(err) {
		t.Error("other files written despite the refusal")
	}
}

// pkg/sftp's server has no fsync@openssh.com: push will not write
// without it, and says so; a dry run notes it.
func TestInprocRefusesWithoutFsync(t *testing.T) {
	t.Parallel()
	e := newInproc(t, false)
	o := e.opts(t)
	_, err := Run(context.Background(), o)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "does not offer fsync@openssh.com") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.root, "etc")); !os.IsNotExist(err) {
		t.Error("files written without fsync")
	}
	if _, err := os.Stat(filepath.Join(e.root, lockPath("fleet"))); !os.IsNotExist(err) {
		t.Error("lock left behind")
	}
	o.DryRun = true
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if notes := sum.Hosts[0].Plan.Notes; len(notes) != 2 || !strings.Contains(notes[1], "fsync@openssh.com") {
		t.Errorf("dry-run notes: %q", notes)
	}
}

// A dry run is deterministic, reports temp files an interrupted push
// left, and writes nothing (no lock either).
func TestInprocDryRunPlan(t *testing.T) {
	t.Parallel()
	e := newInproc(t, false)
	o := e.opts(t)
	o.DryRun = true
	stale := filepath.Join(e.root, "etc/nginx", TempPrefix+"nginx.conf-0badc0ffee00")
	os.MkdirAll(filepath.Dir(stale), 0o755)
	os.WriteFile(stale, []byte("half"), 0o600)
	os.WriteFile(filepath.Join(e.root, "etc/nginx/nginx.conf"), []byte("distribution default\n"), 0o644)
	var texts []string
	for range 2 {
		sum, err := Run(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		sum.Hosts[0].Plan.Format(&b)
		texts = append(texts, b.String())
		if sum.Hosts[0].Status != StatusPlanned {
			t.Errorf("status %s", sum.Hosts[0].Status)
		}
	}
	if texts[0] != texts[1] {
		t.Errorf("plans differ:\n%s\n---\n%s", texts[0], texts[1])
	}
	plan := texts[0]
	for _, want := range []string{
		"app1 (deploy@" + e.srv.addr + "): 14 to create, 1 to update, 0 to remove, 0 unchanged\n",
		"  + /etc/app/gunicorn.conf.py (0644 root:root)\n",
		"  ~ /etc/nginx/nginx.conf (content)\n",
		"  validate: runuser -u app -- env PYTHONDONTWRITEBYTECODE=1 /usr/bin/gunicorn --check-config",
		// The host's tree is under a root: reloads would act on this
		// machine's services.
		"  note: not run under the root " + e.root + ", as it would act on this machine's own services rather than the tree: systemd-analyze verify --man=no nginx.service; systemctl daemon-reload; sysctl --system; ",
		"temp file(s) left by an interrupted push will be removed: /etc/nginx/" + TempPrefix + "nginx.conf-0badc0ffee00",
	} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if _, err := os.Stat(stale); err != nil {
		t.Error("dry run removed a temp file")
	}
	if _, err := os.Stat(filepath.Join(e.root, StateDir)); !os.IsNotExist(err) {
		t.Error("dry run wrote under /var/lib/hacompile")
	}
}

// An SFTP server that accepts the session and then never answers fails
// within the deadline instead of hanging the push.
func TestInprocStalledSFTP(t *testing.T) {
	t.Parallel()
	e := newInproc(t, true)
	o := e.opts(t)
	o.Timeout = 300 * time.Millisecond
	start := time.Now()
	_, err := Run(context.Background(), o)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "sftp session: no answer within 300ms") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

// A server that accepts TCP and never speaks fails within --timeout.
func TestSilentServerTimesOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, _ := pushtest.NewKey(t, dir, "client", "")
	addr := pushtest.SilentServer(t, "127.0.0.1")
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	o := Options{Stack: "fleet", Hosts: []Host{{Name: "app1", Roles: []string{"app"}, SSH: Endpoint{HostName: host, Port: p, User: "root"}}},
		Auth:    Auth{KnownHosts: []string{filepath.Join(dir, "known_hosts")}, Identity: key},
		Timeout: 500 * time.Millisecond, CommandTimeout: time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute, Batch: "1"}
	start := time.Now()
	_, err := Run(context.Background(), o)
	d := time.Since(start)
	if !errors.Is(err, ErrTimeout) || !strings.Contains(err.Error(), "app1: ssh handshake with "+addr+": no answer within 500ms") {
		t.Fatalf("err = %v", err)
	}
	if d < 500*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("failed after %s, want about 500ms", d)
	}
}

// Keys can come from ssh-agent alone (SSH_AUTH_SOCK).
func TestInprocAgent(t *testing.T) {
	t.Parallel()
	e := newInproc(t, false)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(e.dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go agent.ServeAgent(keyring, c)
		}
	}()
	signer, _ := ssh.NewSignerFromKey(priv)
	e.srv.authKey = signer.PublicKey()
	o := e.opts(t)
	o.DryRun = true
	o.Auth.Identity = ""
	o.Auth.AgentSocket = sock
	if _, err := Run(context.Background(), o); err != nil {
		t.Fatalf("agent auth: %v", err)
	}
	o.Auth.AgentSocket = filepath.Join(e.dir, "no-agent.sock")
	if _, err := Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "ssh-agent at SSH_AUTH_SOCK="+o.Auth.AgentSocket) {
		t.Fatalf("missing agent: %v", err)
	}
}

// A remote user that is not root cannot chown: the plan says owners are
// not applied, and ownership is not a reason to rewrite a file.
func TestInprocNotRoot(t *testing.T) {
	t.Parallel()
	e := newInproc(t, false)
	e.srv.uid = "1000"
	o := e.opts(t)
	o.DryRun = true
	sum, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	notes := strings.Join(sum.Hosts[0].Plan.Notes, "\n")
	if !strings.Contains(notes, "owners are not applied: the remote user (uid 1000) is not root") {
		t.Errorf("notes: %s", notes)
	}
	for _, ch := range sum.Hosts[0].Plan.Changes {
		if ch.New.UID != -1 {
			t.Errorf("%s: uid %d planned without root", ch.Path, ch.New.UID)
		}
	}
}
