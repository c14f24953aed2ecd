package artifact

import "bytes"

// Same hands out one copy of each distinct content: the hosts of a
// fleet whose files of a kind come out alike share their bytes rather
// than each holding its own. The zero value is not usable; make one
// per render (it is not safe for concurrent use).
type Same map[string][]byte

// Of returns content equal to b: the copy handed out before for equal
// bytes, or a new one (capped, so nothing appends to a shared copy). b
// itself is never kept: a writer may reuse it.
func (m Same) Of(b []byte) []byte {
	if c, ok := m[string(b)]; ok {
		return c
	}
	c := bytes.Clone(b)
	if c == nil {
		c = []byte{}
	}
	c = c[:len(c):len(c)]
	m[string(c)] = c
	return c
}
