package site_test

import (
	"html"
	"regexp"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/site"
)

// section is the text of the procedures page from the section id to
// the section next, tags stripped.
func section(t *testing.T, page []byte, id, next string) string {
	t.Helper()
	s := string(page)
	i := strings.Index(s, `id="`+id+`"`)
	j := len(s)
	if next != "" {
		j = strings.Index(s, `id="`+next+`"`)
	}
	if i < 0 || j < i {
		t.Fatalf("no section %q before %q", id, next)
	}
	return html.UnescapeString(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(s[i:j], ""))
}

// TestDatabaseFailoverRestarts: promoting a replica changes the address
// in settings.env, which push delivers with a restart of every process
// that reads it, app and Celery alike. The procedure must say so and
// check those units, not tell the operator to edit a file by hand and
// reload (a reload keeps the old environment), nor leave the workers out.
func TestDatabaseFailoverRestarts(t *testing.T) {
	res, opt := compileStack(t, `
name:   "t"
domain: "example.com"
tls: mode: "none"
hosts: {
	app1:    {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2:    {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
	worker1: {address: "10.0.0.21", roles: ["worker"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {name: "shop", runtime: "python", module: "wsgi:app", working_dir: "/srv/shop"}
database: {host: "db1.internal", name: "shop", replicas: ["db2.internal"], replica_pool_size: 5, max_connections: 400}
queue: {engine: "redis", host: "redis.internal"}
workers: {app: "shop", beat: enabled: true}
`)
	files, err := site.Render(res, opt)
	if err != nil {
		t.Fatal(err)
	}
	text := section(t, files["stacks/t/procedures.html"], "failover-database", "certificates")
	for _, want := range []string{
		"ssh root@10.0.0.11 systemctl is-active shop.service",
		"ssh root@10.0.0.12 systemctl is-active shop.service",
		"ssh root@10.0.0.21 systemctl is-active shop-celery-worker.service shop-celery-beat.service",
		"With no replica left, also remove database.replica_pool_size",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the failover procedure lacks %q:\n%s", want, text)
		}
	}
	for _, bad := range []string{"systemctl reload shop", "/etc/shop/env", "error db-option"} {
		if strings.Contains(text, bad) {
			t.Errorf("the failover procedure says %q:\n%s", bad, text)
		}
	}
}

// TestSecretFilesWhole: a provisioning command a rendered comment gives
// over several lines (Redis's ACL file: printf … \ | install …) is
// quoted whole, with what the comment says about it, not as the bare
// install that would write the pasted password where Redis wants an ACL
// line (Redis then does not start).
func TestSecretFilesWhole(t *testing.T) {
	page := exampleSite(t)["stacks/python-celery-cache/procedures.html"]
	text := section(t, page, "secrets", "")
	for _, want := range []string{
		"read -rs PASSWORD",
		`printf 'user default on #%s ~* &* +@all\n' "$(printf %s "$PASSWORD" | sha256sum | cut -d' ' -f1)" | install -m 0640 -o root -g redis /dev/stdin /etc/redis/users.acl`,
		`Provision it as JSON, {"redis://127.0.0.1:6379": "<password>"}`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the secrets procedure lacks %s:\n%s", want, text)
		}
	}
}
