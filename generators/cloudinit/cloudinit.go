// Package cloudinit packages each host's rendered files into a
// #cloud-config document, so a new machine boots into its role: packages
// installed, users created, every file written byte for byte, kernel
// settings applied, validators run, services started in order.
//
// The document has a fixed shape and is written directly: strings are
// quoted by artifact.YAMLQuote (fuzzed against a YAML parser), file
// contents are literal blocks where plainLines proves that exact and
// base64 otherwise; the tests decode every document and compare
// write_files with the host's files.
package cloudinit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/internal/par"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the cloud-init assembler.
type Gen struct{}

var _ artifact.Assembler = Gen{}

// Kind implements artifact.Assembler.
func (Gen) Kind() string { return "cloud-init" }

// Assemble implements artifact.Assembler.
func (Gen) Assemble(s *schema.Stack, opt artifact.Options, files []artifact.File) ([]artifact.File, error) {
	byHost := map[string][]artifact.File{}
	for _, f := range files {
		if f.Host != "" {
			byHost[f.Host] = append(byHost[f.Host], f)
		}
	}
	names := s.HostNames()
	out := make([]artifact.File, len(names))
	errs := make([]error, len(names))
	// Hosts are independent: encode them on every core.
	par.Each(len(names), func(i int) {
		doc, err := Document(s, s.Hosts[names[i]], byHost[names[i]])
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", names[i], err)
			return
		}
		out[i] = artifact.File{Path: "cloud-init/" + names[i] + ".yaml", Content: doc, Mode: 0o644}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// packageDirs are directories created by the packages a host installs;
// files under them are written after package installation (defer: true)
// so dpkg never meets a configuration file it did not expect.
var packageDirs = []string{"etc/nginx/", "etc/haproxy/", "etc/letsencrypt/"}

// Document renders the cloud-config for one host. It is written
// directly rather than through a YAML encoder: the shape is fixed, every
// string goes through artifact.YAMLQuote, and file contents are literal
// blocks when plainLines proves that exact (base64 otherwise) — on a
// large fleet the encoder was most of the cost of a build.
func Document(s *schema.Stack, h *schema.Host, files []artifact.File) ([]byte, error) {
	w := &docWriter{}
	w.b.Grow(1024 + 2*totalSize(files))
	w.b.WriteString("#cloud-config\n")
	w.b.WriteString(artifact.Header("#", s))
	w.b.WriteString("package_update: true\n")
	if pkgs := Packages(s, h, files); len(pkgs) > 0 {
		w.b.WriteString("packages:\n")
		for _, p := range pkgs {
			w.item(1, p)
		}
	}
	// Celery workers run the app's code as the app's user.
	if h.Has("app") || h.Has("worker") && s.Workers != nil {
		w.b.WriteString("users:\n  - default\n")
		w.field(1, true, "name", s.App.User)
		w.b.WriteString("    system: true\n    no_create_home: true\n")
		w.field(2, false, "homedir", s.App.WorkingDir)
		w.field(2, false, "shell", "/usr/sbin/nologin")
		w.field(2, false, "groups", s.App.Group)
	}
	if len(files) > 0 {
		w.b.WriteString("write_files:\n")
		for _, f := range files {
			w.field(1, true, "path", "/"+f.Path)
			w.field(2, false, "owner", f.Owner)
			w.field(2, false, "permissions", fmt.Sprintf("%#04o", f.Mode.Perm()))
			if plainLines(f.Content) {
				w.b.WriteString("    content: |\n")
				for _, line := range strings.SplitAfter(string(f.Content), "\n") {
					if line == "\n" {
						w.b.WriteString("\n")
					} else if line != "" {
						w.b.WriteString("      ")
						w.b.WriteString(line)
					}
				}
			} else {
				w.field(2, false, "encoding", "b64")
				w.field(2, false, "content", base64.StdEncoding.EncodeToString(f.Content))
			}
			if deferred(f) {
				w.b.WriteString("    defer: true\n")
			}
		}
	}
	w.b.WriteString("runcmd:\n")
	for _, cmd := range RunCmd(s, h, files) {
		w.item(1, cmd)
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.b.Bytes(), nil
}

// docWriter writes the document's fixed shape; the first quoting error
// (a string that is not UTF-8) is kept and returned.
type docWriter struct {
	b   bytes.Buffer
	err error
}

func (w *docWriter) quote(s string) string {
	q, err := artifact.YAMLQuote(s)
	if err != nil && w.err == nil {
		w.err = err
	}
	return q
}

// item writes a sequence item at the given depth (two spaces a level).
func (w *docWriter) item(depth int, v string) {
	w.b.WriteString(strings.Repeat("  ", depth) + "- " + w.quote(v) + "\n")
}

// field writes "key: value" at depth, opening a sequence item when first.
func (w *docWriter) field(depth int, first bool, k, v string) {
	if first {
		w.b.WriteString(strings.Repeat("  ", depth) + "- " + k + ": " + w.quote(v) + "\n")
		return
	}
	w.b.WriteString(strings.Repeat("  ", depth) + k + ": " + w.quote(v) + "\n")
}

func totalSize(files []artifact.File) int {
	n := 0
	for _, f := range files {
		n += len(f.Content)
	}
	return n
}

// Packages lists the Debian packages a host needs for its files.
func Packages(s *schema.Stack, h *schema.Host, files []artifact.File) []string {
	var pkgs []string
	for _, f := range files {
		switch f.Kind {
		case "nginx":
			pkgs = append(pkgs, "nginx")
		case "haproxy":
			pkgs = append(pkgs, "haproxy")
		case "keepalived":
			// curl: the reserved-IP notify script calls the provider's
			// API (on AWS through the AWS CLI).
			pkgs = append(pkgs, "keepalived", "curl")
			if s.Provider == "aws" && s.Balancer.Failover == "reserved-ip" {
				pkgs = append(pkgs, "awscli")
			}
		}
	}
	if h.Has("app") {
		switch {
		case s.App.Runtime == "perl":
			pkgs = append(pkgs, "starman")
		case s.App.Virtualenv != "":
			pkgs = append(pkgs, "python3", "python3-venv")
		default:
			pkgs = append(pkgs, "gunicorn")
			if s.App.WorkerClass == "gevent" {
				pkgs = append(pkgs, "python3-gevent")
			}
			if s.App.WorkerClass == "uvicorn" {
				pkgs = append(pkgs, "python3-uvicorn")
			}
		}
	}
	if h.Has("worker") && s.Workers != nil {
		// Celery runs the app's code: from the virtualenv, or Debian's.
		switch {
		case s.App.Virtualenv != "":
			pkgs = append(pkgs, "python3", "python3-venv")
		default:
			pkgs = append(pkgs, "celery")
			if s.Workers.Pool == "gevent" {
				pkgs = append(pkgs, "python3-gevent")
			}
			if s.Queue != nil && s.Queue.Engine == "redis" {
				pkgs = append(pkgs, "python3-redis")
			}
		}
	}
	for _, f := range files {
		if f.Kind == "redis" {
			pkgs = append(pkgs, "redis-server")
		}
	}
	if s.TLS.Mode == "certbot" && terminatesTLS(s, h) {
		pkgs = append(pkgs, "certbot")
	}
	slices.Sort(pkgs)
	return slices.Compact(pkgs)
}

// terminatesTLS reports whether the host serves HTTPS itself.
func terminatesTLS(s *schema.Stack, h *schema.Host) bool {
	if !s.TLS.Enabled() {
		return false
	}
	if s.TLS.Terminate == "app" {
		return h.Has("app")
	}
	return h.Has("lb") && s.Balancer.Kind != "cloud"
}

func deferred(f artifact.File) bool {
	if f.Owner != "root:root" {
		return true
	}
	for _, d := range packageDirs {
		if strings.HasPrefix(f.Path, d) {
			return true
		}
	}
	return false
}

// plainLines reports whether a literal block carries b exactly: printable
// ASCII lines (tabs allowed after the indentation), none ending with
// blanks, the first neither empty nor starting with a blank (that needs an indentation
// indicator), exactly one final newline. A literal block carries such
// text as is.
func plainLines(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] != '\n' || (len(b) > 1 && b[len(b)-2] == '\n') {
		return false
	}
	start := true
	for i, c := range b {
		switch {
		case c == '\n':
			if i == 0 || b[i-1] == ' ' || b[i-1] == '\t' {
				return false
			}
			start = true
			continue
		case c == '\t':
			if start {
				return false
			}
		case c < 0x20 || c >= 0x7f:
			return false
		case c == ' ' && i == 0:
			return false
		}
		start = c == ' ' && start
	}
	return true
}

// RunCmd is the first-boot script. It stops at the first failure,
// applies kernel settings, obtains the certificate the TLS configuration
// names (certbot's own listener, before the web server needs it),
// validates and restarts the web server and load balancer, and enables
// the app's units. The app itself starts when its code is deployed
// (hacompile push, or the next boot): until then its health check fails
// and the balancer keeps the host out of rotation.
func RunCmd(s *schema.Stack, h *schema.Host, files []artifact.File) []string {
	cmds := []string{"set -e"}
	var units []string
	hasKind := map[string]bool{}
	for _, f := range files {
		hasKind[f.Kind] = true
		if path.Dir(f.Path) == "etc/systemd/system" && (strings.HasSuffix(f.Path, ".service") || strings.HasSuffix(f.Path, ".socket")) {
			units = append(units, path.Base(f.Path))
		}
	}
	if hasKind["sysctl"] {
		cmds = append(cmds, "sysctl --system")
	}
	cmds = append(cmds, "systemctl daemon-reload")
	certbot := s.TLS.Mode == "certbot" && terminatesTLS(s, h)
	certArgs := func(extra ...string) string {
		args := []string{"certbot certonly --standalone --non-interactive --agree-tos --keep-until-expiring"}
		args = append(args, extra...)
		if s.TLS.Email != "" {
			args = append(args, "-m "+s.TLS.Email)
		} else {
			args = append(args, "--register-unsafely-without-email")
		}
		args = append(args, "--cert-name "+s.Domain)
		for _, d := range append([]string{s.Domain}, s.Aliases...) {
			args = append(args, "-d "+d)
		}
		return fmt.Sprintf("test -e %s || %s", s.TLS.Certificate, strings.Join(args, " "))
	}
	if certbot && hasKind["nginx"] {
		// nginx cannot start with a TLS server whose certificate does not
		// exist yet: obtain it with certbot's own listener on port 80.
		// The hooks are stored in the renewal configuration, so renewals
		// free port 80 the same way.
		cmds = append(cmds, certArgs("--pre-hook 'systemctl stop nginx' --post-hook 'systemctl start nginx'"))
	}
	slices.Sort(units)
	for _, u := range slices.Compact(units) {
		cmds = append(cmds, "systemctl enable "+u)
	}
	if hasKind["nginx"] {
		cmds = append(cmds, "nginx -t", "systemctl enable nginx", "systemctl restart nginx")
	}
	if hasKind["haproxy"] {
		cmds = append(cmds, "haproxy -c -f /etc/haproxy/haproxy.cfg", "systemctl enable haproxy", "systemctl restart haproxy")
		if hook := deployHook(files); certbot && hook != "" {
			// HAProxy starts without a certificate (strict-sni) and sends
			// ACME challenges to certbot on port 8888 of every balancer;
			// the deploy hook builds the PEM HAProxy reads and reloads it.
			cmds = append(cmds, certArgs(fmt.Sprintf("--http-01-address %s --http-01-port 8888", h.Address), "--deploy-hook /"+hook))
		}
	}
	if hasKind["keepalived"] {
		// After the balancer daemon: keepalived's check tracks it, and the
		// first election needs it running. keepalived -t also checks the
		// interface exists: when it fails, say so rather than stop the
		// boot script (the balancer serves on its own address meanwhile).
		cmds = append(cmds, "if keepalived -t -f /etc/keepalived/keepalived.conf; then systemctl enable keepalived; systemctl restart keepalived; "+
			"else echo 'hacompile: /etc/keepalived/keepalived.conf does not check (keepalived -t): keepalived not started; fix the stack, push, then: systemctl enable --now keepalived'; fi")
	}
	if hasKind["redis"] && s.Cache != nil {
		// Redis refuses to start without its ACL file, a secret the
		// operator provisions: start it when the file is there, else keep
		// the package's loopback-only instance stopped and say what to do.
		acl := s.Cache.ACLFile
		cmds = append(cmds, "systemctl enable redis-server",
			fmt.Sprintf("if [ -e %s ]; then systemctl restart redis-server; else systemctl stop redis-server; echo 'hacompile: provision %s, then run: systemctl restart redis-server'; fi", acl, acl))
	}
	return cmds
}

// deployHook is the certbot deploy hook among the host's files, if any.
func deployHook(files []artifact.File) string {
	for _, f := range files {
		if strings.HasPrefix(f.Path, "etc/letsencrypt/renewal-hooks/deploy/") {
			return f.Path
		}
	}
	return ""
}
