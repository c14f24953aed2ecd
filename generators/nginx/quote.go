package nginx

import (
	"fmt"
	"strings"
)

// Quote returns s as one double-quoted nginx token that the nginx
// configuration parser reads back as exactly s. nginx has no escape for
// "$" (directives that take variables would expand it) and a control
// character has no place in a configuration value, so both are refused
// rather than rendered into something that means more than s.
func Quote(s string) (string, error) {
	if err := checkValue(s); err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String(), nil
}

// word returns s as one nginx token: bare when every byte is one that
// never means anything to the configuration parser (so paths and names
// stay readable), quoted otherwise.
func word(s string) (string, error) {
	if err := checkValue(s); err != nil {
		return "", err
	}
	if s == "" {
		return `""`, nil
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
		switch c := s[i]; {
		case c < 0x20 || c == 0x7f:
			return fmt.Errorf("value %q contains a control character", s)
		case c == '$':
			return fmt.Errorf("value %q contains \"$\", which nginx would expand as a variable", s)
		}
	}
	return nil
}

func bare(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("._/:@+=,~%*-", c) >= 0
}
