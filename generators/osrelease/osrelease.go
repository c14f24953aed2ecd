// Package osrelease is the one table of what each operating system
// release a stack can target (the stack's os field) ships: the versions
// of nginx, HAProxy, OpenSSL, systemd, cloud-init, Python and gunicorn,
// package names and binary paths, and the features and syntax that
// follow from them. Generators ask it instead of hard-coding a release,
// so switching a stack from debian-12 to debian-13 changes exactly the
// lines whose release facts differ.
//
// The versions are those of the release's own archive: bookworm and
// trixie with their point-release updates (trixie's checked against a
// debootstrapped root, internal/debroot), noble as released (not yet
// checked against a root; noble-updates moves cloud-init). Decisions
// are drawn from major.minor(.patch) thresholds only.
package osrelease

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// Default is the release a stack without os targets: the current
// Debian stable (trixie, stable since August 2025).
const Default = "debian-13"

// Version is a dotted version number, compared numerically.
type Version []int

// V parses "1.25.1".
func V(s string) Version {
	var v Version
	for _, p := range strings.Split(s, ".") {
		n, err := strconv.Atoi(p)
		if err != nil {
			panic("osrelease: bad version " + s) // table data only
		}
		v = append(v, n)
	}
	return v
}

// AtLeast reports whether v >= w (missing parts count as 0).
func (v Version) AtLeast(w Version) bool {
	for i := 0; i < max(len(v), len(w)); i++ {
		a, b := at(v, i), at(w, i)
		if a != b {
			return a > b
		}
	}
	return true
}

func at(v Version, i int) int {
	if i < len(v) {
		return v[i]
	}
	return 0
}

func (v Version) String() string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ".")
}

// Release is what one target release ships.
type Release struct {
	// Name is the stack's os value ("debian-13").
	Name string
	// Pretty is how the runbook and comments name it ("Debian 13 (trixie)").
	Pretty   string
	Codename string
	// DigitalOceanImage is the release's Droplet image slug.
	DigitalOceanImage string

	Nginx     Version
	HAProxy   Version
	OpenSSL   Version
	Systemd   Version
	CloudInit Version
	Python    Version
	Gunicorn  Version
	// Alertmanager is prometheus-alertmanager's version; nil where it is
	// not recorded (not checked against the release's archive).
	Alertmanager Version

	// Packages maps a component to its package name on the release.
	Packages map[string]string
	// Binaries maps a command to its absolute path on the release.
	Binaries map[string]string
}

// The release table. Facts added here reach every generator.
var releases = map[string]Release{
	"debian-12": {
		Name: "debian-12", Pretty: "Debian 12 (bookworm)", Codename: "bookworm", DigitalOceanImage: "debian-12-x64",
		Nginx: V("1.22.1"), HAProxy: V("2.6.12"), OpenSSL: V("3.0.19"), Systemd: V("252"),
		CloudInit: V("22.4.2"), Python: V("3.11"), Gunicorn: V("20.1.0"), Alertmanager: V("0.25.0"),
		Packages: debianPackages, Binaries: usrBinaries,
	},
	"debian-13": {
		Name: "debian-13", Pretty: "Debian 13 (trixie)", Codename: "trixie", DigitalOceanImage: "debian-13-x64",
		Nginx: V("1.26.3"), HAProxy: V("3.0.11"), OpenSSL: V("3.5.9"), Systemd: V("257"),
		CloudInit: V("25.1.4"), Python: V("3.13"), Gunicorn: V("23.0.0"), Alertmanager: V("0.28.1"),
		Packages: debianPackages, Binaries: usrBinaries,
	},
	"ubuntu-24.04": {
		Name: "ubuntu-24.04", Pretty: "Ubuntu 24.04 LTS (noble)", Codename: "noble", DigitalOceanImage: "ubuntu-24-04-x64",
		Nginx: V("1.24.0"), HAProxy: V("2.8.5"), OpenSSL: V("3.0.13"), Systemd: V("255"),
		CloudInit: V("24.1.3"), Python: V("3.12"), Gunicorn: V("20.1.0"),
		Packages: debianPackages, Binaries: usrBinaries,
	},
}

var debianPackages = map[string]string{
	"nginx": "nginx", "haproxy": "haproxy", "gunicorn": "gunicorn", "starman": "starman",
	"redis": "redis-server", "openssl": "openssl", "certbot": "certbot",
}

var usrBinaries = map[string]string{
	"nginx": "/usr/sbin/nginx", "haproxy": "/usr/sbin/haproxy", "systemd": "/usr/lib/systemd/systemd",
	"gunicorn": "/usr/bin/gunicorn", "starman": "/usr/bin/starman", "certbot": "/usr/bin/certbot",
}

// Lookup returns the release named by a stack's os value.
func Lookup(name string) (Release, error) {
	if name == "" {
		name = Default
	}
	r, ok := releases[name]
	if !ok {
		return Release{}, fmt.Errorf("%q: no such release (want one of %s)", name, strings.Join(Names(), ", "))
	}
	return r, nil
}

// MustLookup is Lookup for names the schema has already checked.
func MustLookup(name string) Release {
	r, err := Lookup(name)
	if err != nil {
		panic(err)
	}
	return r
}

// Names lists the releases, sorted.
func Names() []string { return slices.Sorted(maps.Keys(releases)) }

// NginxHTTP2Directive: nginx 1.25.1 made HTTP/2 a server-level "http2
// on;" and deprecated the http2 parameter of listen (which warns).
func (r Release) NginxHTTP2Directive() bool { return r.Nginx.AtLeast(V("1.25.1")) }

// HybridPQGroups: OpenSSL 3.5 is the first with the X25519MLKEM768
// hybrid key exchange; Mozilla's generator offers it from there on.
func (r Release) HybridPQGroups() bool { return r.OpenSSL.AtLeast(V("3.5")) }

// AlertmanagerURLFile: a webhook's url_file, which Debian 13's
// Alertmanager 0.28.1 reads and Debian 12's 0.25.0 refuses (amtool
// check-config: "field url_file not found"), each checked with the
// release's own amtool. A release whose version is not recorded is
// taken not to.
func (r Release) AlertmanagerURLFile() bool {
	return r.Alertmanager != nil && r.Alertmanager.AtLeast(V("0.28"))
}

// NginxVersionMM is "1.26": what comments name.
func (r Release) NginxVersionMM() string { return r.Nginx[:2].String() }

// HAProxyVersionMM is "3.0".
func (r Release) HAProxyVersionMM() string { return r.HAProxy[:2].String() }

// OpenSSLVersionMM is "3.5".
func (r Release) OpenSSLVersionMM() string { return r.OpenSSL[:2].String() }

// Package returns the package name of a component.
func (r Release) Package(component string) string { return r.Packages[component] }

// Binary returns the absolute path of a command.
func (r Release) Binary(cmd string) string { return r.Binaries[cmd] }
