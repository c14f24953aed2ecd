package compile

import (
	"strconv"
	"unicode/utf8"
)

// appendManifestJSON appends m as json.MarshalIndent(m, "", "  ") writes
// it, byte for byte (TestManifestJSONIsMarshalIndent): the reflection
// of encoding/json over a 10,000-host fleet's 160,000 entries cost most
// of a second of every build.
func appendManifestJSON(b []byte, m *Manifest) []byte {
	b = append(b, "{\n  \"stack\": "...)
	b = appendJSONString(b, m.Stack)
	b = append(b, ",\n  \"source\": "...)
	b = appendJSONString(b, m.Source)
	b = append(b, ",\n  \"source_sha256\": "...)
	b = appendJSONString(b, m.SourceSHA256)
	b = append(b, ",\n  \"hosts\": "...)
	switch {
	case m.Hosts == nil:
		b = append(b, "null"...)
	case len(m.Hosts) == 0:
		b = append(b, "[]"...)
	default:
		b = append(b, '[')
		for i, h := range m.Hosts {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, "\n    "...)
			b = appendJSONString(b, h)
		}
		b = append(b, "\n  ]"...)
	}
	b = append(b, ",\n  \"files\": "...)
	switch {
	case m.Files == nil:
		b = append(b, "null"...)
	case len(m.Files) == 0:
		b = append(b, "[]"...)
	default:
		b = append(b, '[')
		for i := range m.Files {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEntryJSON(b, &m.Files[i])
		}
		b = append(b, "\n  ]"...)
	}
	return append(b, "\n}"...)
}

// appendEntryJSON appends one entry of the manifest's files, indented
// as an element of them.
func appendEntryJSON(b []byte, e *ManifestEntry) []byte {
	b = append(b, "\n    {"...)
	if e.Host != "" { // omitempty
		b = append(b, "\n      \"host\": "...)
		b = appendJSONString(b, e.Host)
		b = append(b, ',')
	}
	b = append(b, "\n      \"path\": "...)
	b = appendJSONString(b, e.Path)
	b = append(b, ",\n      \"kind\": "...)
	b = appendJSONString(b, e.Kind)
	b = append(b, ",\n      \"sha256\": "...)
	b = appendJSONString(b, e.SHA256)
	b = append(b, ",\n      \"size\": "...)
	b = strconv.AppendInt(b, int64(e.Size), 10)
	b = append(b, ",\n      \"mode\": "...)
	b = appendJSONString(b, e.Mode)
	b = append(b, ",\n      \"owner\": "...)
	b = appendJSONString(b, e.Owner)
	// omitzero: an action without steps (Action.IsZero) is left out;
	// one with steps is its shell text (Action.MarshalJSON).
	if !e.Validate.IsZero() {
		b = append(b, ",\n      \"validate\": "...)
		b = appendJSONString(b, e.Validate.String())
	}
	if !e.Reload.IsZero() {
		b = append(b, ",\n      \"reload\": "...)
		b = appendJSONString(b, e.Reload.String())
	}
	return append(b, "\n    }"...)
}

// appendJSONString appends s quoted as encoding/json quotes strings (with
// HTML escaping, as json.Marshal and json.MarshalIndent do): <, > and &
// and control characters as \u00XX except \b \f \n \r \t, invalid UTF-8
// as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
