package jsonnet

import (
	gojsonnet "github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"

	"github.com/hacompile/hacompile/schema"
)

// locate maps the field paths a stack file writes literally to where
// it writes them, so that schema errors about the evaluated JSON point
// into the Jsonnet sources. It is best effort, reading the program
// without running it: it follows objects, arrays, locals, `a + b` (the
// right side first, as it wins in Jsonnet), imports, and a top-level
// function's body. Whatever is computed (a call, a conditional, a
// comprehension) ends the walk there, and a diagnostic inside it is
// placed at the closest enclosing field found (schema.Loader.LoadData).
// A field the walk finds may be one the evaluation dropped or
// overrode; such a path is never asked for, unless the override comes
// from a computed value.
func locate(node ast.Node, file string, vm *gojsonnet.VM) map[string]schema.Position {
	l := &locator{vm: vm, file: file, pos: map[string]schema.Position{}}
	l.walk(node, nil, "", 0)
	return l.pos
}

type locator struct {
	vm   *gojsonnet.VM
	file string // positions in this file carry no File
	pos  map[string]schema.Position
}

// scope is the local variables in scope, innermost first.
type scope struct {
	name  ast.Identifier
	node  ast.Node
	outer *scope // the scope the variable's body sees
	next  *scope
}

func (s *scope) lookup(id ast.Identifier) (*scope, bool) {
	for ; s != nil; s = s.next {
		if s.name == id {
			return s, true
		}
	}
	return nil, false
}

func bind(s *scope, binds ast.LocalBinds) *scope {
	// The binds of one local see each other.
	first := s
	for _, b := range binds {
		first = &scope{name: b.Variable, node: b.Body, next: first}
	}
	for t := first; t != s; t = t.next {
		t.outer = first
	}
	return first
}

// maxDepth bounds the walk: a self-referencing local would otherwise
// unfold forever.
const maxDepth = 64

func (l *locator) record(p string, loc ast.LocationRange) {
	if _, ok := l.pos[p]; ok || !loc.IsSet() {
		return
	}
	at := schema.Position{Line: loc.Begin.Line, Column: loc.Begin.Column}
	if f := fileOf(loc); f != l.file {
		at.File = f
	}
	l.pos[p] = at
}

// resolve looks through what only passes a value on: locals,
// parentheses, variables, imports and a top-level function.
func (l *locator) resolve(n ast.Node, s *scope) (ast.Node, *scope) {
	for i := 0; i < maxDepth; i++ {
		switch x := n.(type) {
		case *ast.Local:
			n, s = x.Body, bind(s, x.Binds)
		case *ast.Parens:
			n = x.Inner
		case *ast.Function:
			n = x.Body
		case *ast.Var:
			v, ok := s.lookup(x.Id)
			if !ok {
				return n, s
			}
			n, s = v.node, v.outer
		case *ast.Import:
			imported, _, err := l.vm.ImportAST(x.LocRange.FileName, x.File.Value)
			if err != nil {
				return nil, nil
			}
			n, s = imported, nil
		default:
			return n, s
		}
	}
	return nil, nil
}

func (l *locator) walk(n ast.Node, s *scope, p string, depth int) {
	if depth > maxDepth {
		return
	}
	n, s = l.resolve(n, s)
	if n == nil {
		return
	}
	if p == "" {
		l.record(p, *n.Loc())
	}
	switch x := n.(type) {
	case *ast.DesugaredObject:
		fs := bind(s, x.Locals)
		for _, f := range x.Fields {
			name, ok := f.Name.(*ast.LiteralString)
			if !ok || f.Hide == ast.ObjectFieldHidden {
				continue
			}
			fp := schema.FieldPath(p, name.Value)
			switch f.Body.(type) {
			case *ast.LiteralString, *ast.LiteralNumber, *ast.LiteralBoolean, *ast.LiteralNull:
				l.record(fp, *f.Body.Loc())
			default:
				l.record(fp, f.LocRange)
			}
			l.walk(f.Body, fs, fp, depth+1)
		}
	case *ast.Array:
		l.elements(x, s, p, 0, depth)
	case *ast.Binary:
		if x.Op != ast.BopPlus {
			return
		}
		left, ls := l.resolve(x.Left, s)
		right, rs := l.resolve(x.Right, s)
		la, lok := left.(*ast.Array)
		ra, rok := right.(*ast.Array)
		switch {
		case lok && rok:
			l.elements(la, ls, p, 0, depth)
			l.elements(ra, rs, p, len(la.Elements), depth)
		case !lok && !rok:
			l.walk(right, rs, p, depth+1)
			l.walk(left, ls, p, depth+1)
		}
	}
}

func (l *locator) elements(a *ast.Array, s *scope, p string, offset, depth int) {
	for i, e := range a.Elements {
		ep := schema.IndexPath(p, offset+i)
		l.record(ep, *e.Expr.Loc())
		l.walk(e.Expr, s, ep, depth+1)
	}
}
