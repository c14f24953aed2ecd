// Package artifact defines what a generator is and what it produces: the
// in-memory file set that the build writes to out/, records in the
// manifest and push copies onto hosts. It also holds the small helpers
// every generator shares (headers, quoting, sorting).
package artifact

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/hacompile/hacompile/schema"
)

// File is one rendered file.
type File struct {
	// Host is the host the file belongs to; empty for stack-level files
	// (cloud-init documents, provider inputs) that live beside hosts/.
	Host string
	// Path is slash-separated and relative: for a host file it is the
	// path on the host without the leading slash ("etc/nginx/nginx.conf").
	Path string
	// Content may be shared by several files (a file every host gets
	// alike is rendered once): it is never changed in place.
	Content []byte
	Mode    fs.FileMode
	Owner   string // user:group on the host
	// Kind is the generator that produced the file.
	Kind string
	// Validate is the command that checks the file on the host before
	// it takes effect; Reload is what makes the change live.
	Validate Action
	Reload   Action
	// Handed is set, and Content nil, when the content went to
	// Options.Hand (written out already).
	Handed *Handed
}

// Options change where rendered configuration points, never what it
// means. Root prefixes every absolute path written inside the files; it
// exists so tests can run nginx -t and systemd-analyze against a sandbox
// tree. Builds for out/ use the zero value.
type Options struct {
	Root string
	// CheckOnly says the files are only checked, never written or read
	// (hacompile vet): an assembler may then leave out the content of
	// its files where making it cannot fail and no rule reads it, but
	// it still returns every file and every error it would otherwise.
	CheckOnly bool
	// Hand, when set, takes a stack-level file an assembler has just
	// made whose content no later step of the build reads (a host's
	// cloud-init document): the build writes it then (build --check
	// compares it with out/), and Hand returns the file with its content
	// dropped and Handed set, so that a large fleet's documents are not
	// all held at once. f.Content is valid during the call only: Hand
	// does not keep it. What shows or keeps the content (push, diff, the
	// tests) leaves Hand nil.
	Hand func(s *schema.Stack, f File) (File, error)
	// Reuse, when set with Hand, is asked before an assembler makes a
	// file it would hand over, with the file as it would be made but
	// without content, and key: the sha256 of everything its content
	// is made from (for a cloud-init document: the stack's settings,
	// the host's entry, and the path, kind, owner, mode, actions and
	// digest of each of its files). When out/ holds the file the last build made
	// from the same key, Reuse returns it as Hand would (Handed set)
	// and true, and the file is not made; otherwise the assembler makes
	// it and hands it over as usual, and Hand may record key with it.
	// A one-host change on a large fleet then makes one document, not
	// the fleet's.
	Reuse func(s *schema.Stack, f File, key [sha256.Size]byte) (File, bool, error)
	// Only, when set, names the hosts whose files are wanted: a
	// generator may skip making files for any other host (Renders), and
	// what it makes for them anyway is dropped. Stack-level files
	// (Host "") are always wanted. compile.RenderChanged sets it.
	Only func(host string) bool
}

// Renders reports whether the files of host are wanted (Options.Only).
func (o Options) Renders(host string) bool { return o.Only == nil || o.Only(host) }

// Handed describes the content of a file that went to Options.Hand.
type Handed struct {
	SHA256 [sha256.Size]byte
	Size   int
}

// P returns the absolute host path p as seen through the sandbox root.
func (o Options) P(p string) string {
	if o.Root == "" {
		return p
	}
	return strings.TrimRight(o.Root, "/") + p
}

// Generator turns a validated stack into files. Generators are pure
// functions of their input: no clock, environment, hostname or map order.
type Generator interface {
	// Kind is the unique name of the artifact kind ("nginx", "systemd").
	Kind() string
	Generate(s *schema.Stack, opt Options) ([]File, error)
}

// Assembler is a generator that packages what the plain generators
// rendered (cloud-init carries each host's files to a new machine). It
// runs after every Generator and receives their files sorted by host
// and path, with the generators that produced them, in table order, to
// ask their capabilities (caps.go) instead of knowing their kinds.
type Assembler interface {
	Kind() string
	Assemble(s *schema.Stack, opt Options, files []File, gens []Generator) ([]File, error)
}

// CheckPath reports whether p is a clean relative path that stays inside
// its root.
func CheckPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("path %q must be relative to the host root", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean (want %q)", p, path.Clean(p))
	case p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q escapes the host root", p)
	case strings.ContainsAny(p, "\\") || strings.ContainsFunc(p, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }):
		// A control character (an escape sequence, a newline) would
		// reach terminals, listings and headers as it is.
		return fmt.Errorf("path %q contains a forbidden character", p)
	}
	return nil
}

// Header returns the generated-file banner in a format's line-comment
// syntax, naming the source stack file.
func Header(comment string, s *schema.Stack) string {
	return comment + " Generated by hacompile from " + s.Source + ". Do not edit: change the stack and rebuild.\n"
}

// Seconds formats a duration in seconds the nginx/HAProxy way ("60s").
func Seconds(n int) string { return strconv.Itoa(n) + "s" }

// Anchor is an HTML id made of prefix and s: lower-case letters and
// digits, each run of anything else one dash. The runbook site names its
// sections with it, and alerts link to them by the same name.
func Anchor(prefix, s string) string {
	var b strings.Builder
	b.WriteString(prefix)
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			if dash && b.Len() > len(prefix) {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
			continue
		}
		dash = true
	}
	return b.String()
}
