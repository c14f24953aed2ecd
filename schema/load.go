// Package schema holds the CUE schema of a stack (embedded in the binary)
// and the loader that turns stack files into validated, defaulted Go
// values. No cue.Value leaves this package: everything downstream works
// on the plain structs in types.go.
package schema

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"cuelang.org/go/cue/parser"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	cueerrors "cuelang.org/go/cue/errors"
	"cuelang.org/go/cue/token"
	cuejson "cuelang.org/go/encoding/json"

	"github.com/hacompile/hacompile/internal/evalbudget"
	"github.com/hacompile/hacompile/internal/secret"
)

//go:embed stack.cue
var stackCUE []byte

// schemaFile is the name positions in the embedded schema carry.
const schemaFile = "schema/stack.cue"

// SchemaSource returns the embedded schema text.
func SchemaSource() []byte { return bytes.Clone(stackCUE) }

// Loader compiles the schema once and validates any number of stack
// files against it. It is safe for concurrent use.
type Loader struct {
	mu sync.Mutex
	// compiled is when the schema is compiled in ctx: on the first
	// stack evaluated whole. A large stack evaluated in parts (see
	// split.go) needs only the parts' contexts.
	compiled   sync.Once
	compileErr error
	ctx        *cue.Context
	stack      cue.Value
	root       cue.Value // the whole schema, for looking up definitions
	sizes      []string  // quoted names of the known host sizes
	// parts holds idle contexts for evaluating large stacks in parts
	// (see split.go).
	parts       chan *partCtx
	partsLoaded atomic.Int64 // for tests
	hostsLike   atomic.Int64 // hosts evaluated as another, for tests
	// Base is the directory that Source paths are relative to.
	Base string
}

// NewLoader returns a loader of the embedded schema, which it compiles
// when a stack first needs it. base is the directory stack Source paths
// are made relative to (normally the working directory). The error is
// always nil: an embedded schema that does not compile is reported by
// every load.
func NewLoader(base string) (*Loader, error) {
	return &Loader{Base: base, parts: make(chan *partCtx, splitWays())}, nil
}

// compile compiles the schema in the loader's own context, once.
func (l *Loader) compile() error {
	l.compiled.Do(func() {
		ctx := cuecontext.New()
		v := ctx.CompileBytes(stackCUE, cue.Filename(schemaFile))
		if err := v.Err(); err != nil {
			l.compileErr = fmt.Errorf("compiling embedded schema: %w", err)
			return
		}
		def := v.LookupPath(cue.ParsePath("#Stack"))
		if !def.Exists() {
			l.compileErr = fmt.Errorf("embedded schema has no #Stack")
			return
		}
		iter, err := v.LookupPath(cue.ParsePath("#sizes")).Fields(cue.Definitions(true))
		if err != nil {
			l.compileErr = fmt.Errorf("embedded schema: #sizes: %w", err)
			return
		}
		for iter.Next() {
			l.sizes = append(l.sizes, strconv.Quote(iter.Selector().Unquoted()))
		}
		l.ctx, l.stack, l.root = ctx, def, v
	})
	return l.compileErr
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

// loadCUE is Load without the budget.
func (l *Loader) loadCUE(path string, src []byte) (*Stack, error) {
	in := &input{rel: l.rel(path), src: src}
	if f, err := parser.ParseFile(in.rel, src); err == nil {
		in.file = f
		if s, ok := l.loadParts(in, src, f.Decls); ok {
			return s, nil
		}
	}
	return l.load(in, src, func() (cue.Value, error) {
		v := l.ctx.CompileBytes(src, cue.Filename(in.rel))
		return v, v.Err()
	})
}

// Load validates a stack given its file name and bytes, within the
// evaluation budget (evalbudget.Limits): a CUE file of a few lines can
// ask for gigabytes.
func (l *Loader) Load(path string, src []byte) (*Stack, error) {
	return evalbudget.Run(l.rel(path), "CUE", func() (*Stack, error) { return l.loadCUE(path, src) })
}

// LoadData validates a stack given as JSON data: the evaluation of a
// stack file written in another language (Jsonnet), named by path. src
// is that file's bytes, for the digest. pos maps field paths (FieldPath)
// to where the source wrote them, as far as the source tells: a
// diagnostic is positioned at its path, or else at the closest enclosing
// path pos has. Positions in the JSON text itself are never shown: it is
// not a file the author has.
func (l *Loader) LoadData(path string, src, data []byte, pos map[string]Position) (*Stack, error) {
	in := &input{rel: l.rel(path), pos: pos}
	in.data = in.rel + " (evaluated)"
	expr, err := cuejson.Extract(in.data, data)
	if err == nil {
		if st, ok := expr.(*ast.StructLit); ok {
			if s, ok := l.loadParts(in, src, st.Elts); ok {
				return s, nil
			}
		}
	}
	return l.load(in, src, func() (cue.Value, error) {
		if err != nil {
			return cue.Value{}, err
		}
		v := l.ctx.BuildExpr(expr)
		return v, v.Err()
	})
}

// input is the stack file being loaded, for positioning diagnostics.
type input struct {
	rel string // the stack file, as diagnostics name it
	// data is the CUE file name of the JSON evaluated from the stack
	// file, for stack languages other than CUE; pos locates its paths.
	data string
	pos  map[string]Position
	// src is a CUE stack file's text, whose syntax gives the positions;
	// file is its syntax when it parsed.
	src  []byte
	file *ast.File
}

// at positions a diagnostic about path in a data stack.
func (in *input) at(path string) Diagnostic {
	d := Diagnostic{File: in.rel}
	if pos, ok := lookup(in.pos, path); ok {
		d.File = cmp.Or(pos.File, in.rel)
		d.Line, d.Column = pos.Line, pos.Column
	}
	return d
}

// top is where the file's own struct begins: the evaluated data's root
// as its positions have it, or else the file's first line.
func (in *input) top() Diagnostic {
	if in.data != "" {
		return in.at("")
	}
	return Diagnostic{File: in.rel, Line: 1, Column: 1}
}

func (l *Loader) load(in *input, src []byte, compile func() (cue.Value, error)) (*Stack, error) {
	rel := in.rel
	if err := l.compile(); err != nil {
		return nil, err
	}
	// CUE values of one context must not be built concurrently.
	l.mu.Lock()
	data, pos, err := l.eval(in, compile)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var s Stack
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&s); err != nil {
		return nil, &Error{Diags: []Diagnostic{decodeDiag(err, data, rel, pos)}}
	}
	if len(s.Hosts) == 0 {
		return nil, &Error{Diags: []Diagnostic{noHosts(rel, pos)}}
	}
	return finish(&s, in, src, pos), nil
}

// noHosts is the error of a stack whose hosts are empty, at hosts:
// every rule and generator starts from the hosts, and the rules'
// findings about roles no host has would not say what is missing.
func noHosts(file string, pos map[string]Position) Diagnostic {
	d := Diagnostic{File: file, Path: "hosts", Severity: "error", Message: "a stack needs at least one host, with an address and roles"}
	if at, ok := lookup(pos, "hosts"); ok {
		d.File = cmp.Or(at.File, file)
		d.Line, d.Column = at.Line, at.Column
	}
	return d
}

// decodeDiag turns an error decoding the validated stack's JSON into a
// diagnostic at the field that holds the value (a number the schema
// admits but the Go field cannot hold), in the author's words: the
// field path, its position in pos and what the field takes, rather
// than Go's type names. The schema's bounds keep every number within
// its Go field, so this is the safety net of a schema that does not.
func decodeDiag(err error, data []byte, file string, pos map[string]Position) Diagnostic {
	d := Diagnostic{File: file, Severity: "error"}
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		d.Message = "reading the validated stack: " + err.Error()
		return d
	}
	value := te.Value
	if p, v, ok := jsonPathAt(data, te.Offset); ok {
		d.Path, value = p, v
		if at, ok := lookup(pos, p); ok {
			d.File = cmp.Or(at.File, file)
			d.Line, d.Column = at.Line, at.Column
		}
	}
	d.Message = fmt.Sprintf("invalid value %s (want %s)", value, goTypeWords(te.Type))
	return d
}

// goTypeWords says what a Go type holds, as a stack author reads it.
func goTypeWords(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64:
		return fmt.Sprintf("an integer from %d to %d", math.MinInt64, math.MaxInt64)
	case reflect.Int8, reflect.Int16, reflect.Int32:
		return fmt.Sprintf("an integer from %d to %d", -(int64(1) << (t.Bits() - 1)), int64(1)<<(t.Bits()-1)-1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return fmt.Sprintf("an integer from 0 to %d", uint64(math.MaxUint64)>>(64-t.Bits()))
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a struct"
	}
	return t.Kind().String()
}

// jsonPathAt finds the field path (FieldPath, IndexPath) of the JSON
// value in data whose token ends at offset off, as encoding/json's
// UnmarshalTypeError.Offset gives it: just after a number, string or
// literal, or just after the { or [ that opens an object or list. It
// returns the value's text too ({…} and […] for an object and a list).
func jsonPathAt(data []byte, off int64) (path, value string, ok bool) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	type frame struct {
		list bool
		path string
		key  string // the object's key whose value comes next
		n    int    // the list's next index
		want bool   // an object awaits a key
	}
	var stack []*frame
	// next is the path of the value about to be read.
	next := func() string {
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		if f.list {
			return IndexPath(f.path, f.n)
		}
		return FieldPath(f.path, f.key)
	}
	// done records that a value was read in the innermost container.
	done := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.list {
			f.n++
		} else {
			f.want = true
		}
	}
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return "", "", false
		}
		if len(stack) > 0 {
			if f := stack[len(stack)-1]; !f.list && f.want {
				if k, ok := tok.(string); ok {
					f.key, f.want = k, false
					continue
				}
			}
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			p := next()
			if dec.InputOffset() == off {
				return p, map[json.Delim]string{'{': "{…}", '[': "[…]"}[tok.(json.Delim)], true
			}
			stack = append(stack, &frame{list: tok == json.Delim('['), path: p, want: true})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			done()
			continue
		}
		p := next()
		if end := dec.InputOffset(); end == off {
			return p, strings.TrimLeft(string(data[start:end]), " \t\r\n,:"), true
		}
		done()
	}
}

// loadParts loads a large stack whose hosts can be evaluated apart (see
// split.go). It reports false when they cannot, or on any error: then
// the stack is loaded whole, for the exact messages.
func (l *Loader) loadParts(in *input, src []byte, decls []ast.Decl) (*Stack, bool) {
	sp, ok := hostParts(decls, splitWays())
	if !ok {
		return nil, false
	}
	pos := in.pos
	if in.data == "" {
		if pos, ok = sourcePositions(in.rel, in.file); !ok {
			return nil, false // positions need the evaluated whole
		}
	}
	data, ok := l.evalParts(in, sp)
	if !ok {
		return nil, false
	}
	var s Stack
	if decodeParts(data, sp.like, &s) != nil {
		return nil, false
	}
	l.partsLoaded.Add(1)
	l.hostsLike.Add(int64(len(sp.like)))
	return finish(&s, in, src, pos), true
}

// finish completes a decoded stack.
func finish(s *Stack, in *input, src []byte, pos map[string]Position) *Stack {
	for name, h := range s.Hosts {
		h.Name = name
	}
	s.Reindex()
	normaliseApps(s)
	sum := sha256.Sum256(src)
	s.Source = in.rel
	s.Positions = pos
	s.indexWritten()
	s.SourceDigest = hex.EncodeToString(sum[:])
	return s
}

func (l *Loader) eval(in *input, compile func() (cue.Value, error)) ([]byte, map[string]Position, error) {
	v, err := compile()
	if err != nil {
		return nil, nil, l.toError(err, in)
	}
	if v.IncompleteKind() != cue.StructKind {
		d := in.top()
		d.Severity = "error"
		d.Message = "a stack file must be a struct of fields (name, domain, hosts, …)"
		return nil, nil, &Error{Diags: []Diagnostic{d}}
	}
	u := l.stack.Unify(v)
	if err := u.Validate(cue.Concrete(true), cue.Final()); err != nil {
		return nil, nil, l.withMissing(l.toError(err, in), v, in)
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, nil, l.toError(err, in)
	}
	if in.data != "" {
		return data, in.pos, nil // the JSON text's own positions mean nothing to the author
	}
	if in.file != nil {
		if pos, ok := sourcePositions(in.rel, in.file); ok {
			return data, pos, nil
		}
	}
	return data, positions(u, in.rel), nil
}

// withMissing adds to err, a stack's errors, every field #Stack
// requires at its top that v, the stack as written, leaves out. CUE
// stops at the first one the schema's conditions read (balancer.kind):
// an empty stack said "balancer" alone, and the others only once it was
// written. The app is required unless apps is written.
func (l *Loader) withMissing(err error, v cue.Value, in *input) error {
	var se *Error
	if !errors.As(err, &se) {
		return err
	}
	it, ierr := l.stack.Fields(cue.Optional(true))
	if ierr != nil {
		return err
	}
	have := map[string]bool{}
	for _, d := range se.Diags {
		have[d.Path] = true
	}
	diags := se.Diags
	for it.Next() {
		sel := it.Selector()
		if sel.ConstraintType() != cue.RequiredConstraint {
			continue
		}
		name := sel.Unquoted()
		if have[name] || v.LookupPath(cue.ParsePath(name)).Exists() {
			continue
		}
		if name == "app" && v.LookupPath(cue.ParsePath("apps")).Exists() {
			continue
		}
		d := in.top()
		d.Path, d.Severity, d.Message = name, "error", "required field is missing"
		diags = append(diags, d)
	}
	if len(diags) == len(se.Diags) {
		return err
	}
	return newError(diags)
}

// positions records where each field the author wrote is, by field
// path, so that findings about the stack as a whole can point at a line.
func positions(v cue.Value, file string) map[string]Position {
	pos := map[string]Position{}
	var walk func(v cue.Value, path string)
	walk = func(v cue.Value, path string) {
		if p := v.Pos(); p.IsValid() && p.Filename() == file && path != "" {
			pos[path] = Position{Line: p.Line(), Column: p.Column()}
		}
		switch v.IncompleteKind() {
		case cue.StructKind:
			it, err := v.Fields()
			if err != nil {
				return
			}
			for it.Next() {
				walk(it.Value(), FieldPath(path, it.Selector().Unquoted()))
			}
		case cue.ListKind:
			it, err := v.List()
			if err != nil {
				return
			}
			for i := 0; it.Next(); i++ {
				walk(it.Value(), IndexPath(path, i))
			}
		}
	}
	walk(v, "")
	return pos
}

// FieldPath appends a field to a field path the way diagnostics and
// Stack.Positions write paths: hosts.app1, tuning.sysctl."fs.file-max".
func FieldPath(parent, name string) string {
	sel := cue.Str(name).String()
	if parent == "" {
		return sel
	}
	return parent + "." + sel
}

// IndexPath appends a list index to a field path: waive[0].
func IndexPath(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}

// lookup finds the position of path, or of its closest enclosing path,
// in pos.
func lookup(pos map[string]Position, path string) (Position, bool) {
	for p := path; ; {
		if at, ok := pos[p]; ok {
			return at, true
		}
		if p == "" {
			return Position{}, false
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			i = 0
		}
		p = p[:i]
	}
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
// file where CUE knows a position there, sorted and de-duplicated. The
// messages are rewritten into what a stack author can act on: an empty
// disjunction becomes "want one of …", a regular expression becomes the
// description of what it accepts, a missing field says it is required.
func (l *Loader) toError(err error, in *input) error {
	errs := cueerrors.Errors(err)
	var diags []Diagnostic
	for i := 0; i < len(errs); i++ {
		e := errs[i]
		format, args := e.Msg()
		msg := fmt.Sprintf(format, args...)
		var n int
		if _, scanErr := fmt.Sscanf(msg, "%d errors in empty disjunction:", &n); scanErr == nil && n > 0 && i+n < len(errs) {
			group := make([]Diagnostic, 0, n)
			for _, c := range errs[i+1 : i+1+n] {
				group = append(group, l.diag(c, in))
			}
			diags = append(diags, l.reduceDisjunction(group, n)...)
			i += n
			continue
		}
		diags = append(diags, l.diag(e, in))
	}
	diags = dropFollowOn(diags)
	for i := range diags {
		diags[i].Message = withoutSecrets(humanize(diags[i].Message))
		// A size of the wrong type: the sizes say more than "string".
		if v, ok := strings.CutPrefix(diags[i].Message, "invalid value "); ok && isSizePath(diags[i].Path) {
			if v, _, ok := strings.Cut(v, " (want string, got "); ok {
				diags[i].Message = fmt.Sprintf("invalid value %s (want one of %s)", v, strings.Join(slices.Sorted(slices.Values(l.sizes)), ", "))
			}
		}
	}
	return newError(diags)
}

// diag converts one CUE error.
func (l *Loader) diag(e cueerrors.Error, in *input) Diagnostic {
	rel := in.rel
	format, args := e.Msg()
	d := Diagnostic{Message: fmt.Sprintf(format, args...)}
	p := e.Path()
	if len(p) > 0 && p[0] == "#Stack" {
		p = p[1:]
	}
	if missing, ok := strings.CutPrefix(d.Message, "required field missing: "); ok {
		// Reported where the schema uses the field; the path is the
		// field's own. A use at the top of #Stack (a comprehension's
		// condition, balancer.kind == …) names the field's parents only
		// in the schema's text there.
		if len(p) == 0 {
			p = selectorAt(e.Position(), missing)
		}
		p = append(slices.Clone(p), missing)
		d.Message = "field is required but not present"
	}
	if len(p) > 0 {
		d.Path = cue.MakePath(selectors(p)...).String()
	}
	if m := reUndefinedImport.FindStringSubmatch(d.Message); m != nil {
		// CUE's sentence ends with the module it looked in, which a
		// stack file read alone has none of.
		d.Message = fmt.Sprintf("cannot import %q: a stack file imports CUE's standard library alone (strings, list, math, …); CUE modules and packages of your own are not read", m[1])
	}
	if d.Message == "field not allowed" && len(p) > 0 {
		d.Message = l.notAllowed(p)
	}
	pos := bestPos(e)
	if in.data != "" && (!pos.IsValid() || pos.Filename() == in.data || pos.Filename() == schemaFile) {
		at := in.at(d.Path)
		d.File, d.Line, d.Column = at.File, at.Line, at.Column
	} else if pos.IsValid() && pos.Filename() == rel {
		d.File = rel
		d.Line = pos.Line()
		d.Column = pos.Column()
	} else if pos.IsValid() && pos.Filename() != schemaFile {
		d.File = l.rel(pos.Filename())
		d.Line = pos.Line()
		d.Column = pos.Column()
	} else {
		// A position in the embedded schema helps nobody: name the
		// stack file at the nearest field the author wrote on the path
		// (a required field is missing from the struct written there).
		d.File = rel
		if in.file != nil {
			if pos, _ := sourcePositions(rel, in.file); pos != nil {
				if at, ok := lookup(pos, d.Path); ok && at.Line > 0 {
					d.Line, d.Column = at.Line, at.Column
				}
				if m := reIncomplete.FindStringSubmatch(d.Message); m != nil {
					if _, written := pos[d.Path]; written {
						// Written as a type or a bound
						// (target_concurrency: int), not left out.
						d.Message = "not a concrete value (want " + describeConstraint(m[1]) + "): write one"
					}
				}
			}
			if d.Line == 0 {
				// The struct the field is missing from is the file's
				// own: it starts at the file's first line.
				d.Line, d.Column = 1, 1
			}
		}
	}
	return d
}

var (
	reConflict   = regexp.MustCompile(`^conflicting values (.+?) and (.+?)( \(mismatched types (\w+) and (\w+)\))?$`)
	reBound      = regexp.MustCompile(`out of bound [=!]~("(?:[^"\\]|\\.)*")`)
	reIncomplete = regexp.MustCompile(`^incomplete value (.+)$`)
	// reUndefinedImport is CUE's "package \"x\" imported but not defined
	// in <module>".
	reUndefinedImport = regexp.MustCompile(`^package "(.+)" imported but not defined in`)
	reSecretName      = regexp.MustCompile(`(?i)pass|secret|token|credential|private_?key|api_?key`)
)

// reQuoted is a quoted string in a message, as CUE and Go quote one,
// with the field name before it when it is a struct's field
// ({password:"…"}).
var reQuoted = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*:)?("(?:[^"\\]|\\.)*")`)

// withoutSecrets names each quoted value of msg that looks like a secret
// by what it looks like instead of quoting it: a value refused by the
// schema never reaches the secret-inline rule, and the message goes to
// terminals and CI logs.
func withoutSecrets(msg string) string {
	if !strings.Contains(msg, `"`) {
		return msg
	}
	return reQuoted.ReplaceAllStringFunc(msg, func(m string) string {
		sub := reQuoted.FindStringSubmatch(m)
		name, q := sub[1], sub[2]
		v, err := strconv.Unquote(q)
		if err != nil {
			v = q[1 : len(q)-1]
		}
		if what := secret.In(name + v); what != "" {
			return name + "(not shown: it looks like " + what + ")"
		}
		return m
	})
}

// humanize rewrites CUE's wording where it names an implementation
// detail (a regular expression, an incomplete value).
// isSizePath reports whether a field path is a host's size.
// Roles are the values of #Role in stack.cue (TestRoles keeps them
// equal): more than CUE lists for a failed disjunction.
var Roles = []string{"app", "cache", "lb", "queue", "worker"}

// isRolePath reports whether p is one role of a list of roles.
func isRolePath(p string) bool {
	i := strings.LastIndex(p, ".roles[")
	return i >= 0 && strings.HasSuffix(p, "]") && !strings.Contains(p[i+len(".roles["):], ".")
}

func isSizePath(p string) bool {
	return strings.HasPrefix(p, "hosts.") && strings.HasSuffix(p, ".size") && strings.Count(p, ".") == 2
}

func humanize(msg string) string {
	if msg == "field is required but not present" {
		return "required field is missing"
	}
	if m := reIncomplete.FindStringSubmatch(msg); m != nil {
		return "required field is missing (want " + describeConstraint(m[1]) + ")"
	}
	if m := reBound.FindStringSubmatchIndex(msg); m != nil {
		quoted := msg[m[2]:m[3]]
		if re, err := strconv.Unquote(quoted); err == nil {
			if desc := DescribePattern(re); desc != "" {
				return strings.TrimSuffix(msg[:m[0]], "(") + "(want " + desc + ")" + strings.TrimPrefix(msg[m[1]:], ")")
			}
		}
	}
	for validator, want := range validatorWords {
		if strings.HasSuffix(msg, "(does not satisfy "+validator+")") {
			return strings.TrimSuffix(msg, "(does not satisfy "+validator+")") + "(want " + want + ")"
		}
	}
	if m := reConflict.FindStringSubmatch(msg); m != nil && m[4] != "" {
		// CUE names the two sides in either order: the author's value
		// is the one that is not a schema expression.
		if schemaExpr(m[1]) && !schemaExpr(m[2]) {
			return fmt.Sprintf("invalid value %s (want %s, got %s)", m[2], m[4], m[5])
		}
		return fmt.Sprintf("invalid value %s (want %s, got %s)", m[1], m[5], m[4])
	}
	return msg
}

// schemaExpr reports whether a value CUE names is the schema's (a
// definition, a list or struct type, a bound) rather than a value
// written in a stack.
func schemaExpr(v string) bool {
	switch v {
	case "int", "string", "bool", "number", "float", "bytes", "_", "{}":
		return true
	}
	return strings.Contains(v, "#") || strings.Contains(v, "...") || strings.HasPrefix(v, "=~") || strings.HasPrefix(v, ">") || strings.HasPrefix(v, "<")
}

// cueErrorCap is how many alternatives CUE reports for an empty
// disjunction; more were tried when the count reaches it.
const cueErrorCap = 5

// reduceDisjunction turns the per-alternative errors of one failed
// disjunction into the fewest useful messages. Errors specific to the
// alternative the author meant (a bound, a pattern) win over "conflicts
// with the default" and "field not allowed" from the others; a value
// that matched none of a list of constants or types becomes one
// "want one of" message.
func (l *Loader) reduceDisjunction(group []Diagnostic, n int) []Diagnostic {
	var specific []Diagnostic
	for _, d := range group {
		if d.Message != "field not allowed" && !reConflict.MatchString(d.Message) {
			specific = append(specific, d)
		}
	}
	if len(specific) > 0 {
		return specific
	}
	// Every alternative conflicted: find the value common to all pairs.
	type pair struct{ a, b, ta, tb string }
	var pairs []pair
	for _, d := range group {
		if m := reConflict.FindStringSubmatch(d.Message); m != nil {
			pairs = append(pairs, pair{m[1], m[2], m[4], m[5]})
		}
	}
	if len(pairs) != len(group) || len(pairs) == 0 {
		return group
	}
	for _, got := range []string{pairs[0].a, pairs[0].b} {
		var want []string
		for _, p := range pairs {
			switch {
			case p.a == got && p.tb != "":
				want = append(want, p.tb)
			case p.b == got && p.ta != "":
				want = append(want, p.ta)
			case p.a == got:
				want = append(want, p.b)
			case p.b == got:
				want = append(want, p.a)
			}
		}
		if len(want) != len(pairs) {
			continue
		}
		d := group[0]
		if isSizePath(d.Path) {
			want = l.sizes
		} else if isRolePath(d.Path) {
			want = nil
			for _, r := range Roles {
				want = append(want, strconv.Quote(r))
			}
		} else if n >= cueErrorCap {
			want = append(want, "…")
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if len(want) == 1 {
			d.Message = fmt.Sprintf("invalid value %s (want %s)", got, want[0])
		} else {
			d.Message = fmt.Sprintf("invalid value %s (want one of %s)", got, strings.Join(want, ", "))
		}
		return []Diagnostic{d}
	}
	return group
}

// dropFollowOn removes errors that only follow from a missing top-level
// field (a default computed from the domain, say), so the author sees
// the cause.
func dropFollowOn(diags []Diagnostic) []Diagnostic {
	topMissing := false
	for _, d := range diags {
		if d.Message == "field is required but not present" && !strings.ContainsAny(d.Path, ".[") {
			topMissing = true
		}
	}
	if !topMissing {
		return diags
	}
	var out []Diagnostic
	for _, d := range diags {
		followOn := strings.ContainsAny(d.Path, ".[") &&
			(d.Message == "field is required but not present" || strings.HasPrefix(d.Message, "incomplete value"))
		if !followOn {
			out = append(out, d)
		}
	}
	return out
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

var selectorRE = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*\.)+$`)

// selectorAt reads the schema's text at pos, the field of a reference
// such as balancer.kind, and returns the reference's parents (balancer)
// when the field there is field; nil otherwise.
func selectorAt(pos token.Pos, field string) []string {
	if !pos.IsValid() || pos.Filename() != schemaFile {
		return nil
	}
	lines := bytes.Split(stackCUE, []byte("\n"))
	if pos.Line() < 1 || pos.Line() > len(lines) {
		return nil
	}
	line := string(lines[pos.Line()-1])
	at := pos.Column() - 1
	if at < 0 || !strings.HasPrefix(line[min(at, len(line)):], field) {
		return nil
	}
	parents := strings.TrimSuffix(selectorRE.FindString(line[:at]), ".")
	if parents == "" {
		return nil
	}
	return strings.Split(parents, ".")
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
		if p.Filename() != schemaFile {
			return p
		}
		if !schemaPos.IsValid() {
			schemaPos = p
		}
	}
	return schemaPos
}

// describeConstraint replaces the patterns inside a CUE constraint with
// their descriptions.
func describeConstraint(c string) string {
	var parts []string
	for _, m := range regexp.MustCompile(`[=!]~("(?:[^"\\]|\\.)*")`).FindAllStringSubmatch(c, -1) {
		if re, err := strconv.Unquote(m[1]); err == nil && DescribePattern(re) != "" {
			parts = append(parts, DescribePattern(re))
		}
	}
	if len(parts) == 0 {
		return c
	}
	return strings.Join(parts, ", ")
}

// notAllowed explains a closedness error: a bad key of a keyed map, or
// an unknown field with the closest allowed name as a suggestion.
func (l *Loader) notAllowed(p []string) string {
	name := unquote(p[len(p)-1])
	switch {
	case len(p) == 2 && p[0] == "hosts":
		return fmt.Sprintf("invalid host name %q (want %s)", name, patternDescriptions[`^[a-z][a-z0-9-]{0,62}$`])
	case len(p) == 3 && p[0] == "tuning" && p[1] == "sysctl":
		return fmt.Sprintf("invalid sysctl key %q (want %s)", name, patternDescriptions[`^[a-z0-9_]+(\.[a-z0-9_-]+)+$`])
	}
	if when := conditionOf(p); when != "" {
		// A field of another case (psgi with runtime "python", or with
		// no runtime at all): say which.
		return fmt.Sprintf("field not allowed (only when %s)", when)
	}
	// Walk the schema's definitions: the stack's own fields are
	// required or optional, which lookups do not descend into.
	parent := l.stack
	rest := p[:len(p)-1]
	if len(rest) > 0 {
		def, ok := fieldDefs[rest[0]]
		if rest[0] == "hosts" || rest[0] == "generators" || rest[0] == "apps" {
			if len(rest) < 2 {
				return "field not allowed"
			}
			rest = rest[1:]
		}
		if !ok {
			return "field not allowed"
		}
		parent = l.root.LookupPath(cue.ParsePath(def))
		rest = rest[1:]
	}
	for _, sel := range rest {
		parent = parent.LookupPath(cue.MakePath(cue.Str(sel)))
	}
	best, bestDist := "", 3
	if iter, err := parent.Fields(cue.Optional(true)); err == nil {
		for iter.Next() {
			f := iter.Selector().Unquoted()
			if d := editDistance(name, f); d < bestDist {
				best, bestDist = f, d
			}
		}
	}
	// Fields the definition declares only under a condition (if
	// runtime == "python" {worker_class: …}) are no fields of it until
	// the condition is known: read them off the schema's text.
	if len(p) >= 2 && len(rest) == 0 {
		if def, ok := fieldDefs[p[len(p)-2]]; ok {
			for _, f := range conditionalFields(def) {
				// d 0: the field is for another case (module with
				// runtime perl), not a typo.
				if d := editDistance(name, f); d > 0 && d < bestDist {
					best, bestDist = f, d
				}
			}
		}
	}
	if reSecretName.MatchString(name) {
		return "field not allowed: secrets never go into a stack; put them in a file on the host (app.environment_file, balancer.environment_file) that the rendered configuration references"
	}
	if best != "" {
		return fmt.Sprintf("field not allowed (did you mean %s?)", best)
	}
	return "field not allowed"
}

// conditionOf is the condition a field of the schema exists under
// (runtime == "perl" for app.psgi), "" for a field that always exists
// or is not one.
func conditionOf(p []string) string {
	condOf.once.Do(func() {
		condOf.when = map[string]string{}
		fields, _, err := SchemaFields()
		if err != nil {
			return
		}
		for _, f := range fields {
			if f.When != "" {
				condOf.when[f.Path] = f.When
			}
		}
	})
	key := strings.Join(p, ".")
	if len(p) == 3 && p[0] == "apps" {
		// An entry of apps is an app.
		key = "app." + p[2]
	}
	return condOf.when[key]
}

var condOf struct {
	once sync.Once
	when map[string]string
}

var condFields struct {
	once  sync.Once
	byDef map[string][]string
}

// conditionalFields lists the labels a definition of the schema declares
// inside its if clauses.
func conditionalFields(def string) []string {
	condFields.once.Do(func() {
		condFields.byDef = map[string][]string{}
		f, err := parser.ParseFile(schemaFile, stackCUE)
		if err != nil {
			return
		}
		var inIf func(elts []ast.Decl, into *[]string)
		inIf = func(elts []ast.Decl, into *[]string) {
			for _, d := range elts {
				switch x := d.(type) {
				case *ast.Field:
					if n, ok := labelName(x.Label); ok {
						*into = append(*into, n)
					}
				case *ast.Comprehension:
					if st, ok := x.Value.(*ast.StructLit); ok {
						inIf(st.Elts, into)
					}
				}
			}
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			id, ok := fd.Label.(*ast.Ident)
			st, isStruct := fd.Value.(*ast.StructLit)
			if !ok || !isStruct || !strings.HasPrefix(id.Name, "#") {
				continue
			}
			var labels []string
			for _, e := range st.Elts {
				if c, ok := e.(*ast.Comprehension); ok {
					if body, ok := c.Value.(*ast.StructLit); ok {
						inIf(body.Elts, &labels)
					}
				}
			}
			condFields.byDef[id.Name] = labels
		}
	})
	return condFields.byDef[def]
}

// validatorWords names what the schema's validator functions accept.
var validatorWords = map[string]string{
	"net.IPv4":             "an IPv4 address such as 10.0.0.5",
	"net.IP":               "an IP address",
	"net.IPCIDR":           "an IP range such as 10.0.0.0/16",
	"list.UniqueItems":     "each item at most once",
	"list.MinItems(1)":     "at least one item",
	"strings.MinRunes(10)": "at least 10 characters",

	// A custom generator's file.
	`strings.HasSuffix(".jsonnet")`: "a Jsonnet file such as generators/node-exporter.jsonnet",
}

// fieldDefs maps the stack's top-level fields to their definitions.
var fieldDefs = map[string]string{
	"hosts": "#Host", "tls": "#TLS", "balancer": "#Balancer", "app": "#App",
	"apps":   "#AppEntry",
	"tuning": "#Tuning", "database": "#Database", "cache": "#Cache", "queue": "#Queue",
	"generators": "#CustomGenerator",
}

func unquote(sel string) string {
	if u, err := strconv.Unquote(sel); err == nil {
		return u
	}
	return sel
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
