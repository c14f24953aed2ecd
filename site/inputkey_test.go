package site

import "testing"

// Two inputs that differ anywhere have different keys: in an unexported
// field, in where strings split, in nil against empty, in the type of
// an interface's value, or in the program.
func TestInputKeyTellsInputsApart(t *testing.T) {
	type inner struct {
		A      string
		hidden int
	}
	type data struct {
		S   []string
		P   *inner
		I   any
		In  inner
		Arr [2]bool
	}
	base := func() data {
		return data{S: []string{"ab", "c"}, P: &inner{"x", 1}, I: 3, In: inner{"y", 2}, Arr: [2]bool{true, false}}
	}
	variants := map[string]func(*data){
		"strings split elsewhere": func(d *data) { d.S = []string{"a", "bc"} },
		"one string more":         func(d *data) { d.S = append(d.S, "") },
		"unexported field":        func(d *data) { d.In.hidden = 3 },
		"pointer nil":             func(d *data) { d.P = nil },
		"pointer to zero":         func(d *data) { d.P = &inner{} },
		"interface type":          func(d *data) { d.I = int64(3) },
		"interface nil":           func(d *data) { d.I = nil },
		"array element":           func(d *data) { d.Arr[1] = true },
		"nested field":            func(d *data) { d.P.A = "z" },
	}
	k0, ok := inputKey("code", base())
	if !ok {
		t.Fatal("no key for plain data")
	}
	if k, _ := inputKey("code", base()); k != k0 {
		t.Error("equal inputs have different keys")
	}
	if k, _ := inputKey("other code", base()); k == k0 {
		t.Error("another program's key is the same")
	}
	seen := map[[32]byte]string{}
	for name, change := range variants {
		d := base()
		change(&d)
		k, ok := inputKey("code", d)
		if !ok {
			t.Errorf("%s: no key", name)
		}
		if k == k0 {
			t.Errorf("%s: same key as the original", name)
		}
		if other, dup := seen[k]; dup {
			t.Errorf("%s and %s: same key", name, other)
		}
		seen[k] = name
	}
	// Two values in sequence are not one value split elsewhere.
	a, _ := inputKey("code", "ab", "c")
	b, _ := inputKey("code", "a", "bc")
	if a == b {
		t.Error(`("ab", "c") and ("a", "bc") have the same key`)
	}
}

// What a key cannot walk soundly has none: maps (no order), funcs,
// values that point back into themselves, and no program identity.
func TestInputKeyRefuses(t *testing.T) {
	type loop struct{ Next *loop }
	l := &loop{}
	l.Next = l
	for name, v := range map[string]any{
		"map":  map[string]int{"a": 1},
		"func": struct{ F func() }{func() {}},
		"loop": l,
	} {
		if _, ok := inputKey("code", v); ok {
			t.Errorf("%s: keyed", name)
		}
	}
	if _, ok := inputKey("", "x"); ok {
		t.Error("keyed without a program identity")
	}
}
