package schema

// patternDescriptions says in words what each regular expression of the
// schema accepts, so that errors read "want a lower-case name …" rather
// than quoting the expression. A test checks that every =~ pattern in
// stack.cue has an entry.
var patternDescriptions = map[string]string{
	`^[a-z][a-z0-9-]{0,62}$`:                               "a lower-case name: a letter, then letters, digits or '-', at most 63 characters",
	`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`: "a lower-case DNS name such as www.example.com",
	`^(/[A-Za-z0-9._@+-]+)+/?$`:                            "an absolute path of letters, digits and ._@+- such as /srv/app",
	`(^|/)\.\.?(/|$)`:                                      "a path without . or .. elements",
	`^/([A-Za-z0-9._~-]+/)*$`:                              "a URL path prefix starting and ending with / such as /static/",
	`^(/[A-Za-z0-9._~-]+)+$`:                               "a URL path such as /healthz",
	`^(off|max|epoch|[0-9]+(ms|s|m|h|d|w|M|y))$`:           "an nginx expiry: off, max, epoch or a duration such as 30d",
	`^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$`:    "a Python entry point module:callable such as myapp.wsgi:application",
	`^[a-z0-9_]+(\.[a-z0-9_-]+)+$`:                         "a sysctl key such as net.core.somaxconn",
	`^[0-9]+[km]?$`:                                        "an nginx size such as 10m",
	`^[a-z0-9-]+$`:                                         "a lower-case slug such as nyc3 or ha-app-count",
	`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`:                         "a date such as 2027-01-31",
	`^[^@\s]+@[^@\s]+$`:                                    "an email address",
}

// DescribePattern returns the words for a schema pattern, or "".
func DescribePattern(re string) string { return patternDescriptions[re] }
