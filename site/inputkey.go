package site

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"reflect"
	"sync"
)

// inputKey is the sha256 of everything a page is made from: the program
// that renders it (code: its build ID, which covers the templates and the
// layout) and vs, walked field by field, unexported ones too, so that a
// field added to a page's data is in its key without anyone remembering
// to add it. It reports false for a value it cannot walk soundly (a
// map, whose order is not the page's, a func, a channel): such a page is
// rendered every time.
func inputKey(code string, vs ...any) ([sha256.Size]byte, bool) {
	var key [sha256.Size]byte
	if code == "" {
		return key, false
	}
	bp := keyBufs.Get().(*[]byte)
	defer keyBufs.Put(bp)
	k := keyer{b: (*bp)[:0]}
	k.str(code)
	for _, v := range vs {
		if !k.value(reflect.ValueOf(v)) {
			return key, false
		}
	}
	*bp = k.b
	return sha256.Sum256(k.b), true
}

// keyBufs hold what a key hashes, written whole and hashed at once (a
// host page's is a few kilobytes: one write per field was most of the
// cost).
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

type keyer struct {
	b     []byte
	depth int
}

// maxKeyDepth bounds how deep a key walks: a page's data is a shallow
// tree, and a value that points back into itself has no key.
const maxKeyDepth = 32

func (k *keyer) uint(u uint64) { k.b = binary.AppendUvarint(k.b, u) }

// str writes s with its length first, so that no two sequences of
// strings write the same bytes.
func (k *keyer) str(s string) {
	k.uint(uint64(len(s)))
	k.b = append(k.b, s...)
}

func (k *keyer) value(v reflect.Value) bool {
	if k.depth++; k.depth > maxKeyDepth {
		return false
	}
	ok := k.walk(v)
	k.depth--
	return ok
}

func (k *keyer) walk(v reflect.Value) bool {
	if !v.IsValid() {
		k.uint(0)
		return true
	}
	// The kind first: a value of one kind never writes what one of
	// another writes.
	k.uint(uint64(v.Kind()) + 1)
	switch v.Kind() {
	case reflect.String:
		k.str(v.String())
	case reflect.Bool:
		if v.Bool() {
			k.uint(1)
		} else {
			k.uint(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		k.uint(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		k.uint(v.Uint())
	case reflect.Float32, reflect.Float64:
		k.uint(math.Float64bits(v.Float()))
	case reflect.Slice, reflect.Array:
		k.uint(uint64(v.Len()))
		for i := range v.Len() {
			if !k.value(v.Index(i)) {
				return false
			}
		}
	case reflect.Struct:
		t := v.Type()
		k.str(t.PkgPath()) // two strings, each with its length: no concatenation to allocate
		k.str(t.Name())
		k.uint(uint64(v.NumField()))
		for i := range v.NumField() {
			if !k.value(v.Field(i)) {
				return false
			}
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			k.uint(0)
			return true
		}
		k.uint(1)
		if v.Kind() == reflect.Interface {
			k.str(v.Elem().Type().String())
		}
		return k.value(v.Elem())
	default: // maps, funcs, channels, unsafe pointers, complex numbers
		return false
	}
	return true
}
