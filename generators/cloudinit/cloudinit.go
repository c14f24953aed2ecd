// Package cloudinit packages each host's rendered files into a
// #cloud-config document, so a new machine boots into its role: packages
// installed, users created, every file written byte for byte, kernel
// settings applied, validators run, services started in order.
// What a host needs beyond its files — packages, first-boot commands —
// comes from the generators that rendered them (artifact.Packager and
// artifact.Booter), so this package knows no artifact kind.
//
// The document has a fixed shape and is written directly: strings are
// quoted by artifact.YAMLQuote (fuzzed against a YAML parser), file
// contents are literal blocks where plainLines proves that exact and
// base64 otherwise; the tests decode every document and compare
// write_files with the host's files.
package cloudinit

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"

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
func (Gen) Assemble(s *schema.Stack, opt artifact.Options, files []artifact.File, gens []artifact.Generator) ([]artifact.File, error) {
	// files come sorted by host: each host's are one run of them, taken
	// as it is (capped, so nothing appends over the next host's); a
	// host met again is appended to, in order, as unsorted files were.
	byHost := map[string][]artifact.File{}
	for i := 0; i < len(files); {
		j := i + 1
		for j < len(files) && files[j].Host == files[i].Host {
			j++
		}
		if h := files[i].Host; h != "" && byHost[h] == nil {
			byHost[h] = files[i:j:j]
		} else if h != "" {
			byHost[h] = append(byHost[h], files[i:j]...)
		}
		i = j
	}
	names := s.HostNames()
	var shared map[contentKey][]byte
	if !opt.CheckOnly {
		shared = sharedContents(files)
	}
	// A document whose inputs are as the last build's is not made again
	// (artifact.Options.Reuse).
	var keys *docKeys
	if opt.Reuse != nil && opt.Hand != nil && !opt.CheckOnly {
		var err error
		if keys, err = newDocKeys(s, files, gens, shared); err != nil {
			return nil, err
		}
	}
	out := make([]artifact.File, len(names))
	errs := make([]error, len(names))
	// Hosts are independent: encode them on every core.
	par.Each(len(names), func(i int) {
		h, files := s.Hosts[names[i]], byHost[names[i]]
		path := "cloud-init/" + names[i] + ".yaml"
		var err error
		if keys != nil {
			var key [sha256.Size]byte
			var ok bool
			if key, err = keys.of(h, files); err == nil {
				out[i], ok, err = opt.Reuse(s, artifact.File{Path: path, Mode: 0o644}, key)
			}
			if ok || err != nil {
				if err != nil {
					errs[i] = fmt.Errorf("%s: %w", names[i], err)
				}
				return
			}
		}
		switch {
		case opt.CheckOnly:
			err = Check(s, h, files, gens)
			out[i] = artifact.File{Path: path, Mode: 0o644}
		case opt.Hand != nil:
			// Written now, not held until the fleet's are all made:
			// handed from the writer's buffer, which Hand does not keep.
			w := docWriters.Get().(*docWriter)
			if err = w.documentOf(s, h, files, gens, shared); err == nil {
				out[i], errs[i] = opt.Hand(s, artifact.File{Path: path, Content: w.b, Mode: 0o644})
				out[i].Content = bytes.Clone(out[i].Content) // nil once handed
			}
			docWriters.Put(w)
		default:
			var doc []byte
			if doc, err = document(s, h, files, gens, shared); err == nil {
				out[i] = artifact.File{Path: path, Content: doc, Mode: 0o644}
			}
		}
		if err != nil {
			errs[i] = fmt.Errorf("%s: %w", names[i], err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// certbotDirs are the directories of certbot, the package cloud-init
// itself adds for TLS (Packages); the generators' packages say theirs
// (artifact.Packager). Files under them are written after package
// installation (defer: true) so dpkg never meets a configuration file
// it did not expect.
var certbotDirs = []string{"etc/letsencrypt/"}

// appUsers are the apps whose users host h needs: the apps it runs, and
// on a worker host the app whose code the Celery workers run.
func appUsers(s *schema.Stack, h *schema.Host) []*schema.App {
	if !s.MultiApp() {
		if h.Has("app") || h.Has("worker") && s.Workers != nil {
			return []*schema.App{&s.App}
		}
		return nil
	}
	as := s.AppsOn(h)
	if h.Has("worker") && s.Workers != nil {
		if a := s.AppByName(s.Workers.Runs); a != nil && !slices.Contains(as, a) {
			as = append(as, a)
		}
	}
	return as
}

// Document renders the cloud-config for one host. It is written
// directly rather than through a YAML encoder: the shape is fixed, every
// string goes through artifact.YAMLQuote, and file contents are literal
// blocks when plainLines proves that exact (base64 otherwise) — on a
// large fleet the encoder was most of the cost of a build.
func Document(s *schema.Stack, h *schema.Host, files []artifact.File, gens []artifact.Generator) ([]byte, error) {
	return document(s, h, files, gens, nil)
}

// document is Document with the content fields of shared contents
// (sharedContents) written as they are.
func document(s *schema.Stack, h *schema.Host, files []artifact.File, gens []artifact.Generator, shared map[contentKey][]byte) ([]byte, error) {
	// The document is written into a buffer kept for the next host (a
	// fleet's hosts reuse a few of them) and copied out at its length.
	w := docWriters.Get().(*docWriter)
	defer docWriters.Put(w)
	if err := w.documentOf(s, h, files, gens, shared); err != nil {
		return nil, err
	}
	return bytes.Clone(w.b), nil
}

// documentOf writes h's document into w.b, over what it held.
func (w *docWriter) documentOf(s *schema.Stack, h *schema.Host, files []artifact.File, gens []artifact.Generator, shared map[contentKey][]byte) error {
	w.b, w.err, w.shared = slices.Grow(w.b[:0], 1024+2*totalSize(files)), nil, shared
	defer func() { w.shared = nil }()
	return w.document(s, h, files, gens)
}

// docWriters are the buffers Document writes into.
var docWriters = sync.Pool{New: func() any { return &docWriter{} }}

// Check returns the error Document would return for the same host,
// without writing the document: it walks the same document with every
// quoted string checked and nothing written. What it leaves out cannot
// fail: the header, the fixed keys, the file modes (octal digits), file
// contents (literal blocks of printable ASCII lines, or base64).
func Check(s *schema.Stack, h *schema.Host, files []artifact.File, gens []artifact.Generator) error {
	return (&docWriter{dry: true}).document(s, h, files, gens)
}

func (w *docWriter) document(s *schema.Stack, h *schema.Host, files []artifact.File, gens []artifact.Generator) error {
	if !w.dry {
		w.b = append(w.b, "#cloud-config\n"...)
		w.b = append(w.b, artifact.Header("#", s)...)
		w.b = append(w.b, "package_update: true\n"...)
	}
	// The generators' files grouped by kind, once for the packages and
	// the first-boot steps both.
	byKind := artifact.GroupByKind(gens, files)
	if pkgs := packages(s, h, byKind, gens); len(pkgs) > 0 {
		w.write("packages:\n")
		for _, p := range pkgs {
			w.item(1, p)
		}
	}
	// Celery workers run the app's code as the app's user.
	// With several apps, each app's user on the hosts running it (and
	// the workers' app's on worker hosts).
	if users := appUsers(s, h); len(users) > 0 {
		w.write("users:\n  - default\n")
		for _, a := range users {
			w.field(1, true, "name", a.User)
			w.write("    system: true\n    no_create_home: true\n")
			w.field(2, false, "homedir", a.WorkingDir)
			w.field(2, false, "shell", "/usr/sbin/nologin")
			w.field(2, false, "groups", a.Group)
		}
	}
	if len(files) > 0 {
		dirs := append(artifact.PackageDirs(gens), certbotDirs...)
		w.write("write_files:\n")
		for _, f := range files {
			w.field(1, true, "path", "/"+f.Path)
			w.field(2, false, "owner", f.Owner)
			if w.dry {
				continue
			}
			w.b = appendPermissions(w.b, f.Mode)
			if blk, ok := w.shared[keyOf(f.Content)]; ok {
				w.b = append(w.b, blk...)
			} else {
				w.b = appendContent(w.b, f.Content)
			}
			if deferred(f, dirs) {
				w.b = append(w.b, "    defer: true\n"...)
			}
		}
	}
	w.write("runcmd:\n")
	for _, cmd := range runCmd(s, h, files, byKind, gens) {
		w.item(1, cmd)
	}
	return w.err
}

// docWriter writes the document's fixed shape; the first quoting error
// (a string that is not UTF-8) is kept and returned. A dry writer
// writes nothing and only keeps that error.
type docWriter struct {
	b []byte
	// shared holds the content fields of contents several hosts share
	// (sharedContents), written as they are.
	shared map[contentKey][]byte
	err    error
	dry    bool
}

func (w *docWriter) write(s string) {
	if !w.dry {
		w.b = append(w.b, s...)
	}
}

// quote appends v quoted by artifact.YAMLQuote; a dry writer only asks
// whether it would quote it.
func (w *docWriter) quote(v string) {
	var err error
	if w.dry {
		err = artifact.YAMLQuotable(v)
	} else {
		w.b, err = artifact.AppendYAMLQuote(w.b, v)
	}
	if err != nil && w.err == nil {
		w.err = err
	}
}

// item writes a sequence item at the given depth (two spaces a level).
func (w *docWriter) item(depth int, v string) {
	if w.dry {
		w.quote(v)
		return
	}
	w.indent(depth)
	w.b = append(w.b, "- "...)
	w.quote(v)
	w.b = append(w.b, '\n')
}

// indent writes two spaces a level.
func (w *docWriter) indent(depth int) {
	for range depth {
		w.b = append(w.b, "  "...)
	}
}

// field writes "key: value" at depth, opening a sequence item when first.
func (w *docWriter) field(depth int, first bool, k, v string) {
	if w.dry {
		w.quote(v)
		return
	}
	w.indent(depth)
	if first {
		w.b = append(w.b, "- "...)
	}
	w.b = append(w.b, k...)
	w.b = append(w.b, ": "...)
	w.quote(v)
	w.b = append(w.b, '\n')
}

// appendPermissions appends a file's permissions field: its permission
// bits as four octal digits, quoted (as fmt's %#04o and YAMLQuote made
// them).
func appendPermissions(b []byte, m fs.FileMode) []byte {
	p := m.Perm()
	b = append(b, `    permissions: "0`...)
	return append(b, '0'+byte(p>>6&7), '0'+byte(p>>3&7), '0'+byte(p&7), '"', '\n')
}

// appendContent appends a file's content fields: a literal block where
// plainLines proves that exact, base64 otherwise.
func appendContent(b, content []byte) []byte {
	if !plainLines(content) {
		// Base64 needs no quoting: written as the string YAMLQuote
		// makes of it.
		b = append(b, "    encoding: \"b64\"\n    content: \""...)
		b = base64.StdEncoding.AppendEncode(b, content)
		return append(b, "\"\n"...)
	}
	b = append(b, "    content: |\n"...)
	// Line by line in place (plainLines proved that every line, the
	// last one too, ends with a newline).
	for rest := content; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line = rest[:i+1]
		}
		rest = rest[len(line):]
		if len(line) > 1 {
			b = append(b, "      "...)
		}
		b = append(b, line...)
	}
	return b
}

// contentKey names a file's content by its bytes in memory: hosts
// whose generators share one rendering (nginx.conf, a unit) hold the
// same bytes, not only equal ones.
type contentKey struct {
	p *byte
	n int
}

func keyOf(c []byte) contentKey {
	if len(c) == 0 {
		return contentKey{}
	}
	return contentKey{&c[0], len(c)}
}

// sharedContents are appendContent of every content more than one of
// files holds (the same bytes), made once for all their documents.
func sharedContents(files []artifact.File) map[contentKey][]byte {
	seen := make(map[contentKey]bool)
	shared := make(map[contentKey][]byte)
	for _, f := range files {
		k := keyOf(f.Content)
		if k.n == 0 {
			continue
		}
		if !seen[k] {
			seen[k] = true
		} else if _, ok := shared[k]; !ok {
			shared[k] = appendContent(nil, f.Content)
		}
	}
	return shared
}

func totalSize(files []artifact.File) int {
	n := 0
	for _, f := range files {
		n += len(f.Content)
	}
	return n
}

// Packages lists the Debian packages host h needs for its files: what
// the generators that rendered them say (artifact.Packager), and
// certbot where the host obtains the certificate.
func Packages(s *schema.Stack, h *schema.Host, files []artifact.File, gens []artifact.Generator) []string {
	return packages(s, h, artifact.GroupByKind(gens, files), gens)
}

// packages is Packages of files grouped by artifact.GroupByKind.
func packages(s *schema.Stack, h *schema.Host, byKind [][]artifact.File, gens []artifact.Generator) []string {
	pkgs := artifact.PackagesOf(gens, s, h, byKind)
	if artifact.UsesCertbot(s, h) {
		pkgs = append(pkgs, "certbot")
	}
	slices.Sort(pkgs)
	return slices.Compact(pkgs)
}

func deferred(f artifact.File, packageDirs []string) bool {
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
// ASCII lines (tabs allowed), none ending with blanks, the first neither
// empty nor starting with a blank (a space would need an indentation
// indicator; Go's YAML parser takes a tab there for indentation), exactly
// one final newline. A literal block carries such text as is; a later
// line may start with tabs (a shell script's), which both YAML parsers
// that read these documents (PyYAML in cloud-init, go-yaml here) keep as
// content after the block's indentation.
func plainLines(b []byte) bool {
	if len(b) == 0 || b[len(b)-1] != '\n' || (len(b) > 1 && b[len(b)-2] == '\n') {
		return false
	}
	if b[0] == ' ' || b[0] == '\t' || b[0] == '\n' {
		return false
	}
	for i, c := range b {
		switch {
		case c == '\n':
			if b[i-1] == ' ' || b[i-1] == '\t' {
				return false
			}
		case c == '\t':
		case c < 0x20 || c >= 0x7f:
			return false
		}
	}
	return true
}

// RunCmd is the first-boot script. It stops at the first failure,
// runs the generators' kernel steps (artifact.Booter), reloads systemd,
// runs what must precede the services (obtaining a certificate), enables
// and starts the rendered units, and runs the generators' service steps
// (validate, enable, restart the web server and load balancer). An app
// whose code or secrets are not there yet fails to start without
// stopping the script: its health check fails and the balancer keeps the
// host out of rotation until a deploy and systemctl restart.
func RunCmd(s *schema.Stack, h *schema.Host, files []artifact.File, gens []artifact.Generator) []string {
	return runCmd(s, h, files, artifact.GroupByKind(gens, files), gens)
}

// runCmd is RunCmd with files also grouped by artifact.GroupByKind.
func runCmd(s *schema.Stack, h *schema.Host, files []artifact.File, byKind [][]artifact.File, gens []artifact.Generator) []string {
	cmds := []string{"set -e"}
	var units []string
	for _, f := range files {
		if path.Dir(f.Path) == "etc/systemd/system" && (strings.HasSuffix(f.Path, ".service") || strings.HasSuffix(f.Path, ".socket")) {
			units = append(units, path.Base(f.Path))
		}
	}
	steps := artifact.FirstBootOf(gens, s, h, byKind)
	cmds = append(cmds, steps[artifact.PhaseKernel]...)
	cmds = append(cmds, "systemctl daemon-reload")
	cmds = append(cmds, steps[artifact.PhaseBeforeUnits]...)
	slices.Sort(units)
	for _, u := range slices.Compact(units) {
		// The rendered units start at first boot, so an instance whose
		// image carries the code serves without a push. One that cannot
		// start yet (its code or secrets not there) must not stop the
		// boot script: it says what to do and the script goes on.
		cmds = append(cmds, "systemctl enable "+u+" && systemctl start "+u+" || echo 'hacompile: "+u+" did not start: deploy the code and provision its secrets (see the runbook), then run: systemctl restart "+u+"' >&2")
	}
	return append(cmds, steps[artifact.PhaseServices]...)
}

// Existing machines (a DigitalOcean Droplet created bare, whose address
// is known only once it exists) are provisioned from their rendered
// user data as system configuration: the file goes to ConfigDropIn, and
// KeepHostKeysDropIn keeps the SSH host keys the operator has already
// accepted (cloud-init would otherwise make new ones for what it takes
// for a new instance). Rerun then runs every stage again, as a first
// boot does, without a reboot.
const (
	ConfigDropIn       = "/etc/cloud/cloud.cfg.d/99_hacompile.cfg"
	KeepHostKeysDropIn = "/etc/cloud/cloud.cfg.d/98_hacompile_keep_host_keys.cfg"
	KeepHostKeys       = "ssh_deletekeys: false\n"
	Rerun              = "cloud-init clean --logs && cloud-init init --local && cloud-init init && cloud-init modules --mode=config && cloud-init modules --mode=final"
)
