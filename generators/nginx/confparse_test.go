package nginx

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// This file reads rendered configuration back the way nginx does, so
// tests assert on directives and blocks rather than on text.

// directive is one parsed nginx directive; block is nil for a simple
// directive and non-nil (possibly empty) for a block.
type directive struct {
	name  string
	args  []string
	block []*directive
	file  string // the rendered file it came from
}

func (d *directive) String() string {
	return strings.TrimSpace(d.name + " " + strings.Join(d.args, " "))
}

// tokenKind says how a token ended, as ngx_conf_read_token reports it.
type tokenKind int

const (
	tokEnd        tokenKind = iota // ";" ended a directive
	tokBlockStart                  // "{" started a block
	tokBlockDone                   // "}" ended a block
	tokEOF
)

// readDirective is ngx_conf_read_token (nginx 1.22,
// src/core/ngx_conf_file.c) transcribed: it reads the words of one
// directive from src starting at pos and reports what ended it, with
// the same quoting, escaping, comment and variable rules.
func readDirective(src string, pos int) (words []string, kind tokenKind, next int, err error) {
	var (
		needSpace, lastSpace           = false, true
		sharpComment, variable, quoted bool
		sQuoted, dQuoted               bool
		start                          int
	)
	for {
		if pos >= len(src) {
			if len(words) > 0 || !lastSpace {
				return nil, 0, pos, fmt.Errorf("unexpected end of file, expecting \";\" or \"}\"")
			}
			return nil, tokEOF, pos, nil
		}
		ch := src[pos]
		pos++
		if ch == '\n' && sharpComment {
			sharpComment = false
		}
		if sharpComment {
			continue
		}
		if quoted {
			quoted = false
			continue
		}
		if needSpace {
			switch ch {
			case ' ', '\t', '\r', '\n':
				lastSpace, needSpace = true, false
				continue
			case ';':
				return words, tokEnd, pos, nil
			case '{':
				return words, tokBlockStart, pos, nil
			case ')':
				lastSpace, needSpace = true, false
			default:
				return nil, 0, pos, fmt.Errorf("unexpected %q", ch)
			}
		}
		if lastSpace {
			start = pos - 1
			switch ch {
			case ' ', '\t', '\r', '\n':
				continue
			case ';', '{':
				if len(words) == 0 {
					return nil, 0, pos, fmt.Errorf("unexpected %q", ch)
				}
				if ch == '{' {
					return words, tokBlockStart, pos, nil
				}
				return words, tokEnd, pos, nil
			case '}':
				if len(words) != 0 {
					return nil, 0, pos, fmt.Errorf("unexpected \"}\"")
				}
				return nil, tokBlockDone, pos, nil
			case '#':
				sharpComment = true
				continue
			case '\\':
				quoted, lastSpace = true, false
				continue
			case '"':
				start++
				dQuoted, lastSpace = true, false
				continue
			case '\'':
				start++
				sQuoted, lastSpace = true, false
				continue
			case '$':
				variable, lastSpace = true, false
				continue
			default:
				lastSpace = false
			}
			continue
		}
		if ch == '{' && variable {
			continue
		}
		variable = false
		if ch == '\\' {
			quoted = true
			continue
		}
		if ch == '$' {
			variable = true
			continue
		}
		found := false
		switch {
		case dQuoted:
			if ch == '"' {
				dQuoted, needSpace, found = false, true, true
			}
		case sQuoted:
			if ch == '\'' {
				sQuoted, needSpace, found = false, true, true
			}
		case ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' || ch == ';' || ch == '{':
			lastSpace, found = true, true
		}
		if !found {
			continue
		}
		words = append(words, unescape(src[start:pos-1]))
		if ch == ';' {
			return words, tokEnd, pos, nil
		}
		if ch == '{' {
			return words, tokBlockStart, pos, nil
		}
	}
}

// unescape is the copy loop of ngx_conf_read_token.
func unescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '\\' && i+1 < len(s) {
			switch s[i+1] {
			case '"', '\'', '\\':
				i++
			case 't':
				b.WriteByte('\t')
				i += 2
				continue
			case 'r':
				b.WriteByte('\r')
				i += 2
				continue
			case 'n':
				b.WriteByte('\n')
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// parseConf parses a whole file into directives.
func parseConf(file, src string) ([]*directive, error) {
	ds, next, err := parseBlock(file, src, 0, false)
	if err != nil {
		return nil, err
	}
	if next != len(src) {
		return nil, fmt.Errorf("%s: trailing input at %d", file, next)
	}
	return ds, nil
}

func parseBlock(file, src string, pos int, inBlock bool) ([]*directive, int, error) {
	out := []*directive{}
	for {
		words, kind, next, err := readDirective(src, pos)
		if err != nil {
			return nil, next, fmt.Errorf("%s: offset %d: %w", file, next, err)
		}
		pos = next
		switch kind {
		case tokEOF:
			if inBlock {
				return nil, pos, fmt.Errorf("%s: unexpected end of file, expecting \"}\"", file)
			}
			return out, pos, nil
		case tokBlockDone:
			if !inBlock {
				return nil, pos, fmt.Errorf("%s: unexpected \"}\"", file)
			}
			return out, pos, nil
		case tokEnd:
			out = append(out, &directive{name: words[0], args: words[1:], file: file})
		case tokBlockStart:
			inner, next, err := parseBlock(file, src, pos, true)
			if err != nil {
				return nil, next, err
			}
			pos = next
			out = append(out, &directive{name: words[0], args: words[1:], block: inner, file: file})
		}
	}
}

// hostConf is one host's rendered nginx configuration, parsed from
// nginx.conf with the includes of rendered files expanded in place.
type hostConf struct {
	root  string            // the sandbox root the files were rendered with
	files map[string]string // host path without leading slash → content
	top   []*directive
}

func loadHostConf(root string, files map[string]string) (*hostConf, error) {
	hc := &hostConf{root: root, files: files}
	top, err := hc.parseExpanded(ConfPath, 0)
	if err != nil {
		return nil, err
	}
	hc.top = top
	return hc, nil
}

func (hc *hostConf) parseExpanded(p string, depth int) ([]*directive, error) {
	if depth > 8 {
		return nil, fmt.Errorf("include loop at %s", p)
	}
	ds, err := parseConf(p, hc.files[p])
	if err != nil {
		return nil, err
	}
	return hc.expand(ds, depth)
}

func (hc *hostConf) expand(ds []*directive, depth int) ([]*directive, error) {
	var out []*directive
	for _, d := range ds {
		if d.name == "include" && len(d.args) == 1 {
			pattern, ok := strings.CutPrefix(d.args[0], hc.root+"/")
			if !ok {
				return nil, fmt.Errorf("%s: include %s is outside the sandbox root %s", d.file, d.args[0], hc.root)
			}
			var matched []string
			for p := range hc.files {
				if ok, _ := path.Match(pattern, p); ok {
					matched = append(matched, p)
				}
			}
			slices.Sort(matched) // nginx sorts glob matches too
			if len(matched) == 0 {
				out = append(out, d) // not rendered by us (mime.types)
				continue
			}
			for _, m := range matched {
				inner, err := hc.parseExpanded(m, depth+1)
				if err != nil {
					return nil, err
				}
				out = append(out, inner...)
			}
			continue
		}
		if d.block != nil {
			inner, err := hc.expand(d.block, depth)
			if err != nil {
				return nil, err
			}
			d = &directive{name: d.name, args: d.args, block: inner, file: d.file}
		}
		out = append(out, d)
	}
	return out, nil
}

// find returns the directives named name among ds.
func find(ds []*directive, name string) []*directive {
	var out []*directive
	for _, d := range ds {
		if d.name == name {
			out = append(out, d)
		}
	}
	return out
}

// one returns the single directive named name, or nil.
func one(ds []*directive, name string) *directive {
	if f := find(ds, name); len(f) == 1 {
		return f[0]
	}
	return nil
}

func (hc *hostConf) http() []*directive {
	if h := one(hc.top, "http"); h != nil {
		return h.block
	}
	return nil
}

func (hc *hostConf) servers() []*directive { return find(hc.http(), "server") }

// isTLS reports whether a server listens with ssl.
func isTLS(server *directive) bool {
	for _, l := range find(server.block, "listen") {
		if slices.Contains(l.args, "ssl") {
			return true
		}
	}
	return false
}

// headerNames lists the header names a directive list adds.
func headerNames(ds []*directive) []string {
	var out []string
	for _, d := range find(ds, "add_header") {
		out = append(out, d.args[0])
	}
	return out
}

// walk visits every directive below ds, depth first.
func walk(ds []*directive, fn func(*directive)) {
	for _, d := range ds {
		fn(d)
		walk(d.block, fn)
	}
}
