package artifact

import "strings"

// ShellQuote returns s as one word of a POSIX shell command line: as it
// is when every byte is one the shell gives no meaning to (letters,
// digits and @%+=:,./_-), so plain values read as written; otherwise in
// single quotes, each ' written '\”. Every value of a stack that reaches
// a shell command goes through it, whatever the schema already allowed.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool { return !shellSafe(r) }) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellSafe(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("@%+=:,./_-", r)
}
