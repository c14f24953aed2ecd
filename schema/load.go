// Package schema holds the CUE schema of a stack (embedded in the binary)
// and the loader that turns stack files into validated, defaulted Go
// values. No cue.Value leaves this package: everything downstream works
// on the plain structs in types.go.
package schema

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
)

//go:embed stack.cue
var stackCUE []byte

// SchemaSource returns the embedded schema text.
func SchemaSource() []byte { return bytes.Clone(stackCUE) }

// Loader compiles the schema once and validates any number of stack
// files against it. It is safe for concurrent use.
type Loader struct {
	mu    sync.Mutex
	ctx   *cue.Context
	stack cue.Value
	// Base is the directory that Source paths are relative to.
	Base string
}

// NewLoader compiles the embedded schema. base is the directory stack
// Source paths are made relative to (normally the working directory).
func NewLoader(base string) (*Loader, error) {
	ctx := cuecontext.New()
	v := ctx.CompileBytes(stackCUE, cue.Filename("schema/stack.cue"))
	if err := v.Err(); err != nil {
		return nil, fmt.Errorf("compiling embedded schema: %w", err)
	}
	def := v.LookupPath(cue.ParsePath("#Stack"))
	if !def.Exists() {
		return nil, fmt.Errorf("embedded schema has no #Stack")
	}
	return &Loader{ctx: ctx, stack: def, Base: base}, nil
}

// LoadFile reads and validates one stack file.
func (l *Loader) LoadFile(path string) (*Stack, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Diags: []Diagnostic{{File: l.rel(path), Message: fileErr(err)}}}
	}
	return l.Load(path, src)
}

func fileErr(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}

// Load validates a stack given its file name and bytes.
func (l *Loader) Load(path string, src []byte) (*Stack, error) {
	rel := l.rel(path)
	// CUE values of one context must not be built concurrently.
	l.mu.Lock()
	data, err := l.eval(rel, src)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var s Stack
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, &Error{Diags: []Diagnostic{{File: rel, Message: "decoding validated stack: " + err.Error()}}}
	}
	for name, h := range s.Hosts {
		h.Name = name
	}
	sum := sha256.Sum256(src)
	s.Source = rel
	s.SourceDigest = hex.EncodeToString(sum[:])
	return &s, nil
}

func (l *Loader) eval(rel string, src []byte) ([]byte, error) {
	v := l.ctx.CompileBytes(src, cue.Filename(rel))
	if err := v.Err(); err != nil {
		return nil, l.toError(err)
	}
	if v.IncompleteKind() != cue.StructKind {
		return nil, &Error{Diags: []Diagnostic{{File: rel, Line: 1, Column: 1, Message: "a stack file must be a struct of fields (name, domain, hosts, …)"}}}
	}
	u := l.stack.Unify(v)
	if err := u.Validate(cue.Concrete(true), cue.Final()); err != nil {
		return nil, l.toError(err)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, l.toError(err)
	}
	return data, nil
}

func (l *Loader) rel(path string) string {
	if l.Base != "" {
		if abs, err := filepath.Abs(path); err == nil {
			if r, err := filepath.Rel(l.Base, abs); err == nil {
				path = r
			}
		}
	}
	return filepath.ToSlash(path)
}

// toError converts CUE errors into diagnostics positioned in the stack
// file where CUE knows a position there, sorted and de-duplicated.
func (l *Loader) toError(err error) error {
	var diags []Diagnostic
	for _, e := range cueerrors.Errors(err) {
		format, args := e.Msg()
		d := Diagnostic{Message: fmt.Sprintf(format, args...)}
		p := e.Path()
		if len(p) > 0 && p[0] == "#Stack" {
			p = p[1:]
		}
		if len(p) > 0 {
			d.Path = cue.MakePath(selectors(p)...).String()
		}
		pos := bestPos(e)
		if pos.IsValid() {
			d.File = l.rel(pos.Filename())
			d.Line = pos.Line()
			d.Column = pos.Column()
		}
		diags = append(diags, d)
	}
	return newError(diags)
}

func selectors(p []string) []cue.Selector {
	sels := make([]cue.Selector, 0, len(p))
	for _, s := range p {
		sel := cue.ParsePath(s)
		if sel.Err() == nil && len(sel.Selectors()) == 1 {
			sels = append(sels, sel.Selectors()[0])
		} else {
			sels = append(sels, cue.Str(s))
		}
	}
	return sels
}

// bestPos prefers a position in the user's file over one in the schema:
// the user can act on "stacks/x.cue:12:3" but not on the embedded schema.
func bestPos(e cueerrors.Error) token.Pos {
	var schemaPos token.Pos
	positions := append([]token.Pos{e.Position()}, e.InputPositions()...)
	for _, p := range positions {
		if !p.IsValid() {
			continue
		}
		if p.Filename() != "schema/stack.cue" {
			return p
		}
		if !schemaPos.IsValid() {
			schemaPos = p
		}
	}
	return schemaPos
}
