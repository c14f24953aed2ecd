package schema

import (
	"regexp"
	"strconv"
	"strings"
)

// patternDescriptions says in words what each regular expression of the
// schema accepts, so that errors read "want a lower-case name …" rather
// than quoting the expression. A test checks that every =~ pattern in
// stack.cue has an entry.
var patternDescriptions = map[string]string{
	`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$`:                             "a registry host with an optional port such as registry.example.com or 10.0.0.2:5000",
	`^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$`:                 "a lower-case repository path such as ops/shop",
	"^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$": "a PEM public key (-----BEGIN PUBLIC KEY----- … -----END PUBLIC KEY-----), as hacompile keygen writes it",
	`^https://[A-Za-z0-9.:/_~%?=&+-]+$`:                                          "an https:// URL such as https://downloads.example.com/hacompile",
	`^[a-z][a-z0-9-]{0,62}$`:                                                     "a lower-case name: a letter, then letters, digits or '-', at most 63 characters",
	`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`:                       "a lower-case DNS name such as www.example.com",
	`^(/[A-Za-z0-9._@+-]+)+/?$`:                                                  "an absolute path of letters, digits and ._@+- such as /srv/app",
	`(^|/)\.\.?(/|$)`:                                                            "a path without . or .. elements",
	`^/([A-Za-z0-9._~-]+/)*$`:                                                    "a URL path prefix starting and ending with / such as /static/",
	`^(/[A-Za-z0-9._~-]+)+$`:                                                     "a URL path such as /healthz",
	`^(off|max|epoch|[0-9]+(ms|s|m|h|d|w|M|y))$`:                                 "an nginx expiry: off, max, epoch or a duration such as 30d",
	`^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$`:                          "a Python entry point module:callable such as myapp.wsgi:application",
	`^[a-z0-9_]+(\.[a-z0-9_-]+)+$`:                                               "a sysctl key such as net.core.somaxconn",
	`^[0-9]+[km]?$`:                                                              "an nginx size such as 10m",
	`^[a-z0-9-]+$`:                                                               "a lower-case slug such as nyc3 or ha-app-count",
	`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`:                                               "a date such as 2027-01-31",
	`^[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,63}$`:                       "an email address such as ops@example.com (letters, digits and ._%+- before the @)",
	`^https?://[A-Za-z0-9.:/_~%?=&-]+$`:                                          "an http:// or https:// URL such as https://runbook.example.com",
	`^#[a-z0-9_-]{1,80}$`:                                                        "a Slack channel such as #ops-alerts",
	`^[A-Za-z0-9.-]+:[0-9]{1,5}$`:                                                "a host and port such as smtp.example.com:587",
	`^[^ ]+$`:                                                                    "a value without spaces",
	`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`:                            "a host name or IPv4 address such as db.internal or 10.0.0.5",
	`^(/|[A-Za-z0-9][A-Za-z0-9._-]{0,62})$`:                                      "a RabbitMQ virtual host: / or a name such as myapp",
	`^[A-Za-z_][A-Za-z0-9_.]*(:[A-Za-z_][A-Za-z0-9_]*)?$`:                        "a Celery app as celery -A takes it, such as myapp or myapp.celery:app",
	`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`:                                         "a queue name of letters, digits and ._- such as celery or emails",
	`^[1-9][0-9]{0,5}r/[sm]$`:                                                    "an nginx rate such as 10r/s or 30r/m",
	`^[0-9]{1,7}[km]$`:                                                           "an nginx size in k or m of at most 7 digits such as 10m",
	`^[0-9]{1,4}(\.[0-9]{1,6})?$`:                                                "a price in US dollars such as 0.10",
	`^[a-z][a-z0-9-]*\.[a-z0-9]+$`:                                               "an EC2 instance type such as t3.medium",
	`^ami-[0-9a-f]{8,17}$`:                                                       "an AMI id such as ami-0abcdef1234567890",
	`^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`:                                      "an SSM parameter name such as /myapp/prod/database-password",
	`^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/[A-Za-z0-9!_.*()/+=-]+$`:             "an S3 object URL such as s3://my-releases/myapp-1.4.2.tar.gz",
	`^[0-9a-f]{64}$`:                                                             "a SHA-256 digest: 64 lower-case hex digits",
	`%`:                                                                          "an address without an IPv6 zone (%…)",
	`^[A-Za-z0-9._:/,+-]+( [A-Za-z0-9._:/,+-]+)*$`:                               "a sysctl value: a number or words of letters, digits and ._:/,+- separated by single spaces",
	`^vpc-[0-9a-f]{8,17}$`:                                                       "a VPC id such as vpc-0123456789abcdef0",
	`^subnet-[0-9a-f]{8,17}$`:                                                    "a subnet id such as subnet-0123456789abcdef0",
	`^sg-[0-9a-f]{8,17}$`:                                                        "a security group id such as sg-0123456789abcdef0",
	`^eipalloc-[0-9a-f]{8,17}$`:                                                  "an Elastic IP allocation id such as eipalloc-0123456789abcdef0",
	`^[a-z][a-z0-9]{0,14}$`:                                                      "a network interface name such as eth0 or ens5",
	`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`:                                         "an EC2 key pair name",
	`^[A-Za-z0-9+=,.@_-]{1,128}$`:                                                "an IAM instance profile name",
	`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:targetgroup/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$`:      "a target group ARN such as arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/app/0123456789abcdef",
	`^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:loadbalancer/app/[A-Za-z0-9-]{1,32}/[0-9a-f]{16}$`: "an Application Load Balancer ARN such as arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/0123456789abcdef",
	`^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$`:                                              "an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts",
	`^[1-9][0-9]{0,7}ms$`:     "whole seconds (a number) or milliseconds such as \"500ms\"",
	`^[A-Za-z0-9:_-]{1,255}$`: "a DigitalOcean tag of letters, digits and :_-",
	`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`: "a DigitalOcean id (a UUID such as 4de7ac8b-495b-4884-9a69-1050c6793cd6)",
}

// DescribePattern returns the words for a schema pattern, or "". A
// pattern that only lists literal alternatives, ^(a|b\.c)$ (the schema's
// cheap stand-in for a disjunction of strings), reads as a disjunction's
// error does: one of "a", "b.c".
func DescribePattern(re string) string {
	if d, ok := patternDescriptions[re]; ok {
		return d
	}
	inner, ok := strings.CutPrefix(re, "^(")
	if inner, ok = strings.CutSuffix(inner, ")$"); !ok || inner == "" {
		return ""
	}
	var alts []string
	for _, a := range strings.Split(inner, "|") {
		lit := strings.ReplaceAll(a, `\.`, ".")
		if lit == "" || regexp.QuoteMeta(lit) != a {
			return ""
		}
		alts = append(alts, strconv.Quote(lit))
	}
	return "one of " + strings.Join(alts, ", ")
}
