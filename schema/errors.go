package schema

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Diagnostic is one problem in a stack, positioned as precisely as the
// source allows.
type Diagnostic struct {
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Column int    `json:"column,omitempty"`
	Path   string `json:"path,omitempty"`
	// Severity is "error", "warning", or "waived" for a warning a
	// waiver in the stack accepts.
	Severity string `json:"severity"`
	Message  string `json:"message"`
	// Rule is the HA rule's id, for findings of the rules.
	Rule string `json:"rule,omitempty"`
	// Hint is what to do about an error of the command line, which its
	// text says on a line "hacompile: hint: …" of its own.
	Hint string `json:"hint,omitempty"`
}

// String renders "file:line:col: path: [warning: ]message [rule]".
func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		b.WriteString(d.File)
		if d.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", d.Line, d.Column)
		}
		b.WriteString(": ")
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	if d.Severity == "warning" || d.Severity == "waived" {
		b.WriteString(d.Severity + ": ")
	}
	b.WriteString(d.Message)
	if d.Rule != "" {
		b.WriteString(" [" + d.Rule + "]")
	}
	return b.String()
}

// Error is a set of diagnostics, sorted by file, line, column, path and
// message.
type Error struct {
	Diags []Diagnostic
}

func newError(diags []Diagnostic) *Error {
	for i := range diags {
		if diags[i].Severity == "" {
			diags[i].Severity = "error"
		}
	}
	SortDiagnostics(diags)
	diags = slices.Compact(diags)
	return &Error{Diags: diags}
}

// SortDiagnostics orders diagnostics by position, then path and message.
func SortDiagnostics(diags []Diagnostic) {
	slices.SortFunc(diags, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.File, b.File),
			cmp.Compare(a.Line, b.Line),
			cmp.Compare(a.Column, b.Column),
			cmp.Compare(a.Path, b.Path),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Diags))
	for i, d := range e.Diags {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}
