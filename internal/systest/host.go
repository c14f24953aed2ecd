//go:build unix

package systest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine is one host of the stack booted as a container: systemd as
// PID 1 on an overlay of the image, in the host's own network namespace.
type Machine struct {
	Name    string
	Address string
	NS      string // network namespace
	Port    string // its cable on the bridge
	dir     string // upper, work and root of the overlay
	root    string
	cmd     *exec.Cmd
	done    chan struct{}
	log     *os.File
	leader  int    // PID 1 of the container, as the machine sees it
	cgroup  string // the container's own cgroup (v2), removed on Close
}

// prepare mounts the host's root: an overlay whose lower layer is the
// image, so hosts share the image and each writes only its own layer.
func prepare(img *Image, dir, name string) (*Machine, error) {
	m := &Machine{Name: name, dir: dir, root: filepath.Join(dir, "root")}
	for _, d := range []string{"upper", "work", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", img.Dir, filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := mountOverlay(m.root, opts); err != nil {
		return nil, fmt.Errorf("%s: mounting its root (overlayfs): %w", name, err)
	}
	return m, nil
}

// Write puts a file into the host's root before it boots.
func (m *Machine) Write(p string, data []byte, mode os.FileMode) error {
	full := filepath.Join(m.root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	return os.WriteFile(full, data, mode)
}

// Chroot runs a command inside the host's root before it boots.
func (m *Machine) Chroot(args ...string) error {
	out, err := exec.Command("chroot", append([]string{m.root}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %s: %v: %s", m.Name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Boot starts the container. Its console goes to boot.log in the host's
// directory.
func (m *Machine) Boot() error {
	log, err := os.Create(filepath.Join(m.dir, "console.log"))
	if err != nil {
		return err
	}
	m.log = log
	// Each container gets a cgroup of its own: with --keep-unit and no
	// machine registration, containers would otherwise share the
	// caller's, and the systemd of one would remove the unit cgroups
	// (system.slice/x.service) the systemd of another had just made,
	// failing its units ("Failed to spawn executor").
	cg, err := newCgroup("hacompile-test-" + filepath.Base(filepath.Dir(filepath.Dir(m.dir))) + "-" + filepath.Base(filepath.Dir(m.dir)) + "-" + m.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Name, err)
	}
	m.cgroup = cg
	args := []string{"--quiet", "--register=no", "--keep-unit", "--boot",
		"--directory=" + m.root, "--machine=" + m.Name, "--hostname=" + m.Name,
		"--network-namespace-path=/run/netns/" + m.NS,
		// keepalived moves addresses and sends VRRP: what a VM's root has.
		"--capability=CAP_NET_ADMIN,CAP_NET_RAW,CAP_SYS_MODULE",
		"--console=pipe"}
	cmd := exec.Command("systemd-nspawn", args...)
	if cg != "" {
		cmd = exec.Command("sh", append([]string{"-c", `echo $$ > "$0/cgroup.procs" && exec systemd-nspawn "$@"`, cg}, args...)...)
	}
	// systemd 256 and later boot only on the unified cgroup hierarchy.
	// /proc/sys/net is the host's own namespace's: writable, so its
	// rendered network settings apply for real.
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1", "SYSTEMD_NSPAWN_API_VFS_WRITABLE=network")
	cmd.Stdin = nil
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: systemd-nspawn: %w", m.Name, err)
	}
	m.cmd = cmd
	m.done = make(chan struct{})
	go func() { cmd.Wait(); close(m.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if pid := containerInit(cmd.Process.Pid); pid > 0 {
			m.leader = pid
			return nil
		}
		select {
		case <-m.done:
			return fmt.Errorf("%s: systemd-nspawn exited: %s", m.Name, m.Console(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: the container's init did not start within 30s", m.Name)
}

// containerInit finds the process that is PID 1 inside the container
// systemd-nspawn (pid) started: a descendant whose innermost PID is 1.
func containerInit(pid int) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var ppid int
		var nspid []string
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid, _ = strconv.Atoi(strings.TrimSpace(v))
			}
			if v, ok := strings.CutPrefix(line, "NSpid:"); ok {
				nspid = strings.Fields(v)
			}
		}
		if ppid == pid && len(nspid) >= 2 && nspid[len(nspid)-1] == "1" {
			return p
		}
	}
	return 0
}

// Exec runs a command inside the running host (all its namespaces) and
// returns its combined output.
func (m *Machine) Exec(ctx context.Context, args ...string) (string, error) {
	if m.leader == 0 {
		return "", fmt.Errorf("%s is not running", m.Name)
	}
	full := append([]string{"-t", strconv.Itoa(m.leader), "-m", "-u", "-i", "-n", "-p", "-C", "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", full...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER="}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Sh runs a shell command inside the host.
func (m *Machine) Sh(ctx context.Context, script string) (string, error) {
	return m.Exec(ctx, "sh", "-c", script)
}

// Kill ends the host at once, as a lost machine: every process of the
// container dies with its PID 1.
func (m *Machine) Kill() {
	if m.leader > 0 {
		_ = syscall.Kill(m.leader, syscall.SIGKILL)
	}
	if m.done != nil {
		select {
		case <-m.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
			<-m.done
		}
	}
	m.leader = 0
}

// Running reports whether the container is up.
func (m *Machine) Running() bool {
	if m.done == nil {
		return false
	}
	select {
	case <-m.done:
		return false
	default:
		return true
	}
}

// Console returns the last n lines of the host's console.
func (m *Machine) Console(n int) string {
	b, _ := os.ReadFile(filepath.Join(m.dir, "console.log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Close stops the host and unmounts its root; with keep the directory
// stays for inspection.
func (m *Machine) Close(keep bool) {
	m.Kill()
	if m.log != nil {
		m.log.Close()
	}
	for i := 0; i < 20; i++ {
		if err := syscall.Unmount(m.root, 0); err == nil || err == syscall.EINVAL || err == syscall.ENOENT {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !keep {
		os.RemoveAll(m.dir)
	}
	removeCgroup(m.cgroup)
}

// newCgroup makes a cgroup (v2) named name under the caller's own; "" when this machine has no cgroup2 hierarchy to make it in.
func newCgroup(name string) (string, error) {
	mnt := ""
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) > 4 && len(g) > 0 && g[0] == "cgroup2" {
			mnt = f[4]
			break
		}
	}
	if mnt == "" {
		return "", nil
	}
	own := "/"
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(l, "0::"); ok {
				own = p
			}
		}
	}
	cg := filepath.Join(mnt, own, name)
	if err := os.Mkdir(cg, 0o755); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("a cgroup for the container: %w", err)
	}
	return cg, nil
}

// removeCgroup removes a container's cgroup and what its systemd made
// under it, deepest first, once their processes are gone.
func removeCgroup(cg string) {
	if cg == "" {
		return
	}
	for i := 0; i < 50; i++ {
		var dirs []string
		_ = filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for j := len(dirs) - 1; j >= 0; j-- {
			_ = syscall.Rmdir(dirs[j])
		}
		if _, err := os.Stat(cg); os.IsNotExist(err) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processes lists the host's processes as PIDs of this machine: every
// process in the container's PID namespace.
func (m *Machine) processes() []int {
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", m.leader))
	if err != nil {
		return nil
	}
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err == nil && ns == want {
			pids = append(pids, p)
		}
	}
	return pids
}

// Freeze stops (SIGSTOP) or continues every process of the host: a hung
// machine whose kernel still accepts connections.
func (m *Machine) Freeze(stop bool) {
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	for _, p := range m.processes() {
		_ = syscall.Kill(p, sig)
	}
}
