package push

import (
	"context"
	"errors"
	"fmt"
	"github.com/hacompile/hacompile/internal/proc"
	"io"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/hacompile/hacompile/generators/artifact"
)

// SFTPServerPaths are where OpenSSH's sftp-server is looked for, for a
// local target (Endpoint.Local): Debian and Ubuntu, then Fedora/RHEL,
// then a plain prefix install.
var SFTPServerPaths = []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server"}

// ErrNoSFTPServer is a local target on a machine without OpenSSH's
// sftp-server (Debian's openssh-sftp-server).
var ErrNoSFTPServer = errors.New("no sftp-server")

// dialLocal makes a connection to this machine: the engine's file
// operations go, unchanged, through OpenSSH's own sftp-server run as a
// child process over pipes — the server a push over SSH talks to, with
// the fsync@openssh.com and posix-rename@openssh.com extensions every
// write relies on — and commands run through the local shell. Nothing
// listens; nothing is authenticated: the files are written with this
// process's rights.
func (d *dialer) dialLocal(ctx context.Context, e Endpoint) (*conn, error) {
	bin := ""
	for _, p := range SFTPServerPaths {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			bin = p
			break
		}
	}
	if bin == "" {
		return nil, fmt.Errorf("OpenSSH's sftp-server is not installed (looked for %v; Debian's package is openssh-sftp-server): %w", SFTPServerPaths, ErrNoSFTPServer)
	}
	cmd := exec.Command(bin, "-e", "-l", "ERROR")
	cmd.Stderr = os.Stderr
	proc.DieWithParent(cmd)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &localServer{cmd: cmd, stdin: stdin}
	cn := &conn{ep: e, timeout: d.timeout, raw: p, done: make(chan struct{})}
	context.AfterFunc(ctx, func() { cn.fail(ctx.Err()) })
	err = cn.do("sftp session", "", func() error {
		var err error
		cn.sftp, err = sftp.NewClientPipe(stdout, stdin)
		return err
	})
	if err != nil {
		cn.close()
		return nil, err
	}
	return cn, nil
}

// localServer is a running sftp-server: closing it ends the session
// and reaps the process.
type localServer struct {
	cmd   *exec.Cmd
	stdin io.Closer
	once  sync.Once
}

func (p *localServer) Close() error {
	p.once.Do(func() {
		p.stdin.Close()
		done := make(chan struct{})
		go func() { _ = p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			_ = p.cmd.Process.Kill()
			<-done
		}
	})
	return nil
}

// runLocal is run for a local target: cmd through /bin/sh with
// HACOMPILE_ROOT exported, at most timeout, its output's last 4 KiB
// kept.
func (c *conn) runLocal(ctx context.Context, root, cmd string, timeout time.Duration) (string, error) {
	if err := c.failure(); err != nil {
		return "", fmt.Errorf("run %q: %w", cmd, err)
	}
	out := &tailBuffer{max: 4096}
	full := "HACOMPILE_ROOT=" + artifact.ShellQuote(root) + "; export HACOMPILE_ROOT; " + cmd
	x := exec.Command("/bin/sh", "-c", full)
	x.Stdout, x.Stderr = out, out
	ownGroup(x)
	if err := x.Start(); err != nil {
		return "", fmt.Errorf("run %q: %w", cmd, err)
	}
	waited := make(chan error, 1)
	go func() { waited <- x.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	kill := func() {
		killGroup(x)
		<-waited
	}
	var err error
	select {
	case err = <-waited:
	case <-timer.C:
		kill()
		return out.String(), fmt.Errorf("run %q: still running after %s: %w", cmd, timeout, ErrTimeout)
	case <-ctx.Done():
		kill()
		return out.String(), fmt.Errorf("run %q: %w", cmd, ctx.Err())
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.Exited() {
			return out.String(), &CommandError{Command: cmd, Status: ee.ExitCode(), Output: out.String()}
		}
		return out.String(), &CommandError{Command: cmd, Status: -1, Output: out.String() + "\n" + err.Error()}
	}
	return out.String(), nil
}
