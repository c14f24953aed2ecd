package keepalived

import (
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// samples is a textfile's samples, without its comments, sorted.
func samples(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// wantSamples is what the state script should write: the instance in
// state (STOP: none of the three), and, when the holder was checked,
// whether this host holds addr.
func wantSamples(instance, addr, state string, check bool, held int) []string {
	var out []string
	for _, st := range States {
		v := 0
		if st == state {
			v = 1
		}
		out = append(out, fmt.Sprintf(`%s{vrrp_instance=%q,state=%q} %d`, StateMetric, instance, st, v))
	}
	c := 0
	if check {
		c = 1
		out = append(out, fmt.Sprintf(`%s{vrrp_instance=%q,address=%q} %d`, HeldMetric, instance, addr, held))
	}
	out = append(out, fmt.Sprintf(`%s{vrrp_instance=%q,address=%q} %d`, CheckMetric, instance, addr, c))
	slices.Sort(out)
	return out
}

// checkMetrics runs promtool's exposition-format check on a textfile,
// when promtool is installed.
func checkMetrics(t *testing.T, b []byte) {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		return
	}
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, b)
	}
}
