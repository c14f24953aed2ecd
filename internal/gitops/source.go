package gitops

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// SourceRef is a stack field that changed and that the changed file's
// generator names as one it is rendered from (artifact.Sourcer; a host's
// file also comes from the host's entry), at the line the author wrote
// it. Only fields both true of are named: a file whose change comes
// from a field its generator does not name (a default that moved, a
// host added elsewhere) names none.
type SourceRef struct {
	// Field is the field path ("app.timeout", "hosts.app3").
	Field string `json:"field"`
	// File and Line are where it is written: the stack file, or a file
	// it imports.
	File   string `json:"file"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
	// Removed: the field is gone from the working tree; File and Line
	// are the base revision's.
	Removed bool `json:"removed,omitempty"`
}

// String is "app.timeout (stacks/web.cue:9)".
func (r SourceRef) String() string {
	w := fmt.Sprintf("%s (%s:%d)", r.Field, r.File, r.Line)
	if r.Removed {
		w = fmt.Sprintf("%s (removed; was %s:%d)", r.Field, r.File, r.Line)
	}
	return w
}

// stackChange is what changed in one stack's fields between the two
// sides, as sorted leaf paths (a scalar, or an empty list or object)
// written in Stack.Positions' form.
type stackChange struct {
	base, head *schema.Stack
	leaves     []string
	// keysBase and keysHead are each side's leaf paths, sorted.
	keysBase, keysHead []string
}

// newStackChange compares two sides of a stack (either may be nil) by
// their values.
func newStackChange(base, head *schema.Stack) *stackChange {
	a, b := flatten(base), flatten(head)
	c := &stackChange{base: base, head: head, keysBase: slices.Sorted(maps.Keys(a)), keysHead: slices.Sorted(maps.Keys(b))}
	for p, v := range a {
		if w, ok := b[p]; !ok || w != v {
			c.leaves = append(c.leaves, p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			c.leaves = append(c.leaves, p)
		}
	}
	slices.Sort(c.leaves)
	return c
}

// flatten is a stack's values by leaf path.
func flatten(s *schema.Stack) map[string]string {
	m := map[string]string{}
	if s == nil {
		return m
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return m
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return m
	}
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 0 {
				m[p] = "{}"
			}
			for k, e := range x {
				walk(schema.FieldPath(p, k), e)
			}
		case []any:
			if len(x) == 0 {
				m[p] = "[]"
			}
			for i, e := range x {
				walk(schema.IndexPath(p, i), e)
			}
		default:
			b, _ := json.Marshal(x)
			m[p] = string(b)
		}
	}
	walk("", v)
	return m
}

// under reports whether path p is field or inside it.
func underField(p, field string) bool {
	return p == field || strings.HasPrefix(p, field+".") || strings.HasPrefix(p, field+"[")
}

// changedUnder returns the changed leaves under field.
func (c *stackChange) changedUnder(field string) []string {
	i := sort.SearchStrings(c.leaves, field)
	var out []string
	for ; i < len(c.leaves) && strings.HasPrefix(c.leaves[i], field); i++ {
		if underField(c.leaves[i], field) {
			out = append(out, c.leaves[i])
		}
	}
	return out
}

// has reports whether the sorted leaf paths have one at or under field.
func has(keys []string, field string) bool {
	for i := sort.SearchStrings(keys, field); i < len(keys) && strings.HasPrefix(keys[i], field); i++ {
		if underField(keys[i], field) {
			return true
		}
	}
	return false
}

// written is the closest field at or above p that s's author wrote,
// with its position.
func written(s *schema.Stack, p string) (string, schema.Position, bool) {
	for {
		if at, ok := s.Positions[p]; ok {
			return p, at, true
		}
		if p == "" {
			return "", schema.Position{}, false
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			i = 0
		}
		p = p[:i]
	}
}

// refs names, for a file rendered from the candidate fields (most
// specific first), the changed fields among them where they are
// written: a field added or removed whole (a host's entry) is named
// itself, otherwise each changed value the author wrote; a changed
// default is not named.
func (c *stackChange) refs(cands []string) []SourceRef {
	var out []SourceRef
	seen := map[string]bool{}
	add := func(field string) {
		if seen[field] {
			return
		}
		s, removed := c.head, false
		if s == nil || !hasPos(s, field) {
			if c.base == nil || !hasPos(c.base, field) {
				return
			}
			s, removed = c.base, true
		}
		q, at, ok := written(s, field)
		if !ok || q != field {
			return
		}
		seen[field] = true
		out = append(out, SourceRef{Field: field, File: cmp.Or(at.File, s.Source), Line: at.Line, Column: at.Column, Removed: removed})
	}
	for _, cand := range cands {
		leaves := c.changedUnder(cand)
		if len(leaves) == 0 {
			continue
		}
		if c.base == nil || c.head == nil || !hasPos(c.base, cand) || !hasPos(c.head, cand) {
			// Added or removed whole (a host's entry).
			if newOnOneSide(c, cand) {
				add(cand)
				continue
			}
		}
		for _, l := range leaves {
			for _, s := range []*schema.Stack{c.head, c.base} {
				if s == nil {
					continue
				}
				// Only a value the author wrote is named: a default
				// that moved has its cause elsewhere.
				if _, ok := s.Positions[l]; ok && underField(l, cand) {
					add(l)
					break
				}
			}
		}
	}
	return out
}

// hasPos reports whether the author of s wrote field.
func hasPos(s *schema.Stack, field string) bool {
	_, ok := s.Positions[field]
	return ok
}

// newOnOneSide reports whether field has values on one side only.
func newOnOneSide(c *stackChange, field string) bool {
	return has(c.keysBase, field) != has(c.keysHead, field)
}
