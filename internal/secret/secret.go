// Package secret recognizes text that looks like a secret: a URL with a
// password, a private key, a password or token assignment, a cloud or
// API key. Stacks, out/ and the messages hacompile prints hold none.
package secret

import (
	"regexp"
	"strings"
	"unicode/utf8"
)

var patterns = []struct {
	re   *regexp.Regexp
	what string
}{
	// The user may be empty: redis://:password@host/.
	{regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]*:[^/\s@]+@`), "a URL with a password"},
	{regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----`), "a private key"},
	// As environment files name them too: DB_PASSWORD=, PGPASSWORD=,
	// API_TOKEN=, SECRET_KEY=, AWS_SECRET_ACCESS_KEY=.
	{regexp.MustCompile(`(?i)(passw(or)?d|secret([_-]?(access[_-]?)?key)?|token|api[_-]?key)\s*[:=]\s*\S+`), "a password or token assignment"},
	{regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`), "an AWS access key id"},
	{regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{36,}\b`), "a GitHub token"},
	{regexp.MustCompile(`\bsk_live_[A-Za-z0-9]{16,}\b`), "a Stripe secret key"},
	// Webhook and ping URLs whose path is the token: whoever has the
	// URL may post to the channel or silence the dead man's switch.
	{regexp.MustCompile(`\bhooks\.slack\.com/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]+`), "a Slack webhook URL (its path is the token)"},
	{regexp.MustCompile(`\bdiscord(app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]+`), "a Discord webhook URL (its path is the token)"},
	{regexp.MustCompile(`\.webhook\.office\.com/webhookb2/[A-Za-z0-9@/-]+`), "a Microsoft Teams webhook URL (its path is the token)"},
	{regexp.MustCompile(`\bhc-ping\.com/[0-9A-Za-z_-]{8,}`), "a Healthchecks ping URL (its path is the token)"},
}

// In says what secret text s looks like to hold ("a URL with a
// password"), or "" when none: the secret-inline rule's test, also run
// over the files custom generators write.
func In(s string) string {
	what, _ := Find(s)
	return what
}

// Find is In with where in s the text In names starts (a byte offset),
// or "", -1.
func Find(s string) (what string, at int) {
	if !mayMatch(s) {
		return "", -1
	}
	for _, p := range patterns {
		if loc := p.re.FindStringIndex(s); loc != nil {
			return p.what, loc[0]
		}
	}
	return "", -1
}

// mayMatch reports whether any of patterns may match s: false
// only when s lacks what each needs to match (a rule checks every string
// of a 10,000-host stack, most of them addresses, sizes and names, and
// the procedures' previews check it again for each change they show).
// A string with a byte past ASCII may match the case-insensitive pattern
// in a way an ASCII test does not see (the Kelvin sign folds to k): it
// always may.
func mayMatch(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	l := strings.ToLower(s) // s itself when it has no upper case
	return strings.Contains(s, "://") && strings.Contains(s, "@") ||
		strings.Contains(s, "-----BEGIN ") ||
		strings.ContainsAny(s, ":=") && (strings.Contains(l, "passw") || strings.Contains(l, "secret") || strings.Contains(l, "token") || strings.Contains(l, "api")) ||
		strings.Contains(s, "AKIA") || strings.Contains(s, "ASIA") ||
		strings.Contains(s, "gh") ||
		strings.Contains(s, "sk_live_") ||
		strings.Contains(s, "hooks.slack.com") || strings.Contains(s, "discord") ||
		strings.Contains(s, ".webhook.office.com") || strings.Contains(s, "hc-ping.com")
}

// urlPassword is the password of a URL's user (https://user:token@host/),
// with what comes before it.
var urlPassword = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*:)[^/@]*@`)

// RedactURL is u as a message shows it: its password, if it has one, is
// xxxxx, as url.URL.Redacted writes it. u need not parse (a template, a
// URL refused for a bad escape).
func RedactURL(u string) string {
	return urlPassword.ReplaceAllString(u, "${1}xxxxx@")
}
