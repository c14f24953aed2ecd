package systemd

// Helpers that put the real systemd tools in front of rendered units.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// systemdBinary is the manager itself. Its --test mode loads units the
// way PID 1 does and prints what it understood; it needs no running
// manager, which this machine (a container) may not have.
const systemdBinary = "/lib/systemd/systemd"

// readableTempDir is a temporary directory every user can read: systemd
// refuses --test as root, so the dump runs as nobody.
func readableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hacompile-systemd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// unitDump is systemd's description of one loaded unit.
type unitDump struct {
	name  string
	lines []string // the unit's block, tabs trimmed
	text  string   // the whole dump, for failure messages
}

// dump loads unit from unitDir (searched before the system's unit
// directories, so drop-ins there apply to installed units) and returns
// systemd's dump of it. Load warnings on stderr fail the test.
func dump(t *testing.T, unitDir, unit string) unitDump {
	t.Helper()
	testtool.Require(t, systemdBinary, "systemd")
	args := []string{"--test", "--system", "--unit=" + unit, "--log-target=console", "--log-level=warning", "--no-pager"}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		setpriv := testtool.Require(t, "setpriv", "util-linux")
		cmd = exec.Command(setpriv, append([]string{"--reuid=nobody", "--regid=nogroup", "--clear-groups", systemdBinary}, args...)...)
	} else {
		cmd = exec.Command(systemdBinary, args...)
	}
	// A clean environment: no generators (they would inspect this
	// machine, not the units) and no home directory to read user.conf
	// from. The trailing ":" appends the system's unit directories.
	noGenerators := readableTempDir(t)
	cmd.Env = []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/nonexistent",
		"SYSTEMD_UNIT_PATH=" + unitDir + ":",
		"SYSTEMD_GENERATOR_PATH=" + noGenerators,
		"SYSTEMD_ENVIRONMENT_GENERATOR_PATH=" + noGenerators,
	}
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("systemd --test --unit=%s: %v\n%s%s", unit, err, stderr.Bytes(), stdout.Bytes())
	}
	// Every warning counts: loading a unit must be silent.
	if stderr.Len() > 0 {
		t.Errorf("systemd --test --unit=%s warns:\n%s", unit, stderr.Bytes())
	}
	d := unitDump{name: unit, text: stdout.String()}
	in := false
	for _, l := range strings.Split(stdout.String(), "\n") {
		switch {
		case l == "\t-> Unit "+unit+":":
			in = true
			continue
		case strings.HasPrefix(l, "\t-> Unit ") || strings.HasPrefix(l, "\t-> Job "):
			in = false
		}
		if in {
			d.lines = append(d.lines, strings.TrimLeft(l, "\t"))
		}
	}
	if len(d.lines) == 0 {
		t.Fatalf("systemd --test did not dump %s:\n%s", unit, stdout.Bytes())
	}
	return d
}

// values returns every "key: value" of the unit, in order.
func (d unitDump) values(key string) []string {
	var out []string
	for _, l := range d.lines {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			out = append(out, strings.TrimPrefix(v, " "))
		}
	}
	return out
}

// value returns the single value of key.
func (d unitDump) value(t *testing.T, key string) string {
	t.Helper()
	vs := d.values(key)
	if len(vs) != 1 {
		t.Fatalf("systemd's dump of %s has %d %q lines, want 1", d.name, len(vs), key)
	}
	return vs[0]
}

// commands returns the argv of each command of an Exec kind
// ("ExecStart"), as systemd stored it (before $VAR expansion).
func (d unitDump) commands(t *testing.T, kind string) [][]string {
	t.Helper()
	var out [][]string
	in := false
	for _, l := range d.lines {
		if l == "-> "+kind+":" {
			in = true
			continue
		}
		if line, ok := strings.CutPrefix(l, "Command Line: "); ok {
			if in {
				argv, err := splitDumpedCommand(line)
				if err != nil {
					t.Fatalf("%s: %v", d.name, err)
				}
				out = append(out, argv)
			}
			continue
		}
		in = false
	}
	return out
}

// splitDumpedCommand reverses systemd's quote_command_line(): words are
// separated by spaces; a word needing quotes is in double quotes, with
// \a \b \f \n \r \t \v, \ooo (octal) and \c for a literal c.
func splitDumpedCommand(s string) ([]string, error) {
	var argv []string
	for i := 0; i < len(s); {
		if s[i] != '"' {
			j := strings.IndexByte(s[i:], ' ')
			if j < 0 {
				j = len(s) - i
			}
			argv = append(argv, s[i:i+j])
			i += j + 1
			continue
		}
		var w []byte
		i++
		for {
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			c := s[i]
			if c == '"' {
				i++
				break
			}
			if c != '\\' {
				w = append(w, c)
				i++
				continue
			}
			if i+1 >= len(s) {
				return nil, fmt.Errorf("dangling backslash in %q", s)
			}
			n := s[i+1]
			if n >= '0' && n <= '7' {
				if i+4 > len(s) {
					return nil, fmt.Errorf("short octal escape in %q", s)
				}
				v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
				if err != nil {
					return nil, fmt.Errorf("octal escape in %q: %v", s, err)
				}
				w = append(w, byte(v))
				i += 4
				continue
			}
			if r, ok := map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v'}[n]; ok {
				w = append(w, r)
			} else {
				w = append(w, n)
			}
			i += 2
		}
		argv = append(argv, string(w))
		if i < len(s) {
			if s[i] != ' ' {
				return nil, fmt.Errorf("no space after a quoted word in %q", s)
			}
			i++
		}
	}
	return argv, nil
}

// verify runs systemd-analyze verify as given (a command line from a
// File's Validate, or arguments) and requires silence: verify exits 0 on
// unknown keys and bad values and only says so on stderr.
func verify(t *testing.T, env []string, command string) {
	t.Helper()
	testtool.Require(t, "systemd-analyze", "systemd")
	cmd := exec.Command("sh", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil || stderr.Len() > 0 || stdout.Len() > 0 {
		t.Errorf("%s: %v\nstderr:\n%sstdout:\n%s", command, err, stderr.Bytes(), stdout.Bytes())
	}
}

// securityCheck is one line of systemd-analyze security.
type securityCheck struct {
	Set  bool   `json:"set"`
	Name string `json:"name"`
}

// security has systemd-analyze judge a unit file's sandbox: its overall
// exposure must stay at or below threshold (0-100, "OK" is below 20)
// and every check in want must pass.
func security(t *testing.T, path string, threshold int, want []string) {
	t.Helper()
	sa := testtool.Require(t, "systemd-analyze", "systemd")
	cmd := exec.Command(sa, "security", "--offline=true", "--json=short", "--threshold="+strconv.Itoa(threshold), path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		human, _ := exec.Command(sa, "security", "--offline=true", "--no-pager", path).CombinedOutput()
		t.Fatalf("systemd-analyze security %s (threshold %d): %v\n%s%s", path, threshold, err, stderr.Bytes(), human)
	}
	var checks []securityCheck
	if err := json.Unmarshal(out, &checks); err != nil {
		t.Fatalf("systemd-analyze security --json: %v\n%s", err, out)
	}
	set := map[string]bool{}
	for _, c := range checks {
		set[c.Name] = c.Set
	}
	for _, name := range want {
		v, ok := set[name]
		if !ok {
			t.Errorf("systemd-analyze security has no check %q", name)
		} else if !v {
			t.Errorf("%s: systemd-analyze security finds %s not in place", filepath.Base(path), name)
		}
	}
}
