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

// Unit writes a unit file for other generators (Celery's units, drop-ins
// for units they do not own), with the same layout as this package's.
type Unit struct{ u unit }

// Raw writes s as is (a header).
func (u *Unit) Raw(s string) { u.u.raw(s) }

// Section starts a [name] section.
func (u *Unit) Section(name string) { u.u.section(name) }

// Comment writes each line as a "# " comment.
func (u *Unit) Comment(lines ...string) { u.u.comment(lines...) }

// Set writes key=value; the caller quotes value (ExecLine, SpecEscape).
func (u *Unit) Set(key, value string) { u.u.set(key, value) }

// Sandbox writes the confinement shared by every unit running app code.
// user and group own the writable directories, created before start.
func (u *Unit) Sandbox(writable []string, home bool, user, group string) {
	sandbox(&u.u, writable, home, user, group)
}

// Bytes returns the file.
func (u *Unit) Bytes() []byte { return u.u.bytes() }

// SpecEscape makes free text (a Description=) literal to systemd's
// specifier expansion.
func SpecEscape(s string) string { return specEscape(s) }

// PlainPath returns p when a unit can hold it bare (the paths the schema
// allows), or an error naming field.
func PlainPath(field, p string) (string, error) { return checkPath(field, p) }
