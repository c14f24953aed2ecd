package schema

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// FileExts are the endings a stack file's name may have: CUE, Jsonnet
// and Jsonnet libraries.
var FileExts = []string{".cue", ".jsonnet", ".libsonnet"}

const namePattern = `^[a-z][a-z0-9-]{0,62}$`

var nameRE = regexp.MustCompile(namePattern)

// CheckName reports whether name may be a stack's or a host's name
// (#Name), saying what one is when it may not.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%q is no name: want %s", name, patternDescriptions[namePattern])
	}
	return nil
}

// CheckFileName reports whether p, a stack file's slash path, may be
// one: its base name is a #Name followed by one of FileExts, and no
// element of the path holds a control or other unprintable character
// (it is shown in diagnostics and in every generated file's header,
// where a newline would start a line of its own).
func CheckFileName(p string) error {
	if !utf8.ValidString(p) {
		return fmt.Errorf("stack file %q: its name is not valid UTF-8", p)
	}
	if i := strings.IndexFunc(p, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }); i >= 0 {
		return fmt.Errorf("stack file %q: its name holds an unprintable character at byte %d", p, i)
	}
	base := path.Base(p)
	ext := path.Ext(base)
	valid := false
	for _, e := range FileExts {
		valid = valid || ext == e
	}
	if !valid || !nameRE.MatchString(strings.TrimSuffix(base, ext)) {
		return fmt.Errorf("stack file %q: its name must be %s, then %s", p, patternDescriptions[namePattern], strings.Join(FileExts, ", "))
	}
	return nil
}
