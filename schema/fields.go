package schema

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// Field is one field of #Stack as schema/stack.cue writes it, for the
// field reference and the JSON Schema. Fields set inside a condition
// (`if runtime == "python" {...}`) are fields too, with the condition.
type Field struct {
	// Path is the field's place in a stack: "balancer.health.interval";
	// "hosts.<name>.roles" under a map, "app.static[].url" in a list's
	// elements.
	Path string
	// Required (written name!) or Optional (name?); neither: a field
	// that always has a value, its default or one that follows from
	// other fields.
	Required, Optional bool
	// Type is the constraint as written, without its default: a
	// definition (#Seconds), a disjunction of values, a bound. "struct"
	// for a field holding fields of its own.
	Type string
	// Default is the default as written ("" when none); Defaults are
	// further defaults that hold under a condition.
	Default  string
	Defaults []CondDefault
	// Doc is the field's comment.
	Doc string
	// When is the condition the field exists under ("" for always).
	When string

	value ast.Expr // the constraint, for the JSON Schema
}

// CondDefault is a default that holds when a condition does.
type CondDefault struct{ Value, When string }

// Definition is a named type of the schema (#Seconds, #Path), which
// field types refer to.
type Definition struct {
	Name, Type, Doc string
	Struct          bool
	value           ast.Expr
}

// SchemaFields lists every field of #Stack, depth first in the
// schema's order, and the definitions the fields refer to, sorted by
// name.
func SchemaFields() ([]Field, []Definition, error) {
	f, err := parser.ParseFile(schemaFile, stackCUE, parser.ParseComments)
	if err != nil {
		return nil, nil, err
	}
	w := &fieldWalker{defs: map[string]*ast.Field{}, byPath: map[string]int{}}
	var defNames []string
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		name, _, _ := ast.LabelName(fd.Label)
		if strings.HasPrefix(name, "#") {
			w.defs[name] = fd
			defNames = append(defNames, name)
		}
	}
	stack := w.defs["#Stack"]
	if stack == nil {
		return nil, nil, fmt.Errorf("%s: no #Stack", schemaFile)
	}
	w.walkStruct("", stack.Value, "", map[string]bool{"#Stack": true})
	var defs []Definition
	for _, n := range defNames {
		fd := w.defs[n]
		if n == "#Stack" || n == "#sizes" {
			continue
		}
		_, isStruct := fd.Value.(*ast.StructLit)
		defs = append(defs, Definition{Name: n, Type: exprText(fd.Value), Doc: docOf(fd), Struct: isStruct, value: fd.Value})
	}
	sortDefs(defs)
	return w.fields, defs, nil
}

func sortDefs(d []Definition) {
	for i := 1; i < len(d); i++ {
		for j := i; j > 0 && d[j].Name < d[j-1].Name; j-- {
			d[j], d[j-1] = d[j-1], d[j]
		}
	}
}

type fieldWalker struct {
	defs   map[string]*ast.Field
	fields []Field
	byPath map[string]int
}

// walkStruct walks the fields of a struct value: a literal, a
// definition it refers to, or the structs of a conjunction.
func (w *fieldWalker) walkStruct(prefix string, v ast.Expr, when string, seen map[string]bool) {
	switch x := v.(type) {
	case *ast.StructLit:
		w.walkDecls(prefix, x.Elts, when, seen)
	case *ast.Ident:
		if d := w.defs[x.Name]; d != nil && !seen[x.Name] {
			seen[x.Name] = true
			w.walkStruct(prefix, d.Value, when, seen)
			delete(seen, x.Name)
		}
	case *ast.BinaryExpr:
		if x.Op == token.AND {
			w.walkStruct(prefix, x.X, when, seen)
			w.walkStruct(prefix, x.Y, when, seen)
		}
	case *ast.ParenExpr:
		w.walkStruct(prefix, x.X, when, seen)
	}
}

func (w *fieldWalker) walkDecls(prefix string, decls []ast.Decl, when string, seen map[string]bool) {
	for _, d := range decls {
		switch x := d.(type) {
		case *ast.Field:
			w.field(prefix, x, when, seen)
		case *ast.Comprehension:
			cond := when
			for _, c := range x.Clauses {
				if ic, ok := c.(*ast.IfClause); ok {
					cond = andCond(cond, exprText(ic.Condition))
				}
			}
			w.walkStruct(prefix, x.Value, cond, seen)
		}
	}
}

func andCond(a, b string) string {
	if a == "" {
		return b
	}
	return a + " && " + b
}

func (w *fieldWalker) field(prefix string, fd *ast.Field, when string, seen map[string]bool) {
	var name string
	switch l := fd.Label.(type) {
	case *ast.ListLit:
		// A pattern constraint, [#Name]: T: any key of that type.
		key := "key"
		if len(l.Elts) == 1 {
			if id, ok := l.Elts[0].(*ast.Ident); ok {
				key = strings.ToLower(strings.TrimPrefix(id.Name, "#"))
			}
		}
		name = "<" + key + ">"
	default:
		n, _, err := ast.LabelName(fd.Label)
		if err != nil {
			return
		}
		name = n
		if !labelPlain.MatchString(n) {
			name = strconv.Quote(n)
		}
	}
	if strings.HasPrefix(name, "_") || strings.HasPrefix(name, "#") || strings.HasPrefix(name, "\"_") {
		return // hidden fields and definitions are no part of a stack
	}
	path := name
	if prefix != "" {
		path = prefix + "." + name
	}
	types, def := splitDefault(fd.Value)
	if i, ok := w.byPath[path]; ok {
		// A field set again, under a condition: a default of its own there.
		f := &w.fields[i]
		if def != "" {
			cond := when
			if f.When != "" {
				cond = strings.TrimPrefix(cond, f.When+" && ")
			}
			f.Defaults = append(f.Defaults, CondDefault{Value: def, When: cond})
		}
		if doc := docOf(fd); doc != "" && f.Doc == "" {
			f.Doc = doc
		}
		if types != "" && f.Type == "" {
			f.Type = types
		}
	} else {
		f := Field{Path: path, Required: fd.Constraint == token.NOT, Optional: fd.Constraint == token.OPTION,
			Type: types, Default: def, Doc: docOf(fd), When: when, value: fd.Value}
		w.byPath[path] = len(w.fields)
		w.fields = append(w.fields, f)
	}
	// Descend into what the field holds.
	i := w.byPath[path]
	if st := structOf(fd.Value, w.defs); st != nil {
		if w.fields[i].Type == "" || strings.HasPrefix(w.fields[i].Type, "{") {
			w.fields[i].Type = "struct"
		}
		w.walkStruct(path, fd.Value, when, seen)
		return
	}
	if ds := disjuncts(fd.Value); len(ds) > 1 {
		// One of several structs ({socket: #Path} | {port: #Port}): the
		// fields of each, the default's left to the type's text.
		for _, d := range ds {
			if _, ok := d.(*ast.StructLit); ok {
				w.walkStruct(path, d, when, seen)
			}
		}
		return
	}
	if elem := listElem(fd.Value); elem != nil && structOf(elem, w.defs) != nil {
		w.walkStruct(path+"[]", elem, when, seen)
	}
}

// structOf reports whether v holds fields: a struct literal, a
// definition that is one, or a conjunction with one (not a
// disjunction of structs, which is a type of its own).
func structOf(v ast.Expr, defs map[string]*ast.Field) ast.Expr {
	switch x := v.(type) {
	case *ast.StructLit:
		return x
	case *ast.Ident:
		if d := defs[x.Name]; d != nil {
			return structOf(d.Value, defs)
		}
	case *ast.BinaryExpr:
		if x.Op == token.AND {
			if s := structOf(x.X, defs); s != nil {
				return s
			}
			return structOf(x.Y, defs)
		}
	case *ast.ParenExpr:
		return structOf(x.X, defs)
	}
	return nil
}

// listElem is the element type of a list type [...T] (possibly in a
// conjunction with list constraints).
func listElem(v ast.Expr) ast.Expr {
	switch x := v.(type) {
	case *ast.ListLit:
		if len(x.Elts) == 1 {
			if e, ok := x.Elts[0].(*ast.Ellipsis); ok {
				return e.Type
			}
		}
	case *ast.BinaryExpr:
		if x.Op == token.AND {
			if e := listElem(x.X); e != nil {
				return e
			}
			return listElem(x.Y)
		}
	}
	return nil
}

// disjuncts splits a | b | c.
func disjuncts(v ast.Expr) []ast.Expr {
	if b, ok := v.(*ast.BinaryExpr); ok && b.Op == token.OR {
		return append(disjuncts(b.X), disjuncts(b.Y)...)
	}
	return []ast.Expr{v}
}

// splitDefault separates a field's default (the disjunct marked *) from
// the rest of its type, both as written.
// A field's type lists every value it takes, its default included;
// "_" (anything the field's other constraints allow) is left out.
func splitDefault(v ast.Expr) (types, def string) {
	var all []string
	anyValue, enum := false, true
	for _, d := range disjuncts(v) {
		if u, ok := d.(*ast.UnaryExpr); !ok || u.Op != token.MUL {
			enum = enum && isLiteral(d)
		}
	}
	for _, d := range disjuncts(v) {
		if u, ok := d.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			def = exprText(u.X)
			if enum {
				// One of the values listed; beside a type (bool, a
				// bound) the default is not a type of its own.
				all = append(all, def)
			}
			continue
		}
		if id, ok := d.(*ast.Ident); ok && id.Name == "_" {
			anyValue = true
			continue
		}
		all = append(all, exprText(d))
	}
	if anyValue {
		return "", def
	}
	return strings.Join(all, " | "), def
}

// isLiteral reports whether e is a single value: a string, number,
// true, false or null.
func isLiteral(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		return true
	case *ast.Ident:
		return x.Name == "true" || x.Name == "false" || x.Name == "null"
	}
	return false
}

var labelPlain = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// exprText prints an expression on one line.
func exprText(e ast.Expr) string {
	b, err := format.Node(e, format.Simplify())
	if err != nil {
		return fmt.Sprintf("%T", e)
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	return strings.NewReplacer("{ ", "{", " }", "}").Replace(s)
}

// docOf is a field's doc comment, lines joined by spaces.
func docOf(fd *ast.Field) string {
	var parts []string
	for _, cg := range ast.Comments(fd) {
		if cg.Doc || cg.Position == 0 {
			if t := strings.TrimSpace(cg.Text()); t != "" {
				parts = append(parts, strings.Join(strings.Fields(t), " "))
			}
		}
	}
	return strings.Join(parts, " ")
}
