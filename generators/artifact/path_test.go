package artifact

import "testing"

// TestCheckPath: a rendered path (a custom generator's included) is a
// clean relative path of printable characters: no escape sequence or
// other control character, which would reach terminals and listings.
func TestCheckPath(t *testing.T) {
	for _, ok := range []string{"etc/nginx/nginx.conf", "etc/app/a b.conf", "srv/café/x"} {
		if err := CheckPath(ok); err != nil {
			t.Errorf("CheckPath(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "/etc/x", "etc//x", "../x", "etc/a\\b", "etc/x\n", "etc/x\r", "etc/\x00", "etc/\x1b]0;pwned\x07", "etc/\u009b2J", "etc/\u202ex", "etc/\x7f"} {
		if err := CheckPath(bad); err == nil {
			t.Errorf("CheckPath(%q) accepted it", bad)
		}
	}
}
