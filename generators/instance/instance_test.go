package instance_test

import (
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/instance"
	"github.com/hacompile/hacompile/internal/testtool"
	"github.com/hacompile/hacompile/schema"
)

// stack is an Auto Scaling group's stack with scaling written as given,
// and top-level fields added from more.
func stack(t *testing.T, scaling string, more ...string) (*schema.Stack, error) {
	t.Helper()
	l, err := schema.NewLoader("")
	if err != nil {
		t.Fatal(err)
	}
	return l.Load("stacks/t.cue", []byte(`
name:     "t"
provider: "aws"
region:   "eu-west-1"
domain:   "example.com"
tls: mode: "cloud"
hosts: app: {address: "0.0.0.0", roles: ["app"], size: "t3.medium"}
balancer: kind: "cloud"
monitoring: enabled: false
app: {name: "shop", user: "nobody", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop", virtualenv: "/srv/shop/venv"}
cache: {engine: "redis", host: "cache.internal", password_file: "/etc/shop/secrets/cache"}
`+strings.Join(more, "\n")+`
scaling: {
	min: 2
	max: 4
	instance_types: ["t3.medium"]
	image:   "ami-0abcdef1234567890"
	vpc:     "vpc-0123456789abcdef0"
	subnets: ["subnet-0123456789abcdef0"]
	security_groups: ["sg-0123456789abcdef0"]
`+scaling+`
}
`))
}

func generate(t *testing.T, s *schema.Stack, opt artifact.Options) map[string]artifact.File {
	t.Helper()
	fs, err := instance.Gen{}.Generate(s, opt)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]artifact.File{}
	for _, f := range fs {
		byPath[f.Path] = f
	}
	return byPath
}

const secrets = `secrets: {"/etc/shop/env": "/shop/env", "/etc/shop/secrets/cache": "/shop/cache"}`

// TestSecretsMustMatch: every file the app needs on an instance has an
// SSM parameter, and no parameter names a file nothing reads.
func TestSecretsMustMatch(t *testing.T) {
	for _, c := range []struct{ scaling, want string }{
		{`app_source: kind: "image"
secrets: {"/etc/shop/env": "/shop/env"}`, `scaling.secrets: no SSM parameter for /etc/shop/secrets/cache`},
		{`app_source: kind: "image"
secrets: {"/etc/shop/env": "/shop/env", "/etc/shop/secrets/cache": "/shop/cache", "/etc/shop/other": "/shop/other"}`,
			`scaling.secrets["/etc/shop/other"]: renders nothing: the app's settings name no file /etc/shop/other (they name /etc/shop/env, /etc/shop/secrets/cache)`},
	} {
		s, err := stack(t, c.scaling)
		if err != nil {
			t.Fatal(err)
		}
		_, err = instance.Gen{}.Generate(s, artifact.Options{})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("got %v, want %s…", err, c.want)
		}
	}
	for _, c := range []struct{ scaling, want string }{
		{secrets, "scaling.app_source: required field is missing"},
		{`app_source: kind: "s3"
` + secrets, "scaling.app_source.url: required field is missing"},
		{`app_source: {kind: "image", url: "s3://b/k.tar.gz"}
` + secrets, "scaling.app_source.url: field not allowed"},
		{`app_source: {kind: "s3", url: "s3://releases/shop.tar.gz", sha256: "abc"}
` + secrets, "scaling.app_source.sha256: invalid value"},
	} {
		_, err := stack(t, c.scaling)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("got %v, want …%s…", err, c.want)
		}
	}
}

// TestImage: code in the image is asserted by the app's unit; no script
// runs when there are no secrets either.
func TestImage(t *testing.T) {
	s := testtool.Load(t, "stacks/t.cue", `
name: "t", provider: "aws", region: "eu-west-1", domain: "example.com"
tls: mode: "cloud"
hosts: app: {address: "0.0.0.0", roles: ["app"], size: "t3.medium"}
balancer: kind: "cloud"
monitoring: enabled: false
app: {name: "shop", runtime: "perl", psgi: "/srv/shop/app.psgi", working_dir: "/srv/shop"}
scaling: {min: 2, max: 4, instance_types: ["t3.medium"], image: "ami-0abcdef1234567890", vpc: "vpc-0123456789abcdef0"
	subnets: ["subnet-0123456789abcdef0"], security_groups: ["sg-0123456789abcdef0"]
	app_source: kind: "image"
	secrets: "/etc/shop/env": "/shop/env"}
`)
	fs := generate(t, s, artifact.Options{})
	drop := string(fs[instance.DropInPath(&s.App)].Content)
	for _, want := range []string{"Requires=shop-instance.service\n", "AssertPathExists=/srv/shop\n", "AssertPathExists=/srv/shop/app.psgi\n"} {
		if !strings.Contains(drop, want) {
			t.Errorf("drop-in lacks %q:\n%s", want, drop)
		}
	}
	if script := string(fs[instance.ScriptPath(&s.App)].Content); strings.Contains(script, "aws s3") || !strings.Contains(script, "secret /etc/shop/env root /shop/env\n") {
		t.Errorf("the image's code is fetched from nowhere, the env file from SSM:\n%s", script)
	}
}
