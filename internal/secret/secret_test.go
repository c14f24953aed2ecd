package secret

import (
	"strings"
	"testing"
)

// regexpIn is In without mayMatch: every pattern tried.
func regexpIn(s string) string {
	for _, p := range patterns {
		if p.re.MatchString(s) {
			return p.what
		}
	}
	return ""
}

// secretSeeds are strings each pattern matches, near misses, and the
// strings a fleet's stack is mostly made of.
var secretSeeds = []string{
	"postgres://app:hunter2@db.internal/app", "amqp://guest:guest@mq:5672/", "https://example.com/a@b", "user@host",
	"-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN PRIVATE KEY-----", "-----BEGIN CERTIFICATE-----",
	"PASSWORD=x", "Password: hunter2", "passwd=1", "api_key=abc", "API-KEY: z", "apikey=1", "token = t0k", "Secret:s", "password", "my token",
	"AKIAABCDEFGHIJKLMNOP", "ASIAABCDEFGHIJKLMNOP", "xAKIAABCDEFGHIJKLMNOP",
	"ghp_" + strings.Repeat("a", 36), "gho_" + strings.Repeat("Z9", 18), "ghp_short",
	"sk_live_" + strings.Repeat("x", 16), "sk_live_short",
	"pa\u017f\u017fword=x", "\u212Aey", "TOKEN\u00a0=1", "api_\u212Aey=1",
	"DB_PASSWORD=x", "PGPASSWORD=x", "SECRET_KEY=x", "AWS_SECRET_ACCESS_KEY=x", "password_file: x", "redis://:pw@cache/0",
	"https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/abcdEFGH1234", "https://hooks.slack.com/services/", "https://discord.com/api/webhooks/123456/abc-DEF_1",
	"https://discord.com/invite/x", "https://x.webhook.office.com/webhookb2/abc@def/IncomingWebhook/1/2", "https://hc-ping.com/0f6a2c3e-6b1d-4c1e-9a55-1c2d3e4f5a6b",
	"https://hc-ping.com/", "https://hc.example.com/ping/shop",
	"10.100.0.2", "s-2vcpu-4gb", "app2", "fleet.wsgi:application", "/srv/fleet/venv", "ops@example.com", "", "gthread",
}

// mayMatch leaves out only strings no pattern matches: In says
// what the patterns say of every seed, several of which they match.
func TestInFilterKeepsMatches(t *testing.T) {
	matched := 0
	for _, s := range secretSeeds {
		want := regexpIn(s)
		if got := In(s); got != want {
			t.Errorf("In(%q) = %q; the patterns say %q", s, got, want)
		}
		if want != "" {
			matched++
		}
	}
	if matched < 12 {
		t.Errorf("the patterns match %d seeds; want a seed for each pattern's forms", matched)
	}
	for _, s := range []string{"10.100.0.2", "s-2vcpu-4gb", "/srv/fleet/venv", "gthread"} {
		if mayMatch(s) {
			t.Errorf("mayMatch(%q): want false (a stack's everyday strings skip the patterns)", s)
		}
	}
}

// In finds what environment files and connection strings hold, and
// leaves the stack's own fields that name files of secrets.
func TestIn(t *testing.T) {
	for s, want := range map[string]string{
		"DB_PASSWORD=hunter2":                                                   "a password or token assignment",
		"REDIS_PASSWORD: hunter2":                                               "a password or token assignment",
		"export PGPASSWORD=hunter2":                                             "a password or token assignment",
		"API_TOKEN=abc":                                                         "a password or token assignment",
		`SECRET_KEY = "django-insecure-abc"`:                                    "a password or token assignment",
		"AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI":                                   "a password or token assignment",
		"redis://:hunter2@cache.internal:6379/0":                                "a URL with a password",
		"amqp://guest:guest@mq:5672/":                                           "a URL with a password",
		`password_file: "/etc/app/secrets/db-password"`:                         "",
		`bearer_token_file: "/etc/alertmanager/token"`:                          "",
		"/etc/pyapp/secrets/database-password":                                  "",
		`"/etc/app/secrets/api-key": "/app/prod/api-key"`:                       "",
		"http://10.0.0.1:8000/a@b":                                              "",
		"ssh://git@git.example.com:22/ops/rendered.git":                         "",
		"https://hooks.slack.com/services/T0A1B2C3D/B0A1B2C3D/abcdEFGH1234":     "a Slack webhook URL (its path is the token)",
		"https://discord.com/api/webhooks/123456/abc-DEF_1":                     "a Discord webhook URL (its path is the token)",
		"https://acme.webhook.office.com/webhookb2/abc@def/IncomingWebhook/1/2": "a Microsoft Teams webhook URL (its path is the token)",
		"https://hc-ping.com/0f6a2c3e-6b1d-4c1e-9a55-1c2d3e4f5a6b":              "a Healthchecks ping URL (its path is the token)",
		"https://hooks.slack.com/services/":                                     "",
		"https://hc.example.com/ping/shop":                                      "",
	} {
		if got := In(s); got != want {
			t.Errorf("In(%q) = %q, want %q", s, got, want)
		}
	}
}

func FuzzIn(f *testing.F) {
	for _, s := range secretSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := In(s), regexpIn(s); got != want {
			t.Errorf("In(%q) = %q; the patterns say %q", s, got, want)
		}
	})
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://gitlab-ci-token:tok@gitlab.example.com/ops/web.git": "https://gitlab-ci-token:xxxxx@gitlab.example.com/ops/web.git",
		"http://mon:pw@{address}:{port}{path}":                       "http://mon:xxxxx@{address}:{port}{path}",
		"ssh://git@git.example.com/x.git":                            "ssh://git@git.example.com/x.git",
		"http://10.0.0.1:8000/a@b":                                   "http://10.0.0.1:8000/a@b",
		"file:///srv/out.git":                                        "file:///srv/out.git",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
