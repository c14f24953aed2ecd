package artifact

import "testing"

func TestOps(t *testing.T) {
	t.Parallel()
	ops := Ops("systemctl  daemon-reload && systemctl restart app &&  && sysctl --system")
	if len(ops) != 3 || ops[0].Command != "systemctl daemon-reload" || !ops[0].DaemonReload() || !ops[2].Sysctl() {
		t.Fatalf("ops: %+v", ops)
	}
	if verb, unit, ok := ops[1].Unit(); !ok || verb != "restart" || unit != "app.service" {
		t.Errorf("unit: %q %q %v", verb, unit, ok)
	}
	if _, _, ok := ops[0].Unit(); ok {
		t.Error("daemon-reload read as a unit step")
	}
	if !Ops("systemctl reboot")[0].Reboot() || Ops("systemctl restart x.socket")[0].Reboot() {
		t.Error("reboot misread")
	}
	if Ops("  ") != nil {
		t.Error("an empty action has steps")
	}
}
