package nginx

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// TestLiveFirstCertificate runs the first-certificate nginx
// (ACMEConfPath) of two app hosts that terminate TLS behind a
// DigitalOcean balancer sending the PROXY protocol, each on its own
// loopback address, with no certificate anywhere: as at first boot,
// before certbot has one. A challenge that reaches either host with
// the balancer's PROXY header is answered from that host's webroot or
// relayed to its sibling's, once; anything else is 404, not a redirect
// to an HTTPS server that is not running. nginx.conf itself does not
// start without the certificate, which is why this configuration
// exists; and a request without the PROXY header, as certbot's
// standalone server would need it, is refused on the balancer's port.
func TestLiveFirstCertificate(t *testing.T) {
	t.Parallel()
	nginx := testtool.Require(t, "nginx", "nginx")
	net24 := loopbackNet()
	a1, a2 := net24+"3", net24+"4"
	port := freePort(t, a1)
	s := loadSource(t, "live-acme", fmt.Sprintf(`
name: "live-acme"
provider: "digitalocean"
region: "fra1"
domain: "secure.example.com"
tls: {mode: "certbot", profile: "intermediate"}
hosts: {
	app1: {address: %q, roles: ["app"], size: "c-2"}
	app2: {address: %q, roles: ["app"], size: "c-2"}
}
balancer: {kind: "cloud", trusted_proxies: ["127.0.0.0/8"], digitalocean: proxy_protocol: true}
app: {name: "live", runtime: "perl", psgi: "/srv/live/app.psgi", working_dir: "/srv/live", http_port: %s}
`, a1, a2, port))
	var roots []string
	for _, h := range []string{"app1", "app2"} {
		root := t.TempDir()
		openTempDirs(t, root)
		files, err := Gen{}.Generate(s, optionsFor(root))
		if err != nil {
			t.Fatal(err)
		}
		writeSandbox(t, s, root, hostFiles(t, files)[h], caChain)
		// First boot: no certificate yet.
		if err := os.RemoveAll(root + "/etc/letsencrypt"); err != nil {
			t.Fatal(err)
		}
		roots = append(roots, root)
	}
	// nginx.conf needs the certificate that does not exist yet.
	out, err := runOnce(nginx, "-p", roots[0]+"/", "-t", "-c", roots[0]+"/"+ConfPath)
	mustf(t, err != nil && strings.Contains(out, "fullchain.pem"), "nginx.conf without a certificate: %v\n%s", err, out)

	acme := "/var/www/letsencrypt/.well-known/acme-challenge/"
	writeFile(t, roots[0]+acme+"tok-one", "tok-one.thumbprint")
	writeFile(t, roots[1]+acme+"tok-two", "tok-two.thumbprint")
	stop1 := runNginx(t, nginx, roots[0], roots[0]+"/"+ACMEConfPath, a1+":"+port, fmt.Sprintf("%s:%d", a1, ACMERelayPort))
	defer stop1()
	stop2 := runNginx(t, nginx, roots[1], roots[1]+"/"+ACMEConfPath, a2+":"+port, fmt.Sprintf("%s:%d", a2, ACMERelayPort))
	defer stop2()

	for _, to := range []string{a1, a2} {
		for tok, want := range map[string]string{"tok-one": "tok-one.thumbprint", "tok-two": "tok-two.thumbprint"} {
			code, body := proxiedGet(t, to+":"+port, "/.well-known/acme-challenge/"+tok, true)
			mustf(t, code == 200 && body == want, "challenge %s via %s: %d %q", tok, to, code, body)
		}
	}
	start := time.Now()
	code, _ := proxiedGet(t, a1+":"+port, "/.well-known/acme-challenge/nowhere", true)
	mustf(t, code == 404 && time.Since(start) < 5*time.Second, "unknown token: %d after %v, want a prompt 404", code, time.Since(start))
	code, _ = proxiedGet(t, a1+":"+port, "/cart", true)
	mustf(t, code == 404, "/cart: %d, want 404 (no HTTPS server to redirect to yet)", code)
	// Without the balancer's header the port refuses the request.
	code, _ = proxiedGet(t, a1+":"+port, "/.well-known/acme-challenge/tok-one", false)
	mustf(t, code != 200, "a request without the PROXY header was answered (%d)", code)
}

// proxiedGet sends GET path to addr over a new connection, with a PROXY
// protocol v1 header first when proxy is set (as the balancer sends
// it), and returns the status code and body (0 when there was no
// answer).
func proxiedGet(t *testing.T, addr, path string, proxy bool) (int, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	host, port, _ := net.SplitHostPort(addr)
	if proxy {
		fmt.Fprintf(c, "PROXY TCP4 203.0.113.7 %s 40000 %s\r\n", host, port)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: secure.example.com\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// runOnce runs a command to its end and returns its combined output.
func runOnce(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
