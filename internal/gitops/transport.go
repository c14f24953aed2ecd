package gitops

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing/transport"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
	"github.com/skeema/knownhosts"

	"github.com/hacompile/hacompile/internal/secret"
)

// SSHOptions say how to reach ssh:// remotes. The server's host key is
// always checked against known_hosts files: a publish that trusted any
// key would hand the rendered configuration, and the branch hosts are
// deployed from, to whoever answers.
type SSHOptions struct {
	// KeyFile is a private key; empty means the ssh-agent at
	// SSH_AUTH_SOCK.
	KeyFile string
	// KnownHosts are known_hosts files; empty means those listed in
	// SSH_KNOWN_HOSTS (colon-separated), else ~/.ssh/known_hosts and
	// /etc/ssh/ssh_known_hosts.
	KnownHosts []string
}

// scpLike matches the user@host:path form of ssh remotes.
var scpLike = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)

// IsURL reports whether a --repo value is a remote URL rather than a
// path on disk.
func IsURL(s string) bool { return strings.Contains(s, "://") || scpLike.MatchString(s) }

// auth returns how to authenticate to the remote at rawURL: nothing for
// local (file) remotes, keys and known_hosts for ssh, and an error for
// protocols hacompile does not push to.
func auth(rawURL string, o SSHOptions) (transport.AuthMethod, error) {
	ep, err := transport.NewEndpoint(rawURL)
	if err != nil {
		// url.Parse's error quotes the URL whole.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("remote %s: %w", secret.RedactURL(rawURL), err)
	}
	switch ep.Protocol {
	case "file":
		return nil, nil
	case "ssh":
	default:
		return nil, fmt.Errorf("remote %s: unsupported protocol %q (hacompile pushes to file:// and ssh:// remotes)", secret.RedactURL(rawURL), ep.Protocol)
	}
	files, err := knownHostsFiles(o.KnownHosts)
	if err != nil {
		return nil, err
	}
	db, err := knownhosts.NewDB(files...)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	port := ep.Port
	if port == 0 {
		port = 22
	}
	helper := gitssh.HostKeyCallbackHelper{
		HostKeyCallback: db.HostKeyCallback(),
		// Offer only the key types known_hosts has for this host, so the
		// server cannot pick one that would look unknown.
		HostKeyAlgorithms: db.HostKeyAlgorithms(net.JoinHostPort(ep.Host, strconv.Itoa(port))),
	}
	user := cmp.Or(ep.User, "git")
	if o.KeyFile != "" {
		pk, err := gitssh.NewPublicKeysFromFile(user, o.KeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("ssh key %s: %w", o.KeyFile, err)
		}
		pk.HostKeyCallbackHelper = helper
		return pk, nil
	}
	a, err := gitssh.NewSSHAgentAuth(user)
	if err != nil {
		return nil, fmt.Errorf("no ssh key: pass --ssh-key or run an ssh-agent (%w)", err)
	}
	a.HostKeyCallbackHelper = helper
	return a, nil
}

func knownHostsFiles(given []string) ([]string, error) {
	if len(given) > 0 {
		for _, f := range given {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("known_hosts: %w", err)
			}
		}
		return given, nil
	}
	candidates := filepath.SplitList(os.Getenv("SSH_KNOWN_HOSTS"))
	if len(candidates) == 0 {
		if home, err := os.UserHomeDir(); err == nil {
			candidates = append(candidates, filepath.Join(home, ".ssh", "known_hosts"))
		}
		candidates = append(candidates, "/etc/ssh/ssh_known_hosts")
	}
	var out []string
	for _, f := range candidates {
		if _, err := os.Stat(f); err == nil {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no known_hosts file (looked for %s): pass --known-hosts, so the remote's host key can be verified", strings.Join(candidates, ", "))
	}
	return out, nil
}

// explainHostKey adds what to do to a host key verification failure.
func explainHostKey(err error) error {
	switch {
	case knownhosts.IsHostKeyChanged(err):
		return fmt.Errorf("%w: the remote's host key differs from the one in known_hosts; check with its operator before trusting it", err)
	case knownhosts.IsHostUnknown(err):
		return fmt.Errorf("%w: the remote's host key is not in known_hosts; add it (ssh-keyscan, checked against a trusted fingerprint) or pass --known-hosts", err)
	}
	return err
}
