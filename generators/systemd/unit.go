package systemd

import "strings"

// unit writes a unit file: sections, settings and "#" comments, in the
// order given. Values are written as they are; callers quote them.
type unit struct {
	b        strings.Builder
	sections int
}

func (u *unit) raw(s string) { u.b.WriteString(s) }

func (u *unit) section(name string) {
	if u.sections > 0 || u.b.Len() > 0 {
		u.b.WriteByte('\n')
	}
	u.sections++
	u.b.WriteString("[" + name + "]\n")
}

func (u *unit) comment(lines ...string) {
	for _, l := range lines {
		u.b.WriteString("# " + l + "\n")
	}
}

func (u *unit) set(key, value string) { u.b.WriteString(key + "=" + value + "\n") }

func (u *unit) bytes() []byte { return []byte(u.b.String()) }
