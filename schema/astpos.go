package schema

import (
	"strconv"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/parser"
)

// sourcePositions records where the author wrote each field of a CUE
// stack file, by field path, read from the file's syntax: for a field,
// the position of its value, as CUE's own errors point at values. Fields
// the syntax does not name plainly (computed by comprehensions, or
// definitions and hidden fields, which are no part of the stack's data)
// are left out; a finding about them points at the closest enclosing
// field. Reading the syntax costs a parse; walking the evaluated value
// instead cost a third of loading a 10,000-host stack.
func sourcePositions(file string, src []byte) (map[string]Position, bool) {
	f, err := parser.ParseFile(file, src)
	if err != nil {
		return nil, false
	}
	pos := map[string]Position{}
	var walkExpr func(e ast.Expr, path string)
	walkDecls := func(decls []ast.Decl, path string) {
		for _, d := range decls {
			fd, ok := d.(*ast.Field)
			if !ok {
				continue
			}
			name, ok := labelName(fd.Label)
			if !ok {
				continue
			}
			walkExpr(fd.Value, FieldPath(path, name))
		}
	}
	walkExpr = func(e ast.Expr, path string) {
		if p := e.Pos(); p.IsValid() {
			// A field written twice is placed where it was written last.
			pos[path] = Position{Line: p.Line(), Column: p.Column()}
		}
		switch x := e.(type) {
		case *ast.StructLit:
			walkDecls(x.Elts, path)
		case *ast.ListLit:
			for i, el := range x.Elts {
				walkExpr(el, IndexPath(path, i))
			}
		}
	}
	walkDecls(f.Decls, "")
	return pos, true
}

// labelName is the field name a label gives, for regular fields.
func labelName(l ast.Label) (string, bool) {
	switch x := l.(type) {
	case *ast.Ident:
		if len(x.Name) > 0 && (x.Name[0] == '#' || x.Name[0] == '_') {
			return "", false
		}
		return x.Name, true
	case *ast.BasicLit:
		s, err := strconv.Unquote(x.Value)
		return s, err == nil
	}
	return "", false
}
