//go:build linux

package releasetest

import (
	"bytes"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hacompile/hacompile/internal/debroot"
	"github.com/hacompile/hacompile/internal/testtool"
)

// target is a release whose tools run the checks: this machine's own
// (root "/") or a cached debootstrapped root entered with chroot.
type target struct {
	os   string
	root string
}

var roots struct {
	sync.Mutex
	m map[string]string
}

// debianRoot returns the cached root of release, building it the first
// time (minutes: debootstrap and apt-get from deb.debian.org). A root
// that cannot be built skips the test, or fails it under CI=true.
func debianRoot(t *testing.T, release string) string {
	t.Helper()
	roots.Lock()
	defer roots.Unlock()
	if r, ok := roots.m[release]; ok {
		return r
	}
	var log bytes.Buffer
	r, err := debroot.Ensure(release, debroot.ToolPackages, &log)
	if err != nil {
		testtool.Missing(t, "the "+release+" root for its own tools: "+err.Error()+"\n"+tail(log.String(), 40))
		return ""
	}
	if roots.m == nil {
		roots.m = map[string]string{}
	}
	roots.m[release] = r
	return r
}

func tail(s string, n int) string {
	l := strings.Split(s, "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// releases are this machine's release, then every release debroot can
// build that is not it, sorted.
func releases(t *testing.T) []string {
	t.Helper()
	for _, c := range [][2]string{{"nginx", "nginx"}, {"haproxy", "haproxy"}, {"systemd-analyze", "systemd"},
		{"cloud-init", "cloud-init"}, {"openssl", "openssl"}, {"unshare", "util-linux"}, {"chroot", "coreutils"}} {
		testtool.Require(t, c[0], c[1])
	}
	if os.Geteuid() != 0 {
		testtool.Missing(t, "the release checks run the tools in private mount and network namespaces, under chroot: run the tests as root")
	}
	host := testtool.HostOS()
	var others []string
	for name := range debroot.Suites {
		if name != host {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	return append([]string{host}, others...)
}

// targetFor returns where release's tools are: this machine for its own
// release, a cached root (built when missing) for the others.
func targetFor(t *testing.T, release string) target {
	t.Helper()
	if release == testtool.HostOS() {
		return target{os: release, root: "/"}
	}
	return target{os: release, root: debianRoot(t, release)}
}

// run runs argv inside the target with sandbox bound at /mnt, in a
// private mount and network namespace (nginx -t binds the stack's
// addresses, which are not this machine's: any address may be bound
// there). It returns the combined output.
func (tg target) run(t *testing.T, sandbox string, env []string, argv ...string) (string, error) {
	t.Helper()
	script := `set -e
mount --bind "$1" "$2/mnt"
if [ "$2" != / ]; then mount -t proc proc "$2/proc"; fi
echo 1 >/proc/sys/net/ipv4/ip_nonlocal_bind
ip link set lo up 2>/dev/null || true
if [ -n "$HACOMPILE_TEST_LINK" ]; then ip link add "$HACOMPILE_TEST_LINK" type veth peer name hacompile-peer && ip link set "$HACOMPILE_TEST_LINK" up; fi
r=$2; shift 2
exec chroot "$r" "$@"`
	args := append([]string{"--mount", "--net", "--fork", "sh", "-c", script, "sh", sandbox, tg.root}, argv...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}, env...)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// sandboxDir is a temporary directory every user can read (nginx -t
// opens files as root but checks www-data's temp paths).
func sandboxDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}
