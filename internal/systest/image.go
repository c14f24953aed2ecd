//go:build unix

package systest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// imageVersion changes whenever what buildImage puts into an image
// changes, so a cached image from an older hacompile is not reused.
const imageVersion = "8"

// release is what the image builder knows of a target release.
type release struct {
	Name   string // the stack's os value, "debian-13"
	Suite  string // debootstrap's suite, "trixie"
	Mirror string
}

var releases = map[string]release{
	"debian-12": {Name: "debian-12", Suite: "bookworm", Mirror: "http://deb.debian.org/debian"},
	"debian-13": {Name: "debian-13", Suite: "trixie", Mirror: "http://deb.debian.org/debian"},
}

// basePackages are in every image: what a cloud image of the release has
// (systemd, cloud-init, an SSH-less minimal userland) plus the few tools
// the test itself runs inside a host (curl for health probes, socat for
// HAProxy's admin socket, procps for pgrep).
// imageMu serializes EnsureImage within this process.
var imageMu sync.Mutex

var basePackages = []string{
	"systemd", "systemd-sysv", "dbus", "iproute2", "ca-certificates",
	"cloud-init", "curl", "socat", "procps", "openssl", "python3",
	"netbase", "less", "openssh-server", "locales",
}

// standInPackages are what the stand-in application needs beyond the
// packages the stack's cloud-init installs: Debian's gunicorn for the
// virtualenv stand-in (with gevent, as a virtualenv for gevent workers
// has), Celery and its Redis and AMQP transports for
// workers.
var standInPackages = []string{"gunicorn", "python3-gevent", "python3-venv", "python3-celery", "python3-redis", "python3-kombu"}

// Image is a built root file system, read-only once built: each host
// boots from an overlay on it.
type Image struct {
	Release  string
	Dir      string // the root file system
	Packages []string
	Units    map[string][]string // package → the systemd units it ships
}

func (img *Image) readUnits(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "units"))
	if err != nil {
		return err
	}
	img.Units = map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if p, u, ok := strings.Cut(l, " "); ok {
			img.Units[p] = append(img.Units[p], u)
		}
	}
	return nil
}

// imageKey names a cached image by everything it is built from.
func imageKey(rel release, pkgs []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", imageVersion, rel.Name, rel.Suite, rel.Mirror)
	for _, p := range pkgs {
		fmt.Fprintln(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// EnsureImage returns the cached image for the release with pkgs
// installed, building it with debootstrap when there is none. The
// build goes to a temporary directory renamed into place at the end, so
// an interrupted build is never mistaken for an image.
func EnsureImage(cacheDir, relName string, pkgs []string, log io.Writer) (*Image, error) {
	// Runs in one process (stacks tested side by side) take turns: the
	// second finds the image the first built instead of building it too.
	imageMu.Lock()
	defer imageMu.Unlock()
	rel, ok := releases[relName]
	if !ok {
		known := slices.Sorted(func(yield func(string) bool) {
			for k := range releases {
				if !yield(k) {
					return
				}
			}
		})
		return nil, fmt.Errorf("no image for os %q here: the system test builds Debian images with debootstrap from Debian's archive (%s)", relName, strings.Join(known, ", "))
	}
	if m := os.Getenv("HACOMPILE_DEBIAN_MIRROR"); m != "" {
		rel.Mirror = m
	}
	all := slices.Concat(basePackages, standInPackages, pkgs)
	slices.Sort(all)
	all = slices.Compact(all)
	key := imageKey(rel, all)
	dir := filepath.Join(cacheDir, "images", rel.Name+"-"+key)
	img := &Image{Release: rel.Name, Dir: filepath.Join(dir, "root"), Packages: all}
	// An image of the release with every package needed, and more,
	// serves as well: testing one stack reuses the image built for all.
	if sup, ok := supersetImage(filepath.Dir(dir), rel.Name, all); ok {
		dir = sup
		img.Dir = filepath.Join(dir, "root")
	}
	defer pruneImages(filepath.Dir(dir), dir)
	if _, err := os.Stat(filepath.Join(dir, "ok")); err == nil {
		now := time.Now()
		_ = os.Chtimes(filepath.Join(dir, "ok"), now, now) // last used
		return img, img.readUnits(dir)
	}
	for _, tool := range []string{"debootstrap", "chroot", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("building the %s image needs %s (apt-get install debootstrap)", rel.Name, tool)
		}
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".build-"+rel.Name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	fmt.Fprintf(log, "image: debootstrap %s into %s\n", rel.Suite, dir)
	if err := run(log, "debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus,iproute2,ca-certificates",
		rel.Suite, root, rel.Mirror); err != nil {
		return nil, fmt.Errorf("debootstrap %s: %w", rel.Suite, err)
	}
	// debootstrap resolves no virtual packages; apt-get does, so the
	// rest is installed by apt inside the new root. Services must not
	// start in the chroot: policy-rc.d says so to invoke-rc.d.
	if err := os.WriteFile(filepath.Join(root, "usr/sbin/policy-rc.d"), []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return nil, err
	}
	install := "mount -t proc proc /proc && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends " +
		strings.Join(all, " ") + " && apt-get clean" +
		// A cloud image has the locale cloud-init sets (en_US.UTF-8).
		" && sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen" +
		"; rc=$?; umount /proc; exit $rc"
	fmt.Fprintf(log, "image: apt-get install %s\n", strings.Join(all, " "))
	if err := run(log, "unshare", "--mount", "--fork", "chroot", root, "sh", "-c", install); err != nil {
		return nil, fmt.Errorf("installing packages into the %s image: %w", rel.Name, err)
	}
	if err := os.Remove(filepath.Join(root, "usr/sbin/policy-rc.d")); err != nil {
		return nil, err
	}
	if err := configureImage(root); err != nil {
		return nil, err
	}
	// Which package ships which units: a host whose cloud-init does not
	// install a package must not run its services.
	var units strings.Builder
	for _, p := range all {
		if slices.Contains(basePackages, p) {
			continue
		}
		// A package's services may ship in a package it depends on
		// (nginx's in nginx-common): its direct dependencies count.
		deps, err := exec.Command("chroot", root, "dpkg-query", "-W", "-f=${Depends}", p).Output()
		if err != nil {
			return nil, fmt.Errorf("dpkg-query %s in the image: %w", p, err)
		}
		names := []string{p}
		for _, d := range strings.Split(string(deps), ",") {
			if f := strings.Fields(strings.Split(d, "|")[0]); len(f) > 0 {
				names = append(names, strings.Split(f[0], ":")[0])
			}
		}
		out, _ := exec.Command("chroot", append([]string{root, "dpkg", "-L"}, names...)...).Output()
		for _, l := range strings.Split(string(out), "\n") {
			if d, u := filepath.Split(l); (d == "/lib/systemd/system/" || d == "/usr/lib/systemd/system/") && !strings.Contains(u, "@") &&
				(strings.HasSuffix(u, ".service") || strings.HasSuffix(u, ".timer") || strings.HasSuffix(u, ".socket")) {
				fmt.Fprintf(&units, "%s %s\n", p, u)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "units"), []byte(units.String()), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "ok"), []byte("version "+imageVersion+"\n"+strings.Join(all, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	os.RemoveAll(dir) // a half-built image from an older, killed run
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	return img, img.readUnits(dir)
}

// supersetImage finds a built image under dir of the release and of
// this imageVersion (its ok file says both) whose packages include all
// of pkgs.
func supersetImage(dir, rel string, pkgs []string) (string, bool) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", false
	}
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), rel+"-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "ok"))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) == 0 || lines[0] != "version "+imageVersion {
			continue
		}
		if !slices.ContainsFunc(pkgs, func(p string) bool { return !slices.Contains(lines[1:], p) }) {
			return filepath.Join(dir, e.Name()), true
		}
	}
	return "", false
}

// imageMaxIdle is how long an image nobody used is kept.
const imageMaxIdle = 7 * 24 * time.Hour

// pruneImages removes the images under dir, but keep, that no test has
// used for imageMaxIdle (their ok file's time is their last use), and
// builds left behind by a killed run.
func pruneImages(dir, keep string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if p == keep || !e.IsDir() {
			continue
		}
		fi, err := os.Stat(filepath.Join(p, "ok"))
		switch {
		case err == nil && time.Since(fi.ModTime()) > imageMaxIdle:
			os.RemoveAll(p)
		case err != nil && strings.HasPrefix(e.Name(), ".build-"):
			if di, err := e.Info(); err == nil && time.Since(di.ModTime()) > 24*time.Hour {
				os.RemoveAll(p)
			}
		}
	}
}

// imageFiles are written into every image. Each one stands in for what
// a cloud provider's image and network give a new machine:
var imageFiles = map[string]string{
	// The NoCloud seed directory is the only datasource; the test
	// writes the host's user data there. The network is configured
	// from outside (the host's namespace already has its address), as
	// a provider's metadata service would.
	"etc/cloud/cloud.cfg.d/90-hacompile-test.cfg": `# hacompile test: user data from the NoCloud seed only; the address is set from outside.
datasource_list: [NoCloud, None]
network: {config: disabled}
`,
	// No route leaves the test network, so the package archive is a
	// local one: every package the stack's cloud-init names is already
	// installed, and apt-get update and install succeed as they would
	// against a mirror, without touching the network.
	"etc/apt/sources.list.d/hacompile-test.list": "deb [trusted=yes] file:/var/lib/hacompile-test/archive ./\n",
	"var/lib/hacompile-test/archive/Packages":    "",
	// A container may not change kernel-wide settings (fs.*, vm.*,
	// kernel.*, the global net.core.* keys): /proc/sys is read-only
	// there. sysctl is wrapped so those keys are recorded as not
	// applicable in a container instead of failing the boot script,
	// while every per-namespace key is applied for real and any other
	// error still fails.
	// At boot, systemd-sysctl applies what a container may set (the
	// host's network namespace) and fails on the rest: the failure is
	// the container's, not the host's.
	"etc/systemd/system/systemd-sysctl.service.d/hacompile-test.conf": `# hacompile test: kernel-wide keys are not a container's to set.
[Service]
ExecStart=
ExecStart=-/usr/lib/systemd/systemd-sysctl
`,
	"usr/local/sbin/sysctl": `#!/bin/sh
# hacompile test: sysctl that records keys a container cannot set.
err=$(/usr/sbin/sysctl "$@" 2>&1 >/dev/null); rc=$?
[ $rc -eq 0 ] && exit 0
mkdir -p /run/hacompile-test
printf '%s\n' "$err" >> /run/hacompile-test/sysctl-skipped
if printf '%s\n' "$err" | grep -v -i -e 'read-only file system' -e 'permission denied' -e 'cannot stat' -e '^$' | grep -q .; then
	printf '%s\n' "$err" >&2
	exit $rc
fi
exit 0
`,
}

func configureImage(root string) error {
	for _, name := range slices.Sorted(mapKeys(imageFiles)) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(imageFiles[name], "#!") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(imageFiles[name]), mode); err != nil {
			return err
		}
	}
	// The distribution's sources point at the network the hosts cannot
	// reach.
	for _, f := range []string{"etc/apt/sources.list", "etc/apt/sources.list.d/debian.sources"} {
		if err := os.Remove(filepath.Join(root, f)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	// A container cannot load kernel modules (the machine provides
	// them) and has no root file system of its own to remount.
	for _, u := range []string{"systemd-modules-load.service", "modprobe@.service", "systemd-remount-fs.service"} {
		if err := os.Symlink("/dev/null", filepath.Join(root, "etc/systemd/system", u)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	// Every host gets its own machine id at its first boot, as a new
	// instance does.
	return os.WriteFile(filepath.Join(root, "etc/machine-id"), nil, 0o444)
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// run runs a command with its output to log; the error carries the
// command's last lines so a failure says why.
func run(log io.Writer, name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var tail tailBuffer
	cmd.Stdout = io.MultiWriter(log, &tail)
	cmd.Stderr = io.MultiWriter(log, &tail)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", name, err, tail.String())
	}
	return nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return strings.TrimSpace(string(t.b)) }
