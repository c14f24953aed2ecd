package schema

import (
	"strconv"

	"cuelang.org/go/cue/ast"
)

// sourcePositions records where the author wrote each field of a CUE
// stack file, by field path, read from the file's syntax: for a field,
// the position of its value, as CUE's own errors point at values.
// Definitions and hidden fields are no part of the stack's data and are
// left out. It reports false when the syntax does not tell every path
// (comprehensions, computed labels, embedded expressions): then the
// evaluated stack is walked instead. Reading the syntax costs a parse;
// walking the evaluated value cost a third of loading a 10,000-host
// stack.
func sourcePositions(file string, f *ast.File) (map[string]Position, bool) {
	pos := map[string]Position{}
	plain := true // every field's path is read off the syntax
	var walkExpr func(e ast.Expr, path string)
	var walkDecls func(decls []ast.Decl, path string)
	walkDecls = func(decls []ast.Decl, path string) {
		for _, d := range decls {
			switch x := d.(type) {
			case *ast.Field:
				if name, ok := labelName(x.Label); ok {
					walkExpr(x.Value, FieldPath(path, name))
				} else if _, def := x.Label.(*ast.Ident); !def {
					plain = false // a computed or pattern label
				}
			case *ast.EmbedDecl:
				// { … } around the whole file, or a struct embedded.
				if st, ok := x.Expr.(*ast.StructLit); ok {
					walkDecls(st.Elts, path)
				} else {
					plain = false
				}
			case *ast.Package, *ast.ImportDecl, *ast.CommentGroup, *ast.Attribute, *ast.LetClause:
			default:
				plain = false // comprehensions and the like
			}
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
				switch el.(type) {
				case *ast.Comprehension, *ast.Ellipsis:
					// The elements after it have indices the syntax
					// does not tell.
					plain = false
					return
				}
				walkExpr(el, IndexPath(path, i))
			}
		}
	}
	walkDecls(f.Decls, "")
	return pos, plain
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
