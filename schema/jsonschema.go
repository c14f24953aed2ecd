package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"cuelang.org/go/cue/ast"
	"cuelang.org/go/cue/literal"
	"cuelang.org/go/cue/parser"
	"cuelang.org/go/cue/token"
)

// JSONSchemaID is the draft the exported schema follows.
const JSONSchemaID = "https://json-schema.org/draft/2020-12/schema"

// JSONSchema is a JSON Schema (draft 2020-12) of #Stack, for editors and
// tools that check a stack written as JSON or YAML: every field with
// its type, bounds, pattern, enum, default and doc comment, closed as
// the CUE schema is. It is made from schema/stack.cue's syntax, each
// definition a $defs entry; what JSON Schema cannot say — defaults and
// fields that follow from other fields (`if runtime == "python"`),
// bounds relative to another field — is left to hacompile vet, and a
// field set under a condition is allowed without it. (CUE's own
// encoding/jsonschema, at this version, gives an empty schema for
// #Stack's conditional fields.) The output is indented, keys sorted,
// the same to the byte on every call.
func JSONSchema() ([]byte, error) {
	f, err := parser.ParseFile(schemaFile, stackCUE, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	g := &jsGen{defs: map[string]*ast.Field{}, used: map[string]bool{}, defaulted: map[string]bool{}}
	ast.Walk(f, func(n ast.Node) bool {
		if c, ok := n.(*ast.Comprehension); ok {
			g.noteDefaults(c.Value)
		}
		return true
	}, nil)
	for _, d := range f.Decls {
		if fd, ok := d.(*ast.Field); ok {
			if n, _, _ := ast.LabelName(fd.Label); strings.HasPrefix(n, "#") {
				g.defs[n] = fd
			}
		}
	}
	stack := g.defs["#Stack"]
	if stack == nil {
		return nil, fmt.Errorf("%s: no #Stack", schemaFile)
	}
	root := g.schema(stack.Value)
	// The loader refuses a stack with no hosts in words of its own
	// (noHosts), after the CUE schema: said in stack.cue, CUE's
	// message would take that one's place. The export says it here.
	if props, ok := root["properties"].(map[string]any); ok {
		if hosts, ok := props["hosts"].(map[string]any); ok {
			hosts["minProperties"] = 1
		}
	}
	root["$schema"] = JSONSchemaID
	root["title"] = "hacompile stack"
	root["description"] = "A stack file of hacompile (generated from schema/stack.cue by hacompile schema --json). hacompile vet checks what this schema cannot: defaults and fields that follow from other fields, and the HA rules."
	defs := map[string]any{}
	// Definitions used by definitions are added as they are found.
	for len(g.used) > len(defs) {
		for n := range g.used {
			if _, ok := defs[n]; ok {
				continue
			}
			fd := g.defs["#"+n]
			s := g.schema(fd.Value)
			if doc := docOf(fd); doc != "" {
				s["description"] = doc
			}
			defs[n] = s
		}
	}
	root["$defs"] = defs
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type jsGen struct {
	defs map[string]*ast.Field
	used map[string]bool
	// defaulted are the names of fields a condition gives a default
	// (balancer: digitalocean: droplet_tag: *"\(name)-app" | _): a
	// required field of that name may be left out.
	defaulted map[string]bool
}

func (g *jsGen) noteDefaults(e ast.Expr) {
	st, ok := e.(*ast.StructLit)
	if !ok {
		return
	}
	for _, d := range st.Elts {
		fd, ok := d.(*ast.Field)
		if !ok {
			continue
		}
		if _, def := splitDefault(fd.Value); def != "" {
			if n, _, err := ast.LabelName(fd.Label); err == nil {
				g.defaulted[n] = true
			}
		}
		g.noteDefaults(fd.Value)
	}
}

// schema turns a CUE constraint into a JSON Schema object; {} where it
// cannot say more than "anything".
func (g *jsGen) schema(e ast.Expr) map[string]any {
	switch x := e.(type) {
	case *ast.ParenExpr:
		return g.schema(x.X)
	case *ast.StructLit:
		return g.object(x.Elts)
	case *ast.Ident:
		switch x.Name {
		case "string":
			return map[string]any{"type": "string"}
		case "int":
			return map[string]any{"type": "integer"}
		case "number", "float":
			return map[string]any{"type": "number"}
		case "bool":
			return map[string]any{"type": "boolean"}
		case "true", "false":
			return map[string]any{"const": x.Name == "true"}
		case "null":
			return map[string]any{"type": "null"}
		case "_":
			return map[string]any{}
		}
		if d := g.defs[x.Name]; d != nil && x.Name != "#sizes" {
			n := strings.TrimPrefix(x.Name, "#")
			g.used[n] = true
			return map[string]any{"$ref": "#/$defs/" + n}
		}
		return map[string]any{}
	case *ast.SelectorExpr:
		switch exprText(x) {
		case "net.IPv4":
			return map[string]any{"type": "string", "format": "ipv4"}
		case "net.IP":
			return map[string]any{"type": "string", "anyOf": []any{map[string]any{"format": "ipv4"}, map[string]any{"format": "ipv6"}}}
		}
		return map[string]any{"type": "string"}
	case *ast.BasicLit:
		if v, ok := literalValue(x); ok {
			return map[string]any{"const": v}
		}
	case *ast.Interpolation:
		return map[string]any{"type": "string"}
	case *ast.UnaryExpr:
		return g.unary(x)
	case *ast.ListLit:
		if elem := listElem(x); elem != nil {
			return map[string]any{"type": "array", "items": g.schema(elem)}
		}
		if v, ok := exprValue(x); ok {
			return map[string]any{"const": v}
		}
	case *ast.CallExpr:
		return callSchema(x)
	case *ast.BinaryExpr:
		switch x.Op {
		case token.OR:
			return g.disjunction(x)
		case token.AND:
			return merge(g.schema(x.X), g.schema(x.Y))
		}
	}
	return map[string]any{}
}

// unary handles bounds against a number and regular expressions; a
// bound against another field (<time_limit) is vet's.
func (g *jsGen) unary(x *ast.UnaryExpr) map[string]any {
	if x.Op == token.MUL {
		return g.schema(x.X)
	}
	operand, neg := x.X, false
	if u, ok := operand.(*ast.UnaryExpr); ok && u.Op == token.SUB {
		operand, neg = u.X, true // a negative bound, >=-9223372036854775808
	}
	lit, ok := operand.(*ast.BasicLit)
	if !ok {
		return map[string]any{}
	}
	v, ok := literalValue(lit)
	if !ok {
		return map[string]any{}
	}
	if n, isNum := v.(json.Number); neg && isNum {
		v = json.Number("-" + string(n))
	} else if neg {
		return map[string]any{}
	}
	key := map[token.Token]string{token.GEQ: "minimum", token.GTR: "exclusiveMinimum", token.LEQ: "maximum", token.LSS: "exclusiveMaximum"}
	switch x.Op {
	case token.GEQ, token.GTR, token.LEQ, token.LSS:
		if _, isNum := v.(json.Number); isNum {
			return map[string]any{key[x.Op]: v}
		}
	case token.MAT:
		if s, isStr := v.(string); isStr {
			return map[string]any{"type": "string", "pattern": s}
		}
	case token.NMAT:
		if s, isStr := v.(string); isStr {
			return map[string]any{"type": "string", "not": map[string]any{"pattern": s}}
		}
	case token.NEQ:
		return map[string]any{"not": map[string]any{"const": v}}
	}
	return map[string]any{}
}

// disjunction is an enum when every value is a literal, anyOf
// otherwise; the marked default becomes "default" when it is a value.
func (g *jsGen) disjunction(x *ast.BinaryExpr) map[string]any {
	var enum []any
	var alts []any
	allLit := true
	var def any
	hasDef := false
	for _, d := range disjuncts(x) {
		if u, ok := d.(*ast.UnaryExpr); ok && u.Op == token.MUL {
			if v, ok := exprValue(u.X); ok {
				def, hasDef = v, true
			}
			d = u.X
		}
		if id, ok := d.(*ast.Ident); ok && id.Name == "_" {
			out := map[string]any{}
			if hasDef {
				out["default"] = def
			}
			return out
		}
		if v, ok := exprValue(d); ok && isLiteral(d) {
			if !containsValue(enum, v) {
				enum = append(enum, v)
			}
			alts = append(alts, map[string]any{"const": v})
			continue
		}
		allLit = false
		alts = append(alts, g.schema(d))
	}
	var out map[string]any
	if allLit {
		out = map[string]any{"enum": enum}
	} else {
		out = map[string]any{"anyOf": alts}
	}
	if hasDef {
		out["default"] = def
	}
	return out
}

func containsValue(list []any, v any) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// object is a closed struct: its fields (those under a condition too),
// required ones (name!) when unconditional, and pattern fields.
func (g *jsGen) object(decls []ast.Decl) map[string]any {
	props := map[string]any{}
	var required []string
	out := map[string]any{"type": "object", "additionalProperties": false}
	var walk func(decls []ast.Decl, cond bool)
	walk = func(decls []ast.Decl, cond bool) {
		for _, d := range decls {
			switch x := d.(type) {
			case *ast.EmbedDecl:
				// An embedded definition (#AppEntry embeds #App): its
				// fields are this object's.
				if id, ok := x.Expr.(*ast.Ident); ok {
					if fd := g.defs[id.Name]; fd != nil {
						if st, ok := fd.Value.(*ast.StructLit); ok {
							walk(st.Elts, cond)
						}
					}
				}
			case *ast.Comprehension:
				if st, ok := x.Value.(*ast.StructLit); ok {
					walk(st.Elts, true)
				}
			case *ast.Field:
				if l, ok := x.Label.(*ast.ListLit); ok && len(l.Elts) == 1 {
					// [K]: V — any key of type K.
					out["additionalProperties"] = g.schema(x.Value)
					if k := g.schema(l.Elts[0]); len(k) > 0 {
						out["propertyNames"] = k
					}
					continue
				}
				name, _, err := ast.LabelName(x.Label)
				if err != nil || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "#") {
					continue
				}
				s := g.schema(x.Value)
				if doc := docOf(x); doc != "" {
					s["description"] = doc
				}
				if prev, ok := props[name].(map[string]any); ok {
					// Set again under a condition: a default there, not a
					// new type; the first declaration stands.
					if _, hasDef := prev["default"]; !hasDef && !cond {
						if d, ok := s["default"]; ok {
							prev["default"] = d
						}
					}
					// A field declared "_" first (a nested override)
					// takes the later, fuller schema.
					if len(prev) == 0 {
						props[name] = s
					}
				} else {
					// First declared here, under a condition or not: its
					// default holds wherever the field exists.
					props[name] = s
				}
				if x.Constraint == token.NOT && !cond && !g.defaulted[name] && !contains(required, name) {
					required = append(required, name)
				}
			}
		}
	}
	walk(decls, false)
	if len(props) == 0 && out["additionalProperties"] == false {
		// Only hidden fields ({_app: app.name}): no constraint on the
		// stack's own fields.
		return map[string]any{}
	}
	out["properties"] = props
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// merge joins the schemas of a conjunction: into one object when their
// keys do not clash, else allOf.
func merge(a, b map[string]any) map[string]any {
	// A struct that only names fields a definition has, leaving them
	// unconstrained (#AppEntry & {name: N}), adds nothing to it.
	if _, ref := a["$ref"]; ref && unconstrained(b) {
		return a
	}
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		if prev, ok := out[k]; ok {
			if k == "type" && prev == v {
				continue
			}
			if k == "type" && (prev == "number" && v == "integer" || prev == "integer" && v == "number") {
				out[k] = "integer"
				continue
			}
			return map[string]any{"allOf": []any{a, b}}
		}
		out[k] = v
	}
	return out
}

// unconstrained reports whether s is an object schema whose properties
// are all unconstrained ({}).
func unconstrained(s map[string]any) bool {
	props, ok := s["properties"].(map[string]any)
	if !ok || s["type"] != "object" || len(s) > 3 {
		return false
	}
	for _, p := range props {
		if m, ok := p.(map[string]any); !ok || len(m) > 0 {
			return false
		}
	}
	return true
}

// callSchema knows the builtins the schema uses.
func callSchema(x *ast.CallExpr) map[string]any {
	name := exprText(x.Fun)
	arg := func() (any, bool) {
		if len(x.Args) != 1 {
			return nil, false
		}
		return exprValue(x.Args[0])
	}
	switch name {
	case "list.MinItems":
		if v, ok := arg(); ok {
			return map[string]any{"minItems": v}
		}
	case "list.MaxItems":
		if v, ok := arg(); ok {
			return map[string]any{"maxItems": v}
		}
	case "list.UniqueItems":
		return map[string]any{"uniqueItems": true}
	case "strings.MaxRunes":
		if v, ok := arg(); ok {
			return map[string]any{"type": "string", "maxLength": v}
		}
	case "strings.MinRunes":
		if v, ok := arg(); ok {
			return map[string]any{"type": "string", "minLength": v}
		}
	case "strings.HasSuffix":
		if v, ok := arg(); ok {
			if s, ok := v.(string); ok {
				return map[string]any{"type": "string", "pattern": regexpQuote(s) + "$"}
			}
		}
	case "strings.HasPrefix":
		if v, ok := arg(); ok {
			if s, ok := v.(string); ok {
				return map[string]any{"type": "string", "pattern": "^" + regexpQuote(s)}
			}
		}
	}
	return map[string]any{}
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// literalValue is a basic literal's value: a string, or a number as
// json.Number (as written).
func literalValue(x *ast.BasicLit) (any, bool) {
	switch x.Kind {
	case token.STRING:
		s, err := literal.Unquote(x.Value)
		return s, err == nil
	case token.INT, token.FLOAT:
		if _, err := strconv.ParseFloat(strings.ReplaceAll(x.Value, "_", ""), 64); err != nil {
			return nil, false
		}
		return json.Number(strings.ReplaceAll(x.Value, "_", "")), true
	}
	return nil, false
}

// exprValue is the value of a literal expression (a default): basic
// literals, true/false/null, lists and structs of them.
func exprValue(e ast.Expr) (any, bool) {
	switch x := e.(type) {
	case *ast.BasicLit:
		return literalValue(x)
	case *ast.Ident:
		switch x.Name {
		case "true":
			return true, true
		case "false":
			return false, true
		case "null":
			return nil, true
		}
	case *ast.ParenExpr:
		return exprValue(x.X)
	case *ast.ListLit:
		out := []any{}
		for _, el := range x.Elts {
			v, ok := exprValue(el)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case *ast.StructLit:
		out := map[string]any{}
		for _, d := range x.Elts {
			fd, ok := d.(*ast.Field)
			if !ok {
				return nil, false
			}
			n, _, err := ast.LabelName(fd.Label)
			if err != nil {
				return nil, false
			}
			v, ok := exprValue(fd.Value)
			if !ok {
				return nil, false
			}
			out[n] = v
		}
		return out, true
	}
	return nil, false
}
