package gitops_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"

	"github.com/hacompile/hacompile/internal/gitops"
)

// sshGitServer is a git server on loopback: an in-process SSH server
// that runs git upload-pack / receive-pack for the commands go-git
// sends, so publish's ssh transport is tested end to end, host key
// check included.
type sshGitServer struct {
	addr    string
	hostKey ssh.PublicKey
	keyFile string // the client's private key
	wg      sync.WaitGroup
}

func newSSHGitServer(t *testing.T) *sshGitServer {
	t.Helper()
	_, hostPriv, _ := ed25519.GenerateKey(rand.Reader)
	hostSigner, err := ssh.NewSignerFromKey(hostPriv)
	if err != nil {
		t.Fatal(err)
	}
	clientPub, clientPriv, _ := ed25519.GenerateKey(rand.Reader)
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	authorized, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
			if bytes.Equal(k.Marshal(), authorized.Marshal()) {
				return nil, nil
			}
			return nil, io.ErrUnexpectedEOF
		},
	}
	cfg.AddHostKey(hostSigner)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &sshGitServer{addr: ln.Addr().String(), hostKey: hostSigner.PublicKey(), keyFile: keyFile}
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.serve(c, cfg) }()
		}
	}()
	return s
}

func (s *sshGitServer) serve(c net.Conn, cfg *ssh.ServerConfig) {
	defer c.Close()
	_, chans, reqs, err := ssh.NewServerConn(c, cfg)
	if err != nil {
		return // a client that rejected our host key ends here
	}
	go ssh.DiscardRequests(reqs)
	for nc := range chans {
		if nc.ChannelType() != "session" {
			nc.Reject(ssh.UnknownChannelType, "session only")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			return
		}
		for req := range chReqs {
			if req.Type != "exec" {
				req.Reply(req.Type == "env", nil)
				continue
			}
			req.Reply(true, nil)
			n := binary.BigEndian.Uint32(req.Payload)
			status := runGitService(string(req.Payload[4:4+n]), ch)
			ch.SendRequest("exit-status", false, binary.BigEndian.AppendUint32(nil, uint32(status)))
			ch.Close()
			break
		}
	}
}

// runGitService runs "git-receive-pack '/path'" and the like.
func runGitService(command string, ch ssh.Channel) int {
	svc, arg, _ := strings.Cut(command, " ")
	if svc != "git-upload-pack" && svc != "git-receive-pack" {
		return 127
	}
	cmd := exec.Command("git", strings.TrimPrefix(svc, "git-"), strings.Trim(arg, "'"))
	cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return 1
	}
	if err := cmd.Start(); err != nil {
		return 1
	}
	// Not waited for: the client closes its side only after the
	// exit status, which comes after the command ends.
	go func() { io.Copy(stdin, ch); stdin.Close() }()
	if err := cmd.Wait(); err != nil {
		return 1
	}
	return 0
}

func (s *sshGitServer) knownHosts(t *testing.T, key ssh.PublicKey, host string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(f, []byte(knownhosts.Line([]string{host}, key)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestPublishSSH pushes over ssh:// to a host whose key is in
// known_hosts, and refuses a host whose key differs or is unknown,
// before anything is sent.
func TestPublishSSH(t *testing.T) {
	srv := newSSHGitServer(t)
	remote := bare(t)
	url := "ssh://git@" + srv.addr + remote

	r := newRepo(t)
	r.write(map[string]string{"stacks/web.cue": webStack})
	r.commit("web")

	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	for name, tc := range map[string]struct {
		knownHosts string
		want       string
	}{
		"changed key": {srv.knownHosts(t, other.PublicKey(), srv.addr), "knownhosts: key mismatch: the remote's host key differs from the one in known_hosts"},
		"unknown":     {srv.knownHosts(t, srv.hostKey, "127.0.0.2:22"), "knownhosts: key is unknown: the remote's host key is not in known_hosts"},
	} {
		repo := r.open()
		head, _ := repo.Head()
		_, err := repo.Publish(head, render(t, r), gitops.PublishOptions{
			Repo: url, Branch: "rendered", Author: publisher, Committer: publisher,
			SSH: gitops.SSHOptions{KeyFile: srv.keyFile, KnownHosts: []string{tc.knownHosts}},
		})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), url) {
			t.Errorf("%s: err = %v, want %q naming %s", name, err, tc.want, url)
		}
	}
	if out := runGit(t, remote, "for-each-ref"); out != "" {
		t.Fatalf("a refused host received refs:\n%s", out)
	}

	ssh := gitops.SSHOptions{KeyFile: srv.keyFile, KnownHosts: []string{srv.knownHosts(t, srv.hostKey, srv.addr)}}
	pub := publish(t, r, gitops.PublishOptions{Repo: url, SSH: ssh})
	if !pub.Committed || !pub.Pushed {
		t.Fatalf("publish = %+v", pub)
	}
	if got := strings.TrimSpace(runGit(t, remote, "rev-parse", "rendered")); got != pub.Tip.String() {
		t.Errorf("remote rendered = %s, want %s", got, pub.Tip)
	}
	runGit(t, remote, "fsck", "--strict", "--no-dangling")
	// The second run fetches the tip over ssh and finds nothing to do.
	if again := publish(t, r, gitops.PublishOptions{Repo: url, SSH: ssh}); again.Committed || again.Pushed || again.Tip != pub.Tip {
		t.Errorf("second publish = %+v", again)
	}
}
