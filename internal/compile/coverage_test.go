package compile_test

import (
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
	"github.com/rogpeppe/go-internal/txtar"

	"github.com/hacompile/hacompile/schema"
)

// TestEveryOptionCovered holds every option of the stack schema to the
// rule that an accepted option renders what it means or is rejected with
// a position: each leaf field of #Stack must be set in some feature case
// (testdata/feature, whose excerpts show what it renders) or be the
// field a bad case's diagnostic names (testdata/bad, rejected at a
// position). Map-valued fields count by their pattern: setting any
// hosts.<name>.drain covers hosts.<name>.drain, any tuning.sysctl key
// covers tuning.sysctl.<key>.
func TestEveryOptionCovered(t *testing.T) {
	tree := schemaTree(t)
	var all []string
	tree.leaves("", &all)
	if len(all) < 100 {
		t.Fatalf("found only %d options in #Stack: the schema walk is broken", len(all))
	}
	covered := map[string][]string{}

	features, _ := filepath.Glob("testdata/feature/*.txtar")
	loader, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range features {
		ar, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		s, err := loader.Load("stack.cue", ar.Files[0].Data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for p := range s.Positions {
			if opt, ok := tree.option(p); ok {
				covered[opt] = append(covered[opt], filepath.Base(f))
			}
		}
	}

	bads, _ := filepath.Glob("testdata/bad/*.txtar")
	for _, f := range bads {
		ar, err := txtar.ParseFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var written []string
		var want string
		for _, sec := range ar.Files {
			switch sec.Name {
			case "want":
				want = string(sec.Data)
			case "stack.cue":
				written = writtenPaths(sec.Data)
			}
		}
		// A diagnostic rejects the field it names and what the stack
		// wrote inside it (balancer.stats: stats.port).
		for _, d := range diagPaths(want) {
			for _, p := range append(written, d) {
				if p != d && !strings.HasPrefix(p, d+".") && !strings.HasPrefix(p, d+"[") {
					continue
				}
				if opt, ok := tree.option(p); ok {
					covered[opt] = append(covered[opt], filepath.Base(f))
				}
			}
		}
	}

	// An entry of apps is an app (#AppEntry embeds #App): its fields
	// render as app's do, which the app cases cover; the fields of its
	// own (routing, hosts, target) need cases of their own.
	for _, o := range all {
		if rest, ok := strings.CutPrefix(o, "apps.<name>."); ok && len(covered[o]) == 0 {
			covered[o] = covered["app."+rest]
		}
	}
	var missing []string
	for _, o := range all {
		if len(covered[o]) == 0 {
			missing = append(missing, o)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d stack options are set in no feature case (testdata/feature: what it renders) and named by no bad case's diagnostic (testdata/bad: rejected at a position):\n\t%s",
			len(missing), len(all), strings.Join(missing, "\n\t"))
	}
}

// diagPathRE finds the field path of a diagnostic line,
// "file:line:col: path: message".
var diagPathRE = regexp.MustCompile(`(?m)^[^ :]+(?::\d+:\d+)?: ([a-z_][A-Za-z0-9_]*(?:\.[a-z_][A-Za-z0-9_-]*|\."[^"]+"|\[\d+\])*): `)

func diagPaths(want string) []string {
	var ps []string
	for _, m := range diagPathRE.FindAllStringSubmatch(want, -1) {
		ps = append(ps, m[1])
	}
	return ps
}

// writtenPaths lists the field paths a CUE stack's syntax writes (a bad
// stack may not load, so its Positions are read off the syntax here).
func writtenPaths(src []byte) []string {
	f, err := parser.ParseFile("stack.cue", src)
	if err != nil {
		return nil // a syntax error case
	}
	var out []string
	var expr func(e ast.Expr, path string)
	var decls func(ds []ast.Decl, path string)
	decls = func(ds []ast.Decl, path string) {
		for _, d := range ds {
			switch x := d.(type) {
			case *ast.Field:
				if name, _, err := ast.LabelName(x.Label); err == nil {
					expr(x.Value, schema.FieldPath(path, name))
				}
			case *ast.EmbedDecl:
				expr(x.Expr, path)
			}
		}
	}
	expr = func(e ast.Expr, path string) {
		if path != "" {
			out = append(out, path)
		}
		switch x := e.(type) {
		case *ast.StructLit:
			decls(x.Elts, path)
		case *ast.ListLit:
			for i, el := range x.Elts {
				expr(el, schema.IndexPath(path, i))
			}
		}
	}
	decls(f.Decls, "")
	return out
}

// optNode is a field of the schema: a leaf option, a struct of fields,
// a map (pattern) of one kind of value, or a list of structs.
type optNode struct {
	fields  map[string]*optNode
	pattern *optNode // [Name]: value; pattern.leaf for maps of scalars
	elem    *optNode // [...{...}]
	// decls are the values the schema declares the field with, each
	// declaration's (a field declared under an if has several).
	decls []ast.Expr
}

func (n *optNode) isLeaf() bool { return n.fields == nil && n.pattern == nil && n.elem == nil }

func (n *optNode) leaves(prefix string, out *[]string) {
	n.eachLeaf(prefix, func(p string, _ *optNode) { *out = append(*out, p) })
}

// eachLeaf calls f with every leaf option under n and its node.
func (n *optNode) eachLeaf(prefix string, f func(path string, leaf *optNode)) {
	if n.isLeaf() {
		f(prefix, n)
		return
	}
	if n.pattern != nil {
		n.pattern.eachLeaf(prefix+".<name>", f)
		if n.pattern.isLeaf() {
			return // the default keys are values of the one map option
		}
	}
	if n.elem != nil {
		n.elem.eachLeaf(prefix+"[]", f)
	}
	names := make([]string, 0, len(n.fields))
	for k := range n.fields {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		n.fields[k].eachLeaf(p, f)
	}
}

// option maps a written field path (Stack.Positions, a diagnostic's
// path) to the option it sets, if it names a leaf.
func (n *optNode) option(path string) (string, bool) {
	var opt []string
	for _, c := range splitPath(path) {
		if n.isLeaf() {
			break // an element of a list-valued option
		}
		switch {
		case strings.HasPrefix(c, "["):
			if n.elem == nil {
				return "", false
			}
			n = n.elem
			opt[len(opt)-1] += "[]"
		case n.fields[c] != nil && (n.pattern == nil || !n.pattern.isLeaf()):
			n = n.fields[c]
			opt = append(opt, c)
		case n.pattern != nil:
			n = n.pattern
			opt = append(opt, "<name>")
		default:
			return "", false
		}
	}
	if !n.isLeaf() {
		return "", false
	}
	return strings.Join(opt, "."), true
}

// splitPath splits hosts.app1.drain, tuning.sysctl."fs.file-max" and
// static[0].url into their selectors.
func splitPath(p string) []string {
	var out []string
	for p != "" {
		switch {
		case p[0] == '.':
			p = p[1:]
		case p[0] == '"':
			end := strings.Index(p[1:], `"`) + 2
			s, _ := strconv.Unquote(p[:end])
			out = append(out, s)
			p = p[end:]
		case p[0] == '[':
			end := strings.Index(p, "]") + 1
			out = append(out, p[:end])
			p = p[end:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			out = append(out, p[:end])
			p = p[end:]
		}
	}
	return out
}

// schemaTree reads #Stack's fields off the schema's syntax, following
// references to definitions, conditional fields (if …), disjunctions
// and unifications of structs, patterns and lists of structs. The
// syntax rather than the evaluated value: the fields under an if are
// there only once the condition is concrete.
func schemaTree(t *testing.T) *optNode {
	t.Helper()
	defs := schemaDefs(t)
	var structs func(e ast.Expr, seen []string) (decls []ast.Decl, elems []ast.Expr)
	// structs returns the declarations of the structs e unifies or
	// disjoins, and the element types of the lists it does.
	structs = func(e ast.Expr, seen []string) ([]ast.Decl, []ast.Expr) {
		switch x := e.(type) {
		case *ast.StructLit:
			return x.Elts, nil
		case *ast.Ident:
			if d, ok := defs[x.Name]; ok && !slices.Contains(seen, x.Name) {
				return structs(d, append(seen, x.Name))
			}
		case *ast.ParenExpr:
			return structs(x.X, seen)
		case *ast.UnaryExpr:
			return structs(x.X, seen)
		case *ast.BinaryExpr:
			d1, l1 := structs(x.X, seen)
			d2, l2 := structs(x.Y, seen)
			return append(d1, d2...), append(l1, l2...)
		case *ast.ListLit:
			for _, el := range x.Elts {
				if el, ok := el.(*ast.Ellipsis); ok && el.Type != nil {
					return nil, []ast.Expr{el.Type}
				}
			}
		}
		return nil, nil
	}
	var build func(n *optNode, decls []ast.Decl)
	var node func(e ast.Expr) *optNode
	node = func(e ast.Expr) *optNode {
		decls, elems := structs(e, nil)
		n := &optNode{}
		if len(decls) > 0 {
			n.fields = map[string]*optNode{}
			build(n, decls)
		}
		for _, el := range elems {
			if d, _ := structs(el, nil); len(d) > 0 {
				if n.elem == nil {
					n.elem = &optNode{fields: map[string]*optNode{}}
				}
				build(n.elem, d)
			}
		}
		return n
	}
	build = func(n *optNode, decls []ast.Decl) {
		for _, d := range decls {
			switch x := d.(type) {
			case *ast.Field:
				switch l := x.Label.(type) {
				case *ast.ListLit: // a pattern, [#Name]: value
					c := node(x.Value)
					c.decls = []ast.Expr{x.Value}
					if n.pattern == nil {
						n.pattern = c
					} else {
						merge(n.pattern, c)
					}
					continue
				case *ast.Ident:
					if strings.HasPrefix(l.Name, "#") || strings.HasPrefix(l.Name, "_") {
						continue
					}
				}
				name, _, err := ast.LabelName(x.Label)
				if err != nil {
					t.Fatalf("schema label %v: %v", x.Label, err)
				}
				c := node(x.Value)
				c.decls = []ast.Expr{x.Value}
				if n.fields[name] == nil {
					n.fields[name] = c
				} else {
					merge(n.fields[name], c)
				}
			case *ast.Comprehension:
				if d, _ := structs(x.Value, nil); len(d) > 0 {
					build(n, d)
				}
			case *ast.EmbedDecl:
				if d, _ := structs(x.Expr, nil); len(d) > 0 {
					build(n, d)
				}
			}
		}
	}
	def, ok := defs["#Stack"]
	if !ok {
		t.Fatal("schema has no #Stack")
	}
	return node(def)
}

// schemaDefs maps the schema's definitions (#Stack, #Seconds, …) to
// their values.
func schemaDefs(t *testing.T) map[string]ast.Expr {
	t.Helper()
	f, err := parser.ParseFile("stack.cue", schema.SchemaSource())
	if err != nil {
		t.Fatal(err)
	}
	defs := map[string]ast.Expr{}
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.Field); ok {
			if id, ok := fd.Label.(*ast.Ident); ok && strings.HasPrefix(id.Name, "#") {
				defs[id.Name] = fd.Value
			}
		}
	}
	return defs
}

// merge adds b's fields to a: a field declared in several places (a
// default under an if, a struct given in parts).
func merge(a, b *optNode) {
	a.decls = append(a.decls, b.decls...)
	if b.fields != nil {
		if a.fields == nil {
			a.fields = map[string]*optNode{}
		}
		for k, v := range b.fields {
			if a.fields[k] == nil {
				a.fields[k] = v
			} else {
				merge(a.fields[k], v)
			}
		}
	}
	if b.pattern != nil {
		if a.pattern == nil {
			a.pattern = b.pattern
		} else {
			merge(a.pattern, b.pattern)
		}
	}
	if b.elem != nil {
		if a.elem == nil {
			a.elem = b.elem
		} else {
			merge(a.elem, b.elem)
		}
	}
}
