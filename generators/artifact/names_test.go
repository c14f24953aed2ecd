package artifact_test

import (
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
)

func TestCompactNames(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"app1"}, "app1"},
		{[]string{"app2", "app1"}, "app1, app2"},
		{[]string{"app10", "app9", "app1", "app3", "app2", "app8"}, "app1…app3, app8…app10"},
		{[]string{"app09", "app10", "app11", "app9"}, "app09, app9…app11"},
		{[]string{"db", "app1", "app2", "app3", "app5", "cache1"}, "app1…app3, app5, cache1, db"},
		{[]string{"app-a", "app-b"}, "app-a, app-b"},
	} {
		if got := artifact.CompactNames(tc.in); got != tc.want {
			t.Errorf("CompactNames(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
