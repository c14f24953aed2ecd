package schema

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/format"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// A large stack's hosts are mostly alike: the same roles and size, each
// with an address of its own. #Host gives every host its defaults from
// its own fields alone, and some of its fields (address, notes) are
// read by nothing else in #Host: a host's value there is the string it
// wrote, or an error. Hosts written alike but for such a field's string
// are evaluated once: the first of them with the schema, the others'
// own strings and names against those fields' constraints alone (no
// defaults, no disjunctions). Any error sends the stack through the
// whole evaluation, as for the parts.

// leafDef is the definition, added to the schema in the part contexts,
// that checks the hosts evaluated as another: their names as the hosts'
// pattern does, their leaf fields as #Host does.
const leafDef = "#hostLeaves_"

var hostLeaves struct {
	once   sync.Once
	labels map[string]bool // #Host's leaf fields
	def    string          // leafDef's declaration, "" when there are none
}

// schemaLeaves reads #Host's leaf fields off the schema's syntax: fields
// written once, at its top level, that nothing in #Host names, whose
// constraint names no field of #Host and is a scalar one. It finds none when the schema
// could give a host anything but #Host: when anything in the schema
// names hosts, #Stack declares hosts more than once or other than as
// [pattern]: #Host, or #Host is not one plain struct.
func schemaLeaves() (map[string]bool, string) {
	hostLeaves.once.Do(func() {
		f, err := parser.ParseFile(schemaFile, stackCUE)
		if err != nil {
			return
		}
		hostLeaves.labels, hostLeaves.def = leavesOf(f)
	})
	return hostLeaves.labels, hostLeaves.def
}

func leavesOf(f *ast.File) (map[string]bool, string) {
	var host, stack *ast.StructLit
	hosts, stacks := 0, 0
	for _, d := range f.Decls {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		id, ok := fd.Label.(*ast.Ident)
		if !ok {
			continue
		}
		switch id.Name {
		case "#Host":
			hosts++
			host, _ = fd.Value.(*ast.StructLit)
		case "#Stack":
			stacks++
			stack, _ = fd.Value.(*ast.StructLit)
		case leafDef:
			return nil, ""
		}
	}
	if hosts != 1 || stacks != 1 || host == nil || stack == nil || mentions(f.Decls, map[string]bool{"hosts": true}) {
		return nil, ""
	}
	// #Stack's one hosts field: [pattern]: #Host.
	var pattern ast.Expr
	n := 0
	ast.Walk(stack, func(x ast.Node) bool {
		if fd, ok := x.(*ast.Field); ok {
			if name, _ := labelName(fd.Label); name == "hosts" {
				n++
				if st, ok := fd.Value.(*ast.StructLit); ok && len(st.Elts) == 1 {
					if pf, ok := st.Elts[0].(*ast.Field); ok {
						l, lok := pf.Label.(*ast.ListLit)
						id, iok := pf.Value.(*ast.Ident)
						if lok && iok && id.Name == "#Host" && len(l.Elts) == 1 && pf.Alias == nil {
							pattern = l.Elts[0]
						}
					}
				}
			}
		}
		return true
	}, nil)
	if n != 1 || pattern == nil {
		return nil, ""
	}
	// #Host's fields, at its top level and in its comprehensions.
	count := map[string]int{}
	var top []*ast.Field
	var walk func(elts []ast.Decl, top0 bool) bool
	walk = func(elts []ast.Decl, top0 bool) bool {
		for _, e := range elts {
			switch x := e.(type) {
			case *ast.Field:
				name, ok := labelName(x.Label)
				if !ok {
					if _, id := x.Label.(*ast.Ident); !id {
						return false // a pattern or computed label
					}
					continue
				}
				count[name]++
				if top0 {
					top = append(top, x)
				}
			case *ast.Comprehension:
				st, ok := x.Value.(*ast.StructLit)
				if !ok || !walk(st.Elts, false) {
					return false
				}
			case *ast.CommentGroup, *ast.Attribute:
			default:
				return false // an embedding
			}
		}
		return true
	}
	if !walk(host.Elts, true) {
		return nil, ""
	}
	fields := map[string]bool{}
	for name := range count {
		fields[name] = true
	}
	var b strings.Builder
	labels := map[string]bool{}
	for _, x := range top {
		name, _ := labelName(x.Label)
		if count[name] != 1 || x.Alias != nil || len(x.Attrs) > 0 || mentions(host.Elts, map[string]bool{name: true}) || mentionsNode(x.Value, fields) || !scalarConstraint(x.Value) {
			continue
		}
		src, err := format.Node(x.Value)
		if err != nil {
			return nil, ""
		}
		labels[name] = true
		b.WriteString(strconv.Quote(name) + "?: (" + string(src) + ")\n")
	}
	if len(labels) == 0 {
		return nil, ""
	}
	src, err := format.Node(pattern)
	if err != nil {
		return nil, ""
	}
	return labels, leafDef + ": {[" + string(src) + "]: {\n" + b.String() + "}}\n"
}

// scalarConstraint reports whether e constrains a scalar without
// defaults or alternatives (net.IPv4, string, =~"…"): the constraints
// a string can satisfy, cheap to check for thousands of hosts.
func scalarConstraint(e ast.Expr) bool {
	ok := true
	ast.Walk(e, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.StructLit, *ast.ListLit, *ast.Comprehension, *ast.UnaryExpr:
			if u, isUnary := x.(*ast.UnaryExpr); isUnary && u.Op != token.MUL {
				return true // a bound, a negation
			}
			ok = false
		case *ast.BinaryExpr:
			if x.Op == token.OR {
				ok = false
			}
		}
		return ok
	}, nil)
	return ok
}

// likeHost is a host evaluated as another.
type likeHost struct {
	name, like string
	leaves     []byte     // its leaf fields, as JSON, over like's
	check      *ast.Field // its name and leaf fields, for leafDef
}

// shareHosts picks, from hosts in the order written, those to evaluate:
// the first of each set of hosts written alike but for their leaf
// fields' strings, and every host that is not a struct of fields of
// literals. counts is how often each name was declared: a host declared
// more than once is evaluated itself.
func shareHosts(hosts []*ast.Field, counts map[string]int) (eval []*ast.Field, like []likeHost) {
	leaves, _ := schemaLeaves()
	if len(leaves) == 0 {
		return hosts, nil
	}
	first := map[string]string{}
	var key strings.Builder
	for _, h := range hosts {
		name, _ := labelName(h.Label)
		key.Reset()
		lf, ok := hostKey(&key, h, leaves)
		if !ok || counts[name] != 1 || !sameName(h.Label, name) {
			eval = append(eval, h)
			continue
		}
		k := key.String()
		rep, seen := first[k]
		if !seen {
			first[k] = name
			eval = append(eval, h)
			continue
		}
		obj := make(map[string]string, len(lf))
		elts := make([]ast.Decl, 0, len(lf))
		for _, f := range lf {
			n, _ := labelName(f.Label)
			s, err := literal.Unquote(f.Value.(*ast.BasicLit).Value)
			if err != nil {
				eval = append(eval, h)
				ok = false
				break
			}
			obj[n] = s
			elts = append(elts, &ast.Field{Label: f.Label, Value: f.Value})
		}
		if !ok {
			continue
		}
		data, err := json.Marshal(obj)
		if err != nil {
			eval = append(eval, h)
			continue
		}
		like = append(like, likeHost{name: name, like: rep, leaves: data,
			check: &ast.Field{Label: h.Label, Value: &ast.StructLit{Elts: elts}}})
	}
	return eval, like
}

// sameName reports whether CUE reads label as name: a host evaluated as
// another is named by its label's syntax, not by CUE.
func sameName(label ast.Label, name string) bool {
	switch x := label.(type) {
	case *ast.Ident:
		return x.Name == name
	case *ast.BasicLit:
		s, err := literal.Unquote(x.Value)
		return err == nil && s == name && simpleString(x)
	}
	return false
}

// hostKey writes to key what makes two hosts alike: every field but
// the leaves' values, in the order written. It returns the leaf fields,
// and false when the host is not a plain struct of plain fields whose
// values are literals, lists and structs of them.
func hostKey(key *strings.Builder, h *ast.Field, leaves map[string]bool) ([]*ast.Field, bool) {
	if len(h.Attrs) > 0 {
		return nil, false
	}
	st, ok := h.Value.(*ast.StructLit)
	if !ok {
		return nil, false
	}
	var lf []*ast.Field
	if !structKey(key, st, leaves, &lf) {
		return nil, false
	}
	return lf, true
}

// structKey writes a struct of literals' fields to key, each leaf
// field's name alone, and appends the leaf fields to lf.
func structKey(key *strings.Builder, st *ast.StructLit, leaves map[string]bool, lf *[]*ast.Field) bool {
	seen := map[string]bool{}
	for _, e := range st.Elts {
		switch x := e.(type) {
		case *ast.Field:
			name, ok := labelName(x.Label)
			if !ok || seen[name] || x.Constraint != token.ILLEGAL || x.Alias != nil || len(x.Attrs) > 0 {
				return false
			}
			seen[name] = true
			keyString(key, name)
			if lit, ok := x.Value.(*ast.BasicLit); ok && leaves[name] && simpleString(lit) {
				key.WriteString("=leaf;")
				*lf = append(*lf, x)
				continue
			}
			if !literalKey(key, x.Value) {
				return false
			}
		case *ast.CommentGroup:
		default:
			return false
		}
	}
	return true
}

// simpleString reports whether lit is a single-line double-quoted string.
func simpleString(lit *ast.BasicLit) bool {
	return lit.Kind == token.STRING && strings.HasPrefix(lit.Value, `"`) && !strings.HasPrefix(lit.Value, `"""`)
}

func keyString(key *strings.Builder, s string) {
	key.WriteString(strconv.Itoa(len(s)))
	key.WriteByte(':')
	key.WriteString(s)
}

// literalKey writes a literal value's syntax to key; false for anything
// but literals and lists and structs of them.
func literalKey(key *strings.Builder, e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.BasicLit:
		key.WriteString("b" + strconv.Itoa(int(x.Kind)))
		keyString(key, x.Value)
	case *ast.ListLit:
		key.WriteString("[")
		for _, el := range x.Elts {
			if !literalKey(key, el) {
				return false
			}
		}
		key.WriteString("]")
	case *ast.StructLit:
		key.WriteString("{")
		if !structKey(key, x, nil, nil) {
			return false
		}
		key.WriteString("}")
	default:
		return false
	}
	return true
}
