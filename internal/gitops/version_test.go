package gitops

import (
	"runtime/debug"
	"testing"
)

// TestVersionOf: what --version and publish's Hacompile-Version trailer
// say for each kind of build.
func TestVersionOf(t *testing.T) {
	rev := []debug.BuildSetting{{Key: "vcs.revision", Value: "c55bbd53591b0e8a1d2c3b4a5968778695a4b3c2"}}
	for _, c := range []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"go install at a tag", debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3"},
		{"a checkout, Go 1.24 and later", debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261206032526-c55bbd53591b+dirty"}}, "v0.0.0-20261206032526-c55bbd53591b+dirty"},
		{"a checkout, VCS stamp only", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: rev}, "devel-c55bbd53591b"},
		{"a modified checkout, VCS stamp only", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: append(rev, debug.BuildSetting{Key: "vcs.modified", Value: "true"})}, "devel-c55bbd53591b-dirty"},
		{"-buildvcs=false", debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, "(devel)"},
	} {
		if got := versionOf(&c.bi); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
