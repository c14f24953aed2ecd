package jsonnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	gojsonnet "github.com/google/go-jsonnet"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/evalbudget"
	"github.com/hacompile/hacompile/schema"
)

// Generator is one custom generator a stack lists: a Jsonnet program
// called with the stack, and for a per-host generator the host, as
// top-level arguments (function(stack, host)). It returns the files to
// add, keyed by their path on the host:
//
//	{"/etc/default/prometheus-node-exporter": "ARGS=...\n"}
//
// A value is the content, or an object {content, mode, owner, validate,
// reload} for a file that needs more than mode 0644, owner root:root and
// no action. A per-host generator runs once per host; the files of the
// others go to every host. Both go to the hosts with one of the listed
// roles, or to all hosts.
type Generator struct {
	spec  schema.CustomGenerator
	index int    // in the stack's generators, to point at it
	src   Source // the stack file: the program is found from it
	opts  Options
}

var _ artifact.Generator = (*Generator)(nil)

// Generators returns the custom generators s lists. src is the stack
// file s was loaded from: generator files resolve from its directory
// and the library paths of o, in the same sandbox as imports.
func Generators(s *schema.Stack, src Source, o Options) []artifact.Generator {
	var gens []artifact.Generator
	for i, spec := range s.Generators {
		gens = append(gens, &Generator{spec: spec, index: i, src: src, opts: Options{ExtStr: o.ExtStr, ExtCode: o.ExtCode, JPath: o.JPath}})
	}
	return gens
}

// Kind names the generator in the manifest and in diagnostics.
func (g *Generator) Kind() string { return "jsonnet:" + g.spec.File }

// Generate runs the program for the stack (and each host). opt is not
// passed on: the sandbox prefix exists for the built-in generators'
// tests.
func (g *Generator) Generate(s *schema.Stack, _ artifact.Options) ([]artifact.File, error) {
	if err := g.opts.checkCode(g.src.Name); err != nil {
		return nil, err
	}
	vm, imp := newVM(g.src, g.opts)
	node, name, err := vm.ImportAST(g.src.Name, g.spec.File)
	if err != nil {
		var ie *ImportError
		if errors.As(err, &ie) {
			d := s.At(schema.IndexPath("generators", g.index) + ".file")
			d.Severity = "error"
			d.Message = fmt.Sprintf("cannot load generator %q: %s", ie.Path, ie.Reason)
			return nil, &schema.Error{Diags: []schema.Diagnostic{d}}
		}
		return nil, g.fail(diagnose(err, g.src.Name, imp), s.Name+"/-")
	}
	view, err := viewOf(s)
	if err != nil {
		return nil, err
	}
	stackNode, err := gojsonnet.SnippetToAST("<stack>", string(view))
	if err != nil {
		return nil, err
	}
	var hosts []*schema.Host
	for _, h := range s.HostNames() {
		if g.spec.Roles == nil || slices.ContainsFunc(g.spec.Roles, s.Hosts[h].Has) {
			hosts = append(hosts, s.Hosts[h])
		}
	}
	var pos map[string]schema.Position // where the program writes its files, found once
	var pathDiags []schema.Diagnostic  // the paths refused, each once
	var pathHosts [][]string           // the hosts each was met on
	pathSaid := map[string]int{}       // its index
	// said is the refused paths' diagnostics, each naming the other
	// hosts it was met on as a clash does.
	said := func() []schema.Diagnostic {
		out := slices.Clone(pathDiags)
		for i, hs := range pathHosts {
			out[i].Message += artifact.AndSoOn(hs)
		}
		return out
	}
	// done is the files, and the refused paths' error if any: the build
	// checks the others for clashes in the same round. fail is a later
	// run's error, with the paths refused before it.
	done := func(files []artifact.File) ([]artifact.File, error) {
		if len(pathDiags) > 0 {
			return files, &schema.Error{Diags: said()}
		}
		return files, nil
	}
	fail := func(err error) error {
		var se *schema.Error
		if len(pathDiags) == 0 || !errors.As(err, &se) {
			return err
		}
		return &schema.Error{Diags: append(said(), se.Diags...)}
	}
	run := func(h *schema.Host, where string) ([]artifact.File, error) {
		vm.TLAReset()
		vm.TLANode("stack", stackNode)
		if h != nil {
			b, err := json.Marshal(hostView{Name: h.Name, Host: h})
			if err != nil {
				return nil, err
			}
			hostNode, err := gojsonnet.SnippetToAST("<host>", string(b))
			if err != nil {
				return nil, err
			}
			vm.TLANode("host", hostNode)
		}
		out, err := evalbudget.Run(g.spec.File+" ("+where+")", "Jsonnet", func() (string, error) { return vm.Evaluate(node) })
		if err != nil {
			d := diagnose(err, name, imp)
			d.Path = "" // a path in the returned files, not in the stack
			return nil, g.fail(d, where)
		}
		placed := func(err error) schema.Diagnostic {
			d := schema.Diagnostic{File: name, Message: err.Error()}
			var oe *outputError
			if errors.As(err, &oe) {
				if pos == nil {
					pos = locate(node, name, vm)
				}
				d = oe.at(d, pos)
				d.Rule = oe.rule
			}
			return d
		}
		files, err := parseFiles([]byte(out))
		if err == nil {
			err = checkFiles(files)
		}
		if err != nil {
			return nil, g.fail(placed(err), where)
		}
		// Each path the build would refuse, said where the program
		// writes it, once for every host it is met on; the others go on
		// to the build, which finds their clashes with other generators'
		// in the same round.
		ok := files[:0]
		for _, f := range files {
			if err := artifact.CheckPath(f.Path); err != nil {
				d := placed(&outputError{path: "/" + f.Path, msg: err.Error(), rule: "path-escape"})
				key := fmt.Sprintf("%s:%d:%d: %s", d.File, d.Line, d.Column, d.Message)
				i, seen := pathSaid[key]
				if !seen {
					i = len(pathDiags)
					pathSaid[key] = i
					pathDiags = append(pathDiags, g.diag(d, where))
					pathHosts = append(pathHosts, nil)
				}
				if h != nil {
					pathHosts[i] = append(pathHosts[i], h.Name)
				}
				continue
			}
			ok = append(ok, f)
		}
		return ok, nil
	}
	var files []artifact.File
	if !g.spec.PerHost {
		if len(hosts) == 0 {
			return nil, nil
		}
		once, err := run(nil, s.Name+"/-")
		if err != nil {
			return nil, err
		}
		for _, h := range hosts {
			for _, f := range once {
				f.Host = h.Name
				files = append(files, f)
			}
		}
		return done(files)
	}
	for _, h := range hosts {
		fs, err := run(h, s.Name+"/"+h.Name)
		if err != nil {
			return nil, fail(err)
		}
		for _, f := range fs {
			f.Host = h.Name
			files = append(files, f)
		}
	}
	return done(files)
}

// Locate implements artifact.Locator: where the program writes the file
// at path (relative to the host root), as a diagnostic about it points.
func (g *Generator) Locate(path string) (schema.Diagnostic, bool) {
	vm, _ := newVM(g.src, g.opts)
	node, name, err := vm.ImportAST(g.src.Name, g.spec.File)
	if err != nil {
		return schema.Diagnostic{}, false
	}
	d := (&outputError{path: "/" + path}).at(schema.Diagnostic{File: name}, locate(node, name, vm))
	return d, d.Line > 0
}

// fail prefixes the message with stack/host/kind, as the build names
// the generator of any file.
func (g *Generator) fail(d schema.Diagnostic, where string) error {
	return &schema.Error{Diags: []schema.Diagnostic{g.diag(d, where)}}
}

// diag is d as fail says it.
func (g *Generator) diag(d schema.Diagnostic, where string) schema.Diagnostic {
	d.Severity = "error"
	d.Message = where + "/" + g.Kind() + ": " + d.Message
	return d
}

// hostView is a host as generators see it: with its name.
type hostView struct {
	Name string `json:"name"`
	*schema.Host
}

// stackView is the stack as generators see it: the typed, defaulted
// stack in the schema's field names, each host with its name, and the
// source file with the generated-file banner to put in a comment.
type stackView struct {
	*schema.Stack
	Hosts  map[string]hostView `json:"hosts"`
	Source string              `json:"source"`
	Header string              `json:"header"`
}

func viewOf(s *schema.Stack) ([]byte, error) {
	v := stackView{
		Stack:  s,
		Hosts:  map[string]hostView{},
		Source: s.Source,
		Header: strings.TrimSpace(strings.TrimPrefix(artifact.Header("#", s), "#")),
	}
	for name, h := range s.Hosts {
		v.Hosts[name] = hostView{Name: name, Host: h}
	}
	return json.Marshal(v)
}

// fileFields are the fields of a file given as an object.
var fileFields = []string{"content", "mode", "owner", "validate", "reload"}

var (
	reMode  = regexp.MustCompile(`^0?[0-7]{3}$`)
	reOwner = regexp.MustCompile(`^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$`)
)

// parseFiles reads a generator's result: an object of files keyed by
// their path on the host. A leading slash is dropped (the host root is
// the file system root); the build checks what remains.
func parseFiles(out []byte) ([]artifact.File, error) {
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &outputError{msg: fmt.Sprintf(`returned %s, want an object of files {"/path/on/host": "content", …}`, jsonType(v))}
	}
	var files []artifact.File
	for _, p := range slices.Sorted(maps.Keys(obj)) {
		f := artifact.File{Path: strings.TrimPrefix(p, "/")}
		switch x := obj[p].(type) {
		case string:
			f.Content = []byte(x)
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				if !slices.Contains(fileFields, k) {
					return nil, outputErrorf(p, k, "file %q: unknown field %q (want %s)", p, k, strings.Join(fileFields, ", "))
				}
				if _, ok := x[k].(string); !ok {
					return nil, outputErrorf(p, k, "file %q: %s is %s, want a string", p, k, jsonType(x[k]))
				}
			}
			content, ok := x["content"].(string)
			if !ok {
				return nil, outputErrorf(p, "", "file %q: content is missing", p)
			}
			f.Content = []byte(content)
			if m, ok := x["mode"].(string); ok {
				n, _ := strconv.ParseUint(m, 8, 32)
				if !reMode.MatchString(m) || n == 0 {
					return nil, outputErrorf(p, "mode", "file %q: invalid mode %q (want an octal mode such as 0644)", p, m)
				}
				f.Mode = fs.FileMode(n)
			}
			if o, ok := x["owner"].(string); ok {
				if !reOwner.MatchString(o) {
					return nil, outputErrorf(p, "owner", "file %q: invalid owner %q (want user:group such as root:root)", p, o)
				}
				f.Owner = o
			}
			// Shell text, as the manifest keeps actions.
			v, _ := x["validate"].(string)
			r, _ := x["reload"].(string)
			f.Validate, f.Reload = artifact.ParseAction(v), artifact.ParseAction(r)
		default:
			return nil, outputErrorf(p, "", "file %q: got %s, want the content as a string or an object {%s}", p, jsonType(x), strings.Join(fileFields, ", "))
		}
		files = append(files, f)
	}
	return files, nil
}

// outputError is a fault in what a generator returned: in the file
// at path (its key, as written), at its field when one is named.
type outputError struct {
	path, field, msg string
	rule             string // the rule it breaks, if one has a name
}

func (e *outputError) Error() string { return e.msg }

func outputErrorf(path, field, format string, args ...any) error {
	return &outputError{path: path, field: field, msg: fmt.Sprintf(format, args...)}
}

// at places d where the program writes what e is about, as pos (locate)
// has it: the file's field, else the file, else the object returned.
// A file whose key or value is computed is placed at the closest of
// those the program writes literally.
func (e *outputError) at(d schema.Diagnostic, pos map[string]schema.Position) schema.Diagnostic {
	var tries []string
	if e.path != "" {
		// A key is written with its leading slash or without.
		keys := []string{e.path, strings.TrimPrefix(e.path, "/")}
		for _, k := range keys {
			if e.field != "" {
				tries = append(tries, schema.FieldPath(schema.FieldPath("", k), e.field))
			}
		}
		for _, k := range keys {
			tries = append(tries, schema.FieldPath("", k))
		}
	}
	for _, p := range append(tries, "") {
		if at, ok := pos[p]; ok && at.Line > 0 {
			if at.File != "" {
				d.File = at.File
			}
			d.Line, d.Column = at.Line, at.Column
			return d
		}
	}
	return d
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}
