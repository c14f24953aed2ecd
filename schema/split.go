package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"runtime"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/cue/token"

	"github.com/hacompile/hacompile/internal/par"
)

// A stack's hosts are most of its evaluation: CUE unifies #Host with
// every host, about 0.1 ms each, and one CUE context evaluates on one
// core. When no part of the stack refers to its hosts, the hosts are
// independent of each other and of the rest, so the stack is evaluated
// in parts, each the whole stack with a share of the hosts, in one
// context per core. Any error sends the stack through the whole
// evaluation again, so every message is exactly the one it would be.

// splitMin is the number of hosts from which a stack is evaluated in
// parts. Tests lower it.
var splitMin = 256

// hostParts splits a stack's top-level declarations into n sets, each
// the declarations with a share of the hosts. It reports false when the
// hosts cannot be evaluated apart: hosts referred to anywhere (even a
// field of that name of something else), or self; a host's name used in
// any host (even for a field of its own); an alias on any field; hosts
// written other than as plain top-level structs of plain host fields;
// top-level fields other than plain ones (embedded structs,
// comprehensions, patterns); file attributes (they switch on language
// experiments); or fewer than splitMin hosts. decls are not changed.
func hostParts(decls []ast.Decl, n int) (*split, bool) {
	var rest []ast.Decl
	var hosts []*ast.Field // in the order written
	part := map[string]int{}
	counts := map[string]int{}
	names := 0
	for _, d := range decls {
		switch x := d.(type) {
		case *ast.Field:
			name, plain := labelName(x.Label)
			if _, id := x.Label.(*ast.Ident); !plain && !id {
				return nil, false // a pattern, alias or computed label
			}
			if name != "hosts" {
				rest = append(rest, x) // hosts' definitions and hidden fields too
				continue
			}
			if x.Constraint != token.ILLEGAL || x.Alias != nil {
				return nil, false // hosts?:, hosts!: or hosts~H:
			}
			st, ok := x.Value.(*ast.StructLit)
			if !ok {
				return nil, false
			}
			for _, e := range st.Elts {
				switch h := e.(type) {
				case *ast.Field:
					hn, ok := labelName(h.Label)
					if !ok || h.Constraint != token.ILLEGAL {
						return nil, false
					}
					if _, seen := part[hn]; !seen {
						part[hn] = names
						names++
					}
					counts[hn]++
					hosts = append(hosts, h)
				case *ast.CommentGroup, *ast.Attribute:
				default:
					return nil, false
				}
			}
		case *ast.Package, *ast.ImportDecl, *ast.CommentGroup, *ast.LetClause:
			rest = append(rest, x)
		default:
			return nil, false
		}
	}
	// self (an experiment's name for the enclosing struct) reaches the
	// hosts without naming them.
	if names < splitMin || n < 2 || mentions(rest, map[string]bool{"hosts": true, "self": true, "__self": true}) {
		return nil, false
	}
	// A host may refer to another by its bare name (app2: app1 & {…}):
	// in a part without app1 that name would mean something else, or
	// nothing.
	inHosts := map[string]bool{"hosts": true, "self": true, "__self": true}
	for name := range part {
		inHosts[name] = true
	}
	for _, h := range hosts {
		if mentions([]ast.Decl{h}, inHosts) {
			return nil, false
		}
	}
	eval, like := shareHosts(hosts, counts)
	// The hosts evaluated, numbered again in the order written.
	evalNames := 0
	order := map[string]int{}
	for _, h := range eval {
		name, _ := labelName(h.Label)
		if _, seen := order[name]; !seen {
			order[name] = evalNames
			evalNames++
		}
	}
	n = min(n, evalNames)
	sp := &split{parts: make([][]ast.Decl, n), checks: make([][]ast.Decl, n), like: like}
	elts := make([][]ast.Decl, n)
	for _, h := range eval {
		name, _ := labelName(h.Label)
		i := order[name] * n / evalNames // contiguous shares in written order
		elts[i] = append(elts[i], h)
	}
	for j, h := range like {
		i := j * n / len(like)
		sp.checks[i] = append(sp.checks[i], h.check)
	}
	for i := range sp.parts {
		sp.parts[i] = append(append(sp.parts[i], rest...), &ast.Field{
			Label: ast.NewIdent("hosts"),
			Value: &ast.StructLit{Elts: elts[i]},
		})
	}
	return sp, true
}

// split is a stack's declarations in parts to evaluate apart.
type split struct {
	// parts are the stack's declarations, each with a share of the
	// hosts to evaluate.
	parts [][]ast.Decl
	// like are the hosts evaluated as another; checks[i], evaluated
	// with part i, are their names and leaf fields.
	checks [][]ast.Decl
	like   []likeHost
}

// mentions reports whether an identifier in names appears in decls
// other than as a plain field label, or a field has an alias (a name
// for a struct that could reach the hosts).
func mentions(decls []ast.Decl, names map[string]bool) bool {
	for _, d := range decls {
		if mentionsNode(d, names) {
			return true
		}
	}
	return false
}

func mentionsNode(n ast.Node, names map[string]bool) bool {
	found := false
	ast.Walk(n, func(n ast.Node) bool {
		switch x := n.(type) {
		case *ast.Field:
			found = found || x.Alias != nil
			if _, plain := labelName(x.Label); !plain {
				if _, id := x.Label.(*ast.Ident); !id {
					found = found || mentionsNode(x.Label, names) // a computed label is an expression
				}
			}
			found = found || mentionsNode(x.Value, names)
			return false
		case *ast.Ident:
			found = found || names[x.Name]
		}
		return !found
	}, nil)
	return found
}

// partCtx is one CUE context with the schema compiled in it.
type partCtx struct {
	ctx    *cue.Context
	stack  cue.Value
	leaves cue.Value // leafDef, when the schema has leaf fields
}

// evalParts evaluates each part (a CUE file's declarations, or a data
// stack's fields) in a context of its own, on every core, and returns
// each part's JSON. It reports false on any error.
func (l *Loader) evalParts(in *input, sp *split) ([][]byte, bool) {
	parts := sp.parts
	ctxs := make([]*partCtx, len(parts))
	vals := make([]cue.Value, len(parts))
	defer func() {
		for _, c := range ctxs {
			if c != nil {
				select {
				case l.parts <- c:
				default: // the pool is full
				}
			}
		}
	}()
	// Each part's context compiles the schema, on its own core: on a
	// first load, the contexts' schemas are most of the time to here.
	errs := make([]error, len(parts))
	par.Each(len(parts), func(i int) { ctxs[i], errs[i] = l.partContext() })
	// Compiling resolves identifiers in the syntax the parts share:
	// one part at a time.
	for i, p := range parts {
		if errs[i] != nil {
			return nil, false
		}
		c := ctxs[i]
		if in.data != "" {
			vals[i] = c.ctx.BuildExpr(&ast.StructLit{Elts: p})
		} else {
			vals[i] = c.ctx.BuildFile(&ast.File{Filename: in.rel, Decls: p})
		}
		if vals[i].Err() != nil {
			return nil, false
		}
		if len(sp.checks[i]) > 0 && !c.leaves.Exists() {
			return nil, false
		}
	}
	out := make([][]byte, len(parts))
	failed := make([]bool, len(parts))
	par.Each(len(parts), func(i int) {
		// The checks share no syntax: each compiles with its part.
		if len(sp.checks[i]) > 0 {
			check := ctxs[i].ctx.BuildExpr(&ast.StructLit{Elts: sp.checks[i]})
			if check.Err() != nil || ctxs[i].leaves.Unify(check).Validate(cue.Concrete(true), cue.Final()) != nil {
				failed[i] = true
				return
			}
		}
		u := ctxs[i].stack.Unify(vals[i])
		if u.Validate(cue.Concrete(true), cue.Final()) != nil {
			failed[i] = true
			return
		}
		var err error
		if out[i], err = u.MarshalJSON(); err != nil {
			failed[i] = true
		}
	})
	for _, f := range failed {
		if f {
			return nil, false
		}
	}
	return out, true
}

// partContext takes a context from the loader's pool, or makes one.
func (l *Loader) partContext() (*partCtx, error) {
	select {
	case c := <-l.parts:
		return c, nil
	default:
	}
	ctx := cuecontext.New()
	src := stackCUE
	_, def := schemaLeaves()
	if def != "" {
		src = append(append(bytes.Clone(stackCUE), '\n'), def...)
	}
	v := ctx.CompileBytes(src, cue.Filename(schemaFile))
	if err := v.Err(); err != nil {
		return nil, err
	}
	c := &partCtx{ctx: ctx, stack: v.LookupPath(cue.ParsePath("#Stack"))}
	if def != "" {
		c.leaves = v.LookupPath(cue.ParsePath(leafDef))
	}
	return c, nil
}

// decodeParts decodes the parts' JSON into one stack: the first part's
// fields, and every part's hosts, and the hosts evaluated as another:
// that host with their own leaf fields. Every part must agree on
// everything but the hosts: were anything in them to depend on the
// hosts after all, the parts would differ there, and the stack is
// loaded whole instead.
func decodeParts(data [][]byte, like []likeHost, s *Stack) error {
	hosts := make([]map[string]json.RawMessage, len(data))
	rests := make([]map[string]json.RawMessage, len(data))
	errs := make([]error, len(data))
	par.Each(len(data), func(i int) {
		if errs[i] = json.Unmarshal(data[i], &rests[i]); errs[i] != nil {
			return
		}
		if i == 0 {
			if errs[i] = json.NewDecoder(bytes.NewReader(data[i])).Decode(s); errs[i] != nil {
				return
			}
		}
		errs[i] = json.Unmarshal(rests[i]["hosts"], &hosts[i])
	})
	raw := map[string]json.RawMessage{}
	for i, err := range errs {
		if err != nil {
			return err
		}
		delete(rests[i], "hosts")
		if !maps.EqualFunc(rests[i], rests[0], func(a, b json.RawMessage) bool { return bytes.Equal(a, b) }) {
			return errors.New("the parts differ beside their hosts")
		}
		maps.Copy(raw, hosts[i])
	}
	// The first part's hosts are decoded with it.
	var names []string
	for n := range raw {
		if s.Hosts[n] == nil {
			names = append(names, n)
		}
	}
	own := len(names)
	for _, h := range like {
		names = append(names, h.name)
	}
	decoded := make([]*Host, len(names))
	errs = make([]error, len(names))
	ways := splitWays()
	par.Each(ways, func(w int) {
		for i := w; i < len(names); i += ways {
			h := new(Host)
			if i < own {
				errs[i] = json.Unmarshal(raw[names[i]], h)
			} else if lh := like[i-own]; raw[lh.like] == nil {
				errs[i] = errors.New("no host " + lh.like)
			} else if errs[i] = json.Unmarshal(raw[lh.like], h); errs[i] == nil {
				errs[i] = json.Unmarshal(lh.leaves, h)
			}
			decoded[i] = h
		}
	})
	if s.Hosts == nil {
		s.Hosts = make(map[string]*Host, len(names))
	}
	for i, n := range names {
		if errs[i] != nil {
			return errs[i]
		}
		s.Hosts[n] = decoded[i]
	}
	return nil
}

// splitWays is how many parts a large stack is evaluated in.
func splitWays() int { return runtime.GOMAXPROCS(0) }
