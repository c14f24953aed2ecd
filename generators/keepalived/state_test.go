package keepalived

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// metadata is a stand-in metadata service on 127.0.0.1: DigitalOcean's
// floating_ip paths and EC2's IMDSv2, answering from paths.
type metadata map[string]string

func (m metadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == "PUT" && r.URL.Path == "/latest/api/token" {
		io.WriteString(w, "imds-token")
		return
	}
	if strings.HasPrefix(r.URL.Path, "/latest/") && r.Header.Get("X-Aws-Ec2-Metadata-Token") != "imds-token" {
		http.Error(w, "", 401)
		return
	}
	v, ok := m[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	io.WriteString(w, v)
}

// runState renders s's state script for its second balancer into a
// sandbox, with a state file saying state and a pid file naming a live
// process (this test's), points the metadata base at md and runs the
// script as the timer does; it returns the textfile's samples.
func runState(t *testing.T, s *schema.Stack, state string, md http.Handler, args ...string) []string {
	t.Helper()
	return runStateIn(t, t.TempDir(), s, state, md, "", args...)
}

// runStateIn is runState in root, with more settings for the settings file.
func runStateIn(t *testing.T, root string, s *schema.Stack, state string, md http.Handler, settings string, args ...string) []string {
	t.Helper()
	files, err := Gen{}.Generate(s, artifact.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	lb := s.HostsWithRole("lb")[1].Name
	var own []artifact.File
	for _, f := range files {
		if f.Host == lb {
			own = append(own, f)
		}
	}
	testtool.WriteTree(t, root, own...)
	os.MkdirAll(filepath.Join(root, "run"), 0o755)
	os.MkdirAll(filepath.Join(root, nodeexporter.TextfileDir), 0o755)
	os.WriteFile(filepath.Join(root, StateFile), []byte(state+"\n"), 0o644)
	os.WriteFile(filepath.Join(root, PIDFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if md != nil {
		url := serve(t, md)
		os.MkdirAll(filepath.Join(root, "etc/default"), 0o755)
		os.WriteFile(filepath.Join(root, EnvFile), []byte(fmt.Sprintf("DO_METADATA_BASE=%[1]s\nAWS_METADATA_BASE=%[1]s\n%s", url, settings)), 0o644)
	}
	out, err := exec.Command(filepath.Join(root, StatePath), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", StatePath, err, out)
	}
	prom, err := os.ReadFile(filepath.Join(root, nodeexporter.TextfileDir, PromFile))
	if err != nil {
		t.Fatal(err)
	}
	checkMetrics(t, prom)
	if ents, _ := os.ReadDir(filepath.Join(root, nodeexporter.TextfileDir)); len(ents) != 1 {
		t.Errorf("the textfile directory holds %d files, want %s alone (no temporary file left)", len(ents), PromFile)
	}
	return samples(prom)
}

// monitoredDO is a monitored example stack with reserved-ip failover on
// DigitalOcean; it skips the test without curl and flock, which the
// state script needs.
func monitoredDO(t *testing.T) *schema.Stack {
	t.Helper()
	testtool.Require(t, "curl", "curl")
	testtool.Require(t, "flock", "util-linux")
	for _, s := range failoverStacks(t) {
		if s.Balancer.Failover == "reserved-ip" && s.Provider == "digitalocean" && s.Monitoring.Enabled {
			return s
		}
	}
	t.Fatal("no monitored example stack with reserved-ip failover on DigitalOcean")
	return nil
}

// TestStateScriptHolder: on a reserved IP, the state script asks the
// provider's metadata service (a stand-in on 127.0.0.1, through the
// settings file the notify script reads) whether the address is this
// host's; when the service does not answer, it says the check failed
// and claims nothing.
func TestStateScriptHolder(t *testing.T) {
	t.Parallel()
	do := monitoredDO(t)
	aws := awsStack(t)
	aws.Monitoring.Enabled = true
	for _, c := range []struct {
		name  string
		s     *schema.Stack
		state string
		md    metadata
		held  int // -1: check failed
		args  []string
	}{
		{"digitalocean, assigned here", do, "MASTER", metadata{
			"/metadata/v1/floating_ip/ipv4/active": "true", "/metadata/v1/floating_ip/ipv4/ip_address": do.Balancer.VRRP.VirtualAddress}, 1, nil},
		{"digitalocean, another reserved IP here", do, "MASTER", metadata{
			"/metadata/v1/floating_ip/ipv4/active": "true", "/metadata/v1/floating_ip/ipv4/ip_address": "192.0.2.99"}, 0, nil},
		{"digitalocean, none here", do, "BACKUP", metadata{"/metadata/v1/floating_ip/ipv4/active": "false"}, 0, nil},
		{"digitalocean, metadata not answering", do, "BACKUP", metadata{}, -1, nil},
		{"digitalocean, notify FAULT", do, "BACKUP", metadata{"/metadata/v1/floating_ip/ipv4/active": "false"}, 0,
			[]string{"INSTANCE", InstanceName(do), "FAULT", "100"}},
		{"aws, assigned here", aws, "MASTER", metadata{
			"/latest/meta-data/mac": "0e:00:00:00:00:01",
			"/latest/meta-data/network/interfaces/macs/0e:00:00:00:00:01/local-ipv4s": "10.20.0.6\n10.20.0.4"}, 1, nil},
		{"aws, not here", aws, "BACKUP", metadata{
			"/latest/meta-data/mac": "0e:00:00:00:00:01",
			"/latest/meta-data/network/interfaces/macs/0e:00:00:00:00:01/local-ipv4s": "10.20.0.6\n10.20.0.40"}, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			state := c.state
			if len(c.args) == 4 {
				state = c.args[2]
			}
			got := runState(t, c.s, c.state, c.md, c.args...)
			want := wantSamples(InstanceName(c.s), c.s.Balancer.VRRP.VirtualAddress, state, c.held >= 0, c.held)
			if !slices.Equal(got, want) {
				t.Errorf("samples\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

// assigning is a DigitalOcean metadata service that has the reserved IP
// assigned here from the second time it is asked: the move notify_master
// makes beside the state script.
type assigning struct {
	mu    sync.Mutex
	asked int
	ip    string
}

func (a *assigning) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch r.URL.Path {
	case "/metadata/v1/floating_ip/ipv4/active":
		a.asked++
		io.WriteString(w, strconv.FormatBool(a.asked > 1))
	case "/metadata/v1/floating_ip/ipv4/ip_address":
		io.WriteString(w, a.ip)
	default:
		http.NotFound(w, r)
	}
}

// TestStateScriptRecheck: a balancer that becomes master of a reserved IP
// looks again shortly after (the settings file sets how long), when the
// notify_master script has moved the address, rather than saying it does
// not hold it until the timer's next run.
func TestStateScriptRecheck(t *testing.T) {
	t.Parallel()
	do := monitoredDO(t)
	vip, inst := do.Balancer.VRRP.VirtualAddress, InstanceName(do)
	md := &assigning{ip: vip}
	root := t.TempDir()
	got := runStateIn(t, root, do, "BACKUP", md, "RECHECK_AFTER=1\n", "INSTANCE", inst, "MASTER", "100")
	if want := wantSamples(inst, vip, "MASTER", true, 0); !slices.Equal(got, want) {
		t.Fatalf("first look: samples\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	want := wantSamples(inst, vip, "MASTER", true, 1)
	prom := filepath.Join(root, nodeexporter.TextfileDir, PromFile)
	ok := func() bool { b, _ := os.ReadFile(prom); return slices.Equal(samples(b), want) }
	if waitFor(5*time.Second, ok) < 0 {
		b, _ := os.ReadFile(prom)
		t.Fatalf("no second look within 5 s: textfile\n%s", b)
	}
	// The second look was the last: nothing else runs on.
	time.Sleep(1500 * time.Millisecond)
	md.mu.Lock()
	defer md.mu.Unlock()
	if md.asked != 2 {
		t.Errorf("the metadata service was asked %d times, want 2", md.asked)
	}
}

// TestStateScriptNotify: the script takes only its own instance's
// transitions, and a state file with no live keepalived behind it reads
// as no state.
func TestStateScriptNotify(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "flock", "util-linux")
	s := awsStack(t)
	s.Monitoring.Enabled = true
	md := metadata{"/latest/meta-data/mac": "m", "/latest/meta-data/network/interfaces/macs/m/local-ipv4s": "10.20.0.6"}
	inst, addr := InstanceName(s), s.Balancer.VRRP.VirtualAddress
	if got, want := runState(t, s, "BACKUP", md, "INSTANCE", "other_lb", "MASTER", "100"), wantSamples(inst, addr, "BACKUP", true, 0); !slices.Equal(got, want) {
		t.Errorf("another instance's transition: samples\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got, want := runState(t, s, "BACKUP", md, "INSTANCE", inst, "MASTER", "100"), wantSamples(inst, addr, "MASTER", true, 0); !slices.Equal(got, want) {
		t.Errorf("its own transition: samples\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestStateUnitsVerify: systemd-analyze verify accepts the state
// service and timer with no warnings, the timer finding its service.
func TestStateUnitsVerify(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "systemd-analyze", "systemd")
	for _, s := range failoverStacks(t) {
		if !Monitored(s) {
			continue
		}
		root := t.TempDir()
		os.Chmod(root, 0o755)
		files, err := Gen{}.Generate(s, artifact.Options{Root: root})
		if err != nil {
			t.Fatal(err)
		}
		lb := s.HostsWithRole("lb")[0].Name
		byPath := map[string]artifact.File{}
		for _, f := range files {
			if f.Host == lb {
				byPath[f.Path] = f
				testtool.WriteTree(t, root, f)
			}
		}
		for _, p := range []string{StateServicePath, StateTimerPath} {
			f, ok := byPath[p]
			if !ok {
				t.Fatalf("%s: no %s", s.Name, p)
			}
			cmd := exec.Command("/bin/sh", "-c", f.Validate.String())
			cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+filepath.Join(root, "etc/systemd/system")+":")
			out, err := cmd.CombinedOutput()
			if err != nil || len(strings.TrimSpace(string(out))) > 0 {
				t.Errorf("%s: %s: %v\n%s", s.Name, f.Validate.String(), err, out)
			}
		}
		return
	}
	t.Fatal("no monitored example stack with keepalived")
}
