package artifact

import (
	"regexp"
	"strconv"
	"testing"
)

// splitNumber numbers names as the regular expression CompactNames
// used first did.
func TestSplitNumberAsRegexp(t *testing.T) {
	numbered := regexp.MustCompile(`^(.*?)(\d+)$`)
	names := []string{"", "1", "app", "app1", "app10", "007", "a\n1", "b1\n2", "app١", "é2", "\xff3", "a-b-12",
		"x99999999999999999999999", "x9223372036854775807", "app0", "9x", "1a2"}
	for _, s := range names {
		var want [3]string
		wantOK := false
		if m := numbered.FindStringSubmatch(s); m != nil {
			if n, err := strconv.Atoi(m[2]); err == nil {
				want, wantOK = [3]string{m[1], m[2], strconv.Itoa(n)}, true
			}
		}
		prefix, digits, n, ok := splitNumber(s)
		if got := [3]string{prefix, digits, strconv.Itoa(n)}; ok != wantOK || ok && got != want {
			t.Errorf("splitNumber(%q) = %q, %v; the regexp gives %q, %v", s, got, ok, want, wantOK)
		}
	}
}
