package jsonnet

import (
	"regexp"
	"strconv"
	"strings"

	gojsonnet "github.com/google/go-jsonnet"
	"github.com/google/go-jsonnet/ast"

	"github.com/hacompile/hacompile/schema"
)

// staticError is go-jsonnet's parse error (its type is internal).
type staticError interface {
	error
	Loc() ast.LocationRange
}

// reLocated is the "file:line:col[-col] message" or
// "file:(line:col)-(line:col) message" go-jsonnet writes when an
// imported file does not parse.
var reLocated = regexp.MustCompile(`^(\S+?):(?:(\d+):(\d+)(?:-\d+)?|\((\d+):(\d+)\)-\(\d+:\d+\)) (.*)$`)

// diagnose turns a go-jsonnet error into a diagnostic at the innermost
// position in the author's files. A runtime error during manifestation
// also names the field path being written, as the schema's diagnostics
// do. file is the file evaluated, for errors with no position.
func diagnose(err error, file string, imp *importer) schema.Diagnostic {
	d := schema.Diagnostic{File: file, Message: err.Error()}
	switch e := err.(type) {
	case gojsonnet.RuntimeError:
		d.Message = e.Msg
		for i := len(e.StackTrace) - 1; i >= 0; i-- {
			if loc := e.StackTrace[i].Loc; loc.IsSet() && !strings.HasPrefix(fileOf(loc), "<") {
				d.File, d.Line, d.Column = fileOf(loc), loc.Begin.Line, loc.Begin.Column
				break
			}
		}
		d.Path = manifestPath(e.StackTrace)
		// An imported file that does not parse is reported at the
		// import; its own position is better.
		if m := reLocated.FindStringSubmatch(e.Msg); m != nil && imp != nil && imp.path[m[1]] != "" {
			line, col := m[2], m[3]
			if line == "" {
				line, col = m[4], m[5]
			}
			d.File, d.Message = m[1], m[6]
			d.Line, _ = strconv.Atoi(line)
			d.Column, _ = strconv.Atoi(col)
		}
	case staticError:
		loc := e.Loc()
		d.Message = strings.TrimPrefix(e.Error(), loc.String()+" ")
		if flag := flagOf(fileOf(loc)); flag != "" {
			d.Message = flag + ": " + d.Message
		} else if loc.IsSet() {
			d.File, d.Line, d.Column = fileOf(loc), loc.Begin.Line, loc.Begin.Column
		}
	}
	return d
}

// fileOf is the name of the file a location is in: the name the
// importer returned, or a pseudo file such as "<extvar:k>".
func fileOf(loc ast.LocationRange) string {
	if loc.File != nil && loc.File.DiagnosticFileName != "" {
		return string(loc.File.DiagnosticFileName)
	}
	return loc.FileName
}

// flagOf names the command line flag behind one of go-jsonnet's
// pseudo files, "<extvar:k>" and "<top-level-arg:k>": Jsonnet code
// given there has no file to point into.
func flagOf(file string) string {
	if k, ok := strings.CutPrefix(file, "<extvar:"); ok {
		return "--ext-code " + strings.TrimSuffix(k, ">")
	}
	if k, ok := strings.CutPrefix(file, "<top-level-arg:"); ok {
		return "--tla-code " + strings.TrimSuffix(k, ">")
	}
	return ""
}

// manifestPath reads the field path go-jsonnet was writing out of its
// "Field" and "Array element" frames.
func manifestPath(trace []gojsonnet.TraceFrame) string {
	p := ""
	for _, f := range trace {
		name := f.Loc.FileName
		if f.Loc.IsSet() {
			continue
		}
		if q, ok := strings.CutPrefix(name, "Field "); ok {
			if field, err := strconv.Unquote(q); err == nil {
				p = schema.FieldPath(p, field)
			}
		} else if n, ok := strings.CutPrefix(name, "Array element "); ok {
			if i, err := strconv.Atoi(n); err == nil {
				p = schema.IndexPath(p, i)
			}
		}
	}
	return p
}
