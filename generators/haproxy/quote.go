package haproxy

import (
	"fmt"
	"strings"
)

// Quote returns s as one HAProxy configuration word that the 2.6 parser
// reads back as exactly s (configuration.txt, 2.2 "Quoting and
// escaping"). Strong (single) quotes are used when they can hold s, since
// nothing at all is interpreted inside them: no "$" expansion, no
// backslash, no "#". A single quote cannot appear inside them, so such a
// string is weakly (double) quoted with "\", "\"" and "$" escaped, the
// only characters interpreted there. Control characters have no place in
// a configuration value and are refused rather than escaped: a rendered
// line must say on its face what HAProxy will see.
func Quote(s string) (string, error) {
	if err := checkValue(s); err != nil {
		return "", err
	}
	if !strings.Contains(s, "'") {
		return "'" + s + "'", nil
	}
	var b strings.Builder
	b.Grow(len(s) + 4)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"', '$':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String(), nil
}

// word returns s as one HAProxy word: bare when every byte is one the
// parser never treats specially (so addresses, paths and names stay
// readable), quoted otherwise.
func word(s string) (string, error) {
	if s == "" {
		return Quote(s)
	}
	for i := 0; i < len(s); i++ {
		if !bare(s[i]) {
			return Quote(s)
		}
	}
	return s, nil
}

func checkValue(s string) error {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("value %q contains a control character", s)
		}
	}
	return nil
}

// bare reports whether c means only itself outside quotes. The set is
// deliberately small: "{", "}", "(", ")" and "!" carry meaning in ACL
// conditions even though the tokenizer passes them through.
func bare(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._/:@+=,~-", c) >= 0
}
