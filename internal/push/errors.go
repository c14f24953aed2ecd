package push

import (
	"errors"
	"fmt"
	"strings"
)

// Kinds of failure callers tell apart with errors.Is. The CLI maps the
// first three to their own exit codes.
var (
	// ErrHostKeyUnknown: known_hosts has no key for the host.
	ErrHostKeyUnknown = errors.New("host key unknown")
	// ErrHostKeyChanged: known_hosts has a different key for the host.
	ErrHostKeyChanged = errors.New("host key changed")
	// ErrDrift: a file was changed on the host since the last push.
	ErrDrift = errors.New("drift")

	ErrAuth         = errors.New("authentication failed")
	ErrEncryptedKey = errors.New("encrypted key")
	ErrTimeout      = errors.New("timed out")
	ErrLocked       = errors.New("locked by another push")
	ErrUnsafeTarget = errors.New("unsafe target")
	ErrUnsupported  = errors.New("unsupported SFTP server")
	ErrValidate     = errors.New("validation failed")
	ErrReload       = errors.New("reload failed")
	ErrHealth       = errors.New("health check failed")
	ErrRestore      = errors.New("restore failed")
	ErrNotConfirmed = errors.New("change not confirmed")
	ErrNoGeneration = errors.New("nothing to roll back")
)

// HostKeyError is a host key known_hosts does not vouch for.
type HostKeyError struct {
	Addr        string   // host:port as dialled
	Type        string   // the presented key's type
	Fingerprint string   // its SHA256 fingerprint
	Known       []string // file:line (type) of the keys known_hosts has; empty when unknown
	Files       []string // the known_hosts files consulted
}

// Changed reports whether known_hosts has other keys for the host.
func (e *HostKeyError) Changed() bool { return len(e.Known) > 0 }

func (e *HostKeyError) Error() string {
	if e.Changed() {
		return fmt.Sprintf("HOST KEY CHANGED for %s: it presented %s %s, known_hosts has %s; this is a reinstalled host or someone intercepting the connection",
			e.Addr, e.Type, e.Fingerprint, strings.Join(e.Known, ", "))
	}
	return fmt.Sprintf("host key for %s is unknown: it presented %s %s, which is in none of %s",
		e.Addr, e.Type, e.Fingerprint, strings.Join(e.Files, ", "))
}

// Is makes errors.Is(err, ErrHostKeyUnknown / ErrHostKeyChanged) work.
func (e *HostKeyError) Is(target error) bool {
	return (target == ErrHostKeyChanged && e.Changed()) || (target == ErrHostKeyUnknown && !e.Changed())
}

// Hint says what the operator can do about it.
func (e *HostKeyError) Hint() string {
	host, port := splitAddr(e.Addr)
	scan := "ssh-keyscan " + host
	if port != "22" {
		scan = "ssh-keyscan -p " + port + " " + host
	}
	if e.Changed() {
		return "verify the new key out of band; only if the change is expected, remove the old entry (ssh-keygen -R '" + knownHostsName(host, port) + "') and add the new one"
	}
	return "compare the fingerprint with the host's (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on its console), then add it: " + scan + " >> ~/.ssh/known_hosts"
}

// HostError is a failure on one host.
type HostError struct {
	Host string
	Err  error
}

func (e *HostError) Error() string { return e.Host + ": " + e.Err.Error() }
func (e *HostError) Unwrap() error { return e.Err }

// Hint returns advice for err, or "".
func Hint(err error) string {
	var he *HostKeyError
	switch {
	case errors.As(err, &he):
		return he.Hint()
	case errors.Is(err, ErrDrift):
		return "inspect the hand edits; to keep them, put them in the stack and rebuild; to overwrite them (a backup is kept), push with --force"
	case errors.Is(err, ErrEncryptedKey):
		return "add the key to ssh-agent (ssh-add) and drop --identity, or set HACOMPILE_SSH_PASSPHRASE"
	case errors.Is(err, ErrAuth):
		return "check the user (hosts.<name>.ssh.user or User in --ssh-config) and that the key is in its authorized_keys"
	case errors.Is(err, ErrLocked):
		return "wait for the other push to finish; a lock is taken over only from a push proven gone: one whose heartbeat stopped for --lock-timeout (on this machine, whose process has exited too), or one from before a reboot of this machine (if you are sure no push is running there, rerun with --lock-timeout 1s)"
	case errors.Is(err, ErrNoGeneration):
		return "rollback reverts a push recorded on the host; push first"
	}
	return ""
}

func splitAddr(addr string) (host, port string) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return addr, "22"
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:]
}

func knownHostsName(host, port string) string {
	if port == "22" {
		return host
	}
	return "[" + host + "]:" + port
}
