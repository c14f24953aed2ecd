//go:build linux

package releasetest

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/testtool"
)

// handshakeScript starts the server (its arguments), waits for
// 127.0.0.1:443 to complete a handshake for the stack's name (HAProxy's
// strict-sni refuses one without it), runs one openssl s_client per case and stops the server
// it started, by its pid. Everything runs in the test's private network
// namespace: only its loopback is reachable.
const handshakeScript = `"$@" >/mnt/server.log 2>&1 &
pid=$!
i=0
until openssl s_client -connect 127.0.0.1:443 -servername "$SNI" </dev/null >/dev/null 2>&1; do
	i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1
done
hs() { name=$1; shift; echo "== $name"; openssl s_client -connect 127.0.0.1:443 -servername "$SNI" "$@" </dev/null 2>&1; echo "rc=$?"; }
hs dhe-only -tls1_2 -cipher DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305
hs tls12-ecdhe -tls1_2 -cipher ECDHE-RSA-AES128-GCM-SHA256
hs tls13 -tls1_3
if [ "$MLKEM" = 1 ]; then hs mlkem -tls1_3 -groups X25519MLKEM768; fi
kill $pid; wait $pid
echo "== server"; cat /mnt/server.log`

// TestHandshake starts each release's nginx and HAProxy on the rendered
// TLS settings of an example stack and connects with that release's
// OpenSSL: a client offering only DHE ciphers is refused, TLS 1.2 with
// ECDHE and TLS 1.3 succeed, and where the release's OpenSSL is 3.5 or
// newer the hybrid X25519MLKEM768 group is negotiated.
func TestHandshake(t *testing.T) {
	t.Parallel()
	servers := []struct {
		stack, host string
		cmd         []string
	}{
		{"do-python-ha", "lb1", []string{"nginx", "-p", "/mnt/", "-c", "/mnt/etc/nginx/nginx.conf", "-g", "daemon off;"}},
		// -n: this machine's hard open-files limit may be below what the
		// stack's maxconn asks for; the handshake needs a few connections.
		{"do-perl-ha", "lb1", []string{"haproxy", "-db", "-n", "1000", "-f", "/mnt/etc/haproxy/haproxy.cfg"}},
	}
	for _, rel := range releases(t) {
		t.Run(rel, func(t *testing.T) {
			t.Parallel()
			tg := targetFor(t, rel)
			r := osrelease.MustLookup(rel)
			rs, err := compile.RenderAll(testtool.LoadStacksFor(t, rel), artifact.Options{Root: mnt})
			if err != nil {
				t.Fatal(err)
			}
			for _, sv := range servers {
				t.Run(sv.stack, func(t *testing.T) {
					var files []artifact.File
					var rd *compile.Rendered
					for _, x := range rs {
						if x.Stack.Name == sv.stack {
							rd, files = x, x.Files
						}
					}
					if rd == nil {
						t.Fatalf("no example stack %s", sv.stack)
					}
					dir, _, _ := hostSandbox(t, tg, rd.Stack, sv.host, files)
					mlkem := "0"
					if r.HybridPQGroups() {
						mlkem = "1"
					}
					out, err := tg.run(t, dir, []string{"SNI=" + rd.Stack.Domain, "MLKEM=" + mlkem},
						append([]string{"sh", "-c", handshakeScript, "sh"}, sv.cmd...)...)
					if err != nil {
						t.Fatalf("%v\n%s", err, out)
					}
					res := sections(out)
					check := func(name string, ok bool, want string) {
						t.Helper()
						got, found := res[name]
						if !found {
							t.Errorf("%s: no %s case ran:\n%s", rel, name, out)
							return
						}
						if strings.Contains(got, "rc=0") != ok || want != "" && !regexp.MustCompile(want).MatchString(got) {
							t.Errorf("%s %s: %s: want success=%v matching %q, got:\n%s\nserver:\n%s", rel, sv.stack, name, ok, want, got, res["server"])
						}
					}
					check("dhe-only", false, "")
					check("tls12-ecdhe", true, `Cipher is ECDHE-RSA-AES128-GCM-SHA256`)
					check("tls13", true, `TLSv1\.3`)
					if r.HybridPQGroups() {
						check("mlkem", true, `(Negotiated TLS1\.3 group|Server Temp Key): X25519MLKEM768`)
						t.Logf("%s %s: %s", rel, sv.stack, regexp.MustCompile(`(Negotiated TLS1\.3 group|Server Temp Key): .*`).FindString(res["mlkem"]))
					}
				})
			}
		})
	}
}

// sections splits the script's output at its "== name" lines.
func sections(out string) map[string]string {
	m := map[string]string{}
	name := ""
	for _, l := range strings.Split(out, "\n") {
		if n, ok := strings.CutPrefix(l, "== "); ok {
			name = n
			continue
		}
		if name != "" {
			m[name] += l + "\n"
		}
	}
	return m
}
