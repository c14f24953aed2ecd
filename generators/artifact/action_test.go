package artifact

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

func TestParseAction(t *testing.T) {
	t.Parallel()
	ops := ParseAction("systemctl  daemon-reload && systemctl restart app &&  && sysctl --system").Ops()
	if len(ops) != 3 || ops[0].Command != "systemctl daemon-reload" || !ops[0].DaemonReload() || !ops[2].Sysctl() {
		t.Fatalf("ops: %+v", ops)
	}
	if verb, unit, ok := ops[1].Unit(); !ok || verb != "restart" || unit != "app.service" {
		t.Errorf("unit: %q %q %v", verb, unit, ok)
	}
	if _, _, ok := ops[0].Unit(); ok {
		t.Error("daemon-reload read as a unit step")
	}
	if !ParseAction("systemctl reboot").Ops()[0].Reboot() || ParseAction("systemctl restart x.socket").Ops()[0].Reboot() {
		t.Error("reboot misread")
	}
	if !ParseAction("  ").IsZero() {
		t.Error("an empty action has steps")
	}
}

// TestActionBuilt: actions built from typed steps read back the same
// from their shell text, which is what the manifest keeps, and their
// steps are typed without parsing.
func TestActionBuilt(t *testing.T) {
	t.Parallel()
	a := DaemonReload().Then(Enable("app.service"), Restart("app.service"))
	if got, want := a.String(), "systemctl daemon-reload && systemctl enable app.service && systemctl restart app.service"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	ops := a.Ops()
	if len(ops) != 3 || !ops[0].DaemonReload() {
		t.Fatalf("ops: %+v", ops)
	}
	if verb, unit, ok := ops[2].Unit(); !ok || verb != "restart" || unit != "app.service" {
		t.Errorf("restart step: %q %q %v", verb, unit, ok)
	}
	if !SysctlSystem().Ops()[0].Sysctl() || !Run().IsZero() {
		t.Error("sysctl or empty run misbuilt")
	}
	b, err := json.Marshal(struct {
		A Action `json:"a,omitzero"`
		Z Action `json:"z,omitzero"`
	}{A: a})
	if err != nil || string(b) != `{"a":"systemctl daemon-reload \u0026\u0026 systemctl enable app.service \u0026\u0026 systemctl restart app.service"}` {
		t.Fatalf("json: %s %v", b, err)
	}
	var back struct{ A Action }
	if err := json.Unmarshal(b, &back); err != nil || !back.A.Equal(a) || len(back.A.Ops()) != 3 {
		t.Errorf("round trip: %v %v", back.A, err)
	}
	// Then does not share steps with the action it extends.
	base := DaemonReload()
	x, y := base.Then(Restart("x")), base.Then(Restart("y"))
	if x.String() == y.String() {
		t.Errorf("Then aliased: %s / %s", x, y)
	}
}

// TestRunQuotesWords: a word of a built step reaches the shell as one
// argument, whatever it holds (a generator that took it from a stack
// whose grammar let a metacharacter through runs nothing more), while
// plain words read as written; shell text read back is not quoted again.
func TestRunQuotesWords(t *testing.T) {
	t.Parallel()
	hostile := []string{"$(touch /tmp/x)", "a;b", "it's", "a b", "`id`", "x|sh", ""}
	a := Run(append([]string{"printf", "<%s>"}, hostile...)...)
	out, err := exec.Command("sh", "-c", a.String()).Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v", a, err)
	}
	var want strings.Builder
	for _, h := range hostile {
		want.WriteString("<" + h + ">")
	}
	if string(out) != want.String() {
		t.Errorf("sh -c %q printed %q, want %q", a, out, want.String())
	}
	if got := Run("systemd-analyze", "verify", "--man=no", "/etc/systemd/system/app@1.service").String(); got != "systemd-analyze verify --man=no /etc/systemd/system/app@1.service" {
		t.Errorf("plain words quoted: %q", got)
	}
	if got := ParseAction("echo 'a b' && true").String(); got != "echo 'a b' && true" {
		t.Errorf("shell text quoted again: %q", got)
	}
}
