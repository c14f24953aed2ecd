package rules

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"

	"github.com/hacompile/hacompile/internal/secret"
	"github.com/hacompile/hacompile/schema"
)

// CheckSource is the secret-inline rule over src, the text of the stack
// file s was read from: a comment, a hidden field or a local the stack
// never outputs is in no value the rule sees, but the stack's runbook
// page shows the file as written. What found (the stack's findings)
// already names is left to it: a line it names, and a line of a value it
// names (a key written as a multi-line string).
func CheckSource(s *schema.Stack, src []byte, found []schema.Diagnostic) []schema.Diagnostic {
	named := map[int]bool{}
	for _, d := range found {
		if d.Rule == "secret-inline" && d.File == s.Source {
			named[d.Line] = true
		}
	}
	var values []string
	if len(named) > 0 {
		walkStrings(reflect.ValueOf(*s), &strPath{}, func(_ *strPath, v string) {
			if secret.In(v) != "" {
				values = append(values, v)
			}
		})
	}
	inValue := func(line string) bool {
		line = strings.TrimSpace(line)
		for _, v := range values {
			if strings.Contains(v, line) {
				return true
			}
		}
		return false
	}
	var out []schema.Diagnostic
	for n := 1; len(src) > 0; n++ {
		line := src
		if i := bytes.IndexByte(src, '\n'); i >= 0 {
			line, src = src[:i], src[i+1:]
		} else {
			src = nil
		}
		what, at := secret.Find(string(line))
		if what == "" || named[n] || inValue(string(line)) {
			continue
		}
		out = append(out, schema.Diagnostic{File: s.Source, Line: n, Column: at + 1, Severity: "error", Rule: "secret-inline",
			Message: fmt.Sprintf("looks like %s in the stack file's text, which its runbook page shows whole (comments, hidden fields and locals too); secrets belong in a file on the host (app.environment_file, mode 0600) that the rendered config references", what)})
	}
	return out
}
