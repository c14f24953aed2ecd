package cloudinit

import "testing"

// FuzzPlainLines proves the shortcut sound: whatever plainLines accepts,
// the full encode-and-decode check accepts too.
func FuzzPlainLines(f *testing.F) {
	for _, s := range []string{"a\n", "server {\n    listen 80;\n}\n", "x\n\n\ty\n", "#!/bin/sh\nset -eu\n", "key: value # c\n", "---\n...\n", "- a\n  - b\n", "\"q\" 'q'\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !plainLines(b) {
			return
		}
		if !roundTrips(b) {
			t.Fatalf("plainLines accepts %q but a literal block does not carry it", b)
		}
	})
}
