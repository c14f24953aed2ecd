// Package debroot builds and caches a Debian root file system with
// debootstrap, so tests can run a target release's own tools (nginx -t,
// haproxy -c, systemd-analyze, cloud-init, openssl) under chroot when
// the machine runs another release. A root is built once per release
// and package list and kept in the user's cache directory
// (~/.cache/hacompile/roots/<release>-<key>/root); the build goes to a
// temporary directory renamed into place, under a file lock, so
// concurrent test packages wait for one build instead of racing.
package debroot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// version changes whenever what Ensure puts into a root changes, so a
// root cached by an older hacompile is not reused.
const version = "1"

// Suites maps a stack's os value to debootstrap's suite and mirror.
var Suites = map[string][2]string{
	"debian-12": {"bookworm", "http://deb.debian.org/debian"},
	"debian-13": {"trixie", "http://deb.debian.org/debian"},
}

// ToolPackages are the packages whose tools check rendered files, plus
// gunicorn and starman: systemd-analyze verify requires the programs the
// app units start to exist, pgbouncer the unit its drop-in extends and
// rabbitmq-server the unit the broker's setup unit requires;
// and prometheus-postgres-exporter, whose release (0.17 in Debian 13) the
// monitoring files are written for; keepalived, prometheus (promtool),
// prometheus-alertmanager (amtool) and mtail check the balancers' VRRP,
// the monitoring host's files and the app hosts' log programs.
var ToolPackages = []string{"nginx", "haproxy", "systemd", "cloud-init", "openssl", "ca-certificates", "python3", "gunicorn", "starman",
	"pgbouncer", "prometheus-postgres-exporter", "rabbitmq-server", "keepalived", "prometheus", "prometheus-alertmanager", "mtail"}

// VerifierPackages are a root of their own whose skopeo verifies the
// cosign-compatible signatures of publish --oci: Debian 12's skopeo
// (1.9.3) is built with sigstore signatures disabled, Debian 13's (1.18)
// has them.
var VerifierPackages = []string{"skopeo"}

// CacheDir is where roots are kept: $HACOMPILE_ROOTS, or
// <user cache dir>/hacompile/roots.
func CacheDir() (string, error) {
	if d := os.Getenv("HACOMPILE_ROOTS"); d != "" {
		return d, nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for Debian roots (set HACOMPILE_ROOTS): %w", err)
	}
	return filepath.Join(d, "hacompile", "roots"), nil
}

// Key names a root by everything it is built from: the release, its
// suite and mirror, and the packages.
func Key(release, suite, mirror string, pkgs []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%s\n", version, release, suite, mirror)
	for _, p := range pkgs {
		fmt.Fprintln(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
