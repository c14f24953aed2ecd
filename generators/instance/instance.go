// Package instance renders what a new instance of an AWS Auto Scaling
// group needs to come up alone, before its app starts: the app's code
// (scaling.app_source) and the files no rendered file holds — the app's
// environment file and the password files its settings name
// (scaling.secrets). Nobody logs in to an instance the group launched;
// without these the app never passes the balancer's health check and
// the group replaces the instance in a loop.
//
// Decisions, and why:
//
//   - One oneshot unit, <app>-instance.service, that the app's unit
//     requires and starts after (a drop-in): the app starts only once
//     its code and secrets are in place, at first boot and every boot,
//     however it is started (cloud-init, a reboot, an operator).
//   - Secrets come from the SSM Parameter Store (SecureString
//     parameters), fetched with the instance profile's credentials by
//     Debian's AWS CLI at every boot, so a rotated secret reaches an
//     instance when it restarts. They are written with the modes the
//     runbook gives an operator: the environment file 0600 root (systemd
//     reads it), password files 0600 the app's user.
//   - Code from S3 is a tar.gz checked against the stack's sha256 before
//     anything is extracted, so an instance runs exactly the reviewed
//     release or nothing; it is extracted as root-owned files (the app's
//     user reads its code and cannot change it), and a marker holding
//     the sha256 makes later boots skip the download.
//   - Code in the image is asserted: the app's unit refuses to start,
//     with the missing path in the journal, on an image without it.
//   - Each AWS call is retried with a growing pause (S3 or SSM may be
//     unreachable for a moment while the instance's network comes up);
//     then the unit fails, the app does not start, and the group's
//     health check replaces the instance.
//   - With database.pooler, PgBouncer on the instance logs in with the
//     app's database password: the script writes PgBouncer's auth file
//     from the password file it just fetched (as the runbook's command
//     does on a host an operator provisions), and the unit runs before
//     pgbouncer.service (reloading it when it already runs: at first
//     boot the package starts it as it is installed).
//   - /etc/default/hacompile-aws may set AWS_S3_ENDPOINT and
//     AWS_SSM_ENDPOINT (VPC endpoints), passed to the AWS CLI as
//     --endpoint-url, which every release of it takes.
package instance

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the instance generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "instance" }

// Paths on the host, and the package that provides the AWS CLI.
const (
	EnvFile = "/etc/default/hacompile-aws"
	Package = "awscli"
	// CodeMarker, under app.working_dir, holds the sha256 of the
	// archive extracted there.
	CodeMarker = ".hacompile-code"
)

// ScriptPath is the setup script for app on the host.
func ScriptPath(app *schema.App) string { return "usr/local/sbin/hacompile-instance-" + app.Name }

// Unit is the setup unit's name.
func Unit(app *schema.App) string { return app.Name + "-instance.service" }

// UnitPath is the setup unit's path on the host.
func UnitPath(app *schema.App) string { return "etc/systemd/system/" + Unit(app) }

// DropInPath is the app unit's drop-in that orders it after the setup.
func DropInPath(app *schema.App) string {
	return "etc/systemd/system/" + app.Name + ".service.d/hacompile-instance.conf"
}

// Needed lists the files an instance needs that no rendered file holds,
// sorted: the app unit's environment file and every *_FILE the app's
// settings name. Each maps to the owner its file gets.
func Needed(s *schema.Stack) (map[string]string, error) {
	need := map[string]string{s.App.EnvironmentFile: "root"}
	if appenv.Needed(s) {
		vars, err := appenv.Vars(s)
		if err != nil {
			return nil, err
		}
		for _, v := range vars {
			if strings.HasSuffix(v.Name, "_FILE") {
				need[v.Value] = s.App.User
			}
		}
	}
	return need, nil
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	h := s.ScalingTemplateHost()
	if h == nil {
		return nil, nil
	}
	sc := s.Scaling
	need, err := Needed(s)
	if err != nil {
		return nil, err
	}
	for _, p := range slices.Sorted(maps.Keys(need)) {
		if _, ok := sc.Secrets[p]; !ok {
			return nil, artifact.Errorf("scaling.secrets", "no SSM parameter for %s, which the app needs on every instance (%s): add %q: \"/%s/…\"; an instance cannot come up without it, and nobody provisions it by hand on an instance the group launched",
				p, neededBecause(s, p), p, s.Name)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(sc.Secrets)) {
		if _, ok := need[p]; !ok {
			return nil, artifact.Errorf(fmt.Sprintf("scaling.secrets[%q]", p), "renders nothing: the app's settings name no file %s (they name %s); remove it",
				p, strings.Join(slices.Sorted(maps.Keys(need)), ", "))
		}
	}
	app := &s.App
	var files []artifact.File
	if sc.AppSource.Kind == "s3" || len(sc.Secrets) > 0 {
		files = append(files,
			artifact.File{Host: h.Name, Path: ScriptPath(app), Content: script(s, need, opt), Mode: 0o755, Owner: "root:root",
				Validate: artifact.Run("sh", "-n", "/"+ScriptPath(app))},
			artifact.File{Host: h.Name, Path: UnitPath(app), Content: unit(s, opt), Mode: 0o644, Owner: "root:root",
				Reload: artifact.DaemonReload()},
		)
	}
	files = append(files, artifact.File{Host: h.Name, Path: DropInPath(app), Content: dropIn(s, opt), Mode: 0o644, Owner: "root:root",
		Reload: artifact.DaemonReload()})
	return files, nil
}

// neededBecause says which setting names file p.
func neededBecause(s *schema.Stack, p string) string {
	if p == s.App.EnvironmentFile {
		return "app.environment_file: the app's unit requires it"
	}
	return "its settings.env names it"
}

// sq quotes s for a POSIX shell.
func sq(s string) string { return artifact.ShellQuote(s) }

func unit(s *schema.Stack, opt artifact.Options) []byte {
	app := &s.App
	sc := s.Scaling
	var what []string
	if sc.AppSource.Kind == "s3" {
		what = append(what, "code")
	}
	if len(sc.Secrets) > 0 {
		what = append(what, "secrets")
	}
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	fmt.Fprintf(&b, "\n[Unit]\nDescription=hacompile: %s's %s on an instance of the %s group\n", app.Name, strings.Join(what, " and "), s.Name)
	fmt.Fprintf(&b, "# %s requires this unit and starts after it (its hacompile-instance.conf drop-in).\n", app.Name+".service")
	b.WriteString("Wants=network-online.target\nAfter=network-online.target\n")
	if pooled(s) {
		b.WriteString("# PgBouncer starts once its auth file is written (database.pooler).\nBefore=pgbouncer.service\n")
	}
	b.WriteString("\n[Service]\nType=oneshot\n# Once done, done for this boot: restarting the app does not fetch again.\nRemainAfterExit=yes\n")
	fmt.Fprintf(&b, "# Endpoints other than the region's (AWS_S3_ENDPOINT, AWS_SSM_ENDPOINT: VPC\n# endpoints), when the file exists.\nEnvironmentFile=-%s\n", opt.P(EnvFile))
	fmt.Fprintf(&b, "ExecStart=%s\n", opt.P("/"+ScriptPath(app)))
	b.WriteString("# The script retries each call; past this, the instance is not coming up.\nTimeoutStartSec=10min\n")
	return []byte(b.String())
}

func dropIn(s *schema.Stack, opt artifact.Options) []byte {
	app := &s.App
	sc := s.Scaling
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	b.WriteString("\n[Unit]\n")
	if sc.AppSource.Kind == "s3" || len(sc.Secrets) > 0 {
		what := "code and secrets"
		switch {
		case sc.AppSource.Kind != "s3":
			what = "secrets"
		case len(sc.Secrets) == 0:
			what = "code"
		}
		fmt.Fprintf(&b, "# An instance gets its %s before the app starts; if it cannot, the\n# app does not start and the group's health check replaces the instance.\nRequires=%[2]s\nAfter=%[2]s\n", what, Unit(app))
	}
	if sc.AppSource.Kind == "image" {
		fmt.Fprintf(&b, "# The image (%s) carries the app's code: on one without it the app refuses to\n# start, and the journal names the missing path.\n", sc.Image)
		for _, p := range codePaths(s) {
			fmt.Fprintf(&b, "AssertPathExists=%s\n", opt.P(p))
		}
	}
	return []byte(b.String())
}

// codePaths are the paths the app's code must provide.
func codePaths(s *schema.Stack) []string {
	app := &s.App
	ps := []string{app.WorkingDir}
	switch {
	case app.Runtime == "perl" && app.PSGI != "":
		ps = append(ps, app.PSGI)
	case app.Runtime == "python" && app.Virtualenv != "":
		ps = append(ps, app.Virtualenv+"/bin/python3")
	}
	return ps
}

func script(s *schema.Stack, need map[string]string, opt artifact.Options) []byte {
	app := &s.App
	sc := s.Scaling
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString(artifact.Header("#", s))
	fmt.Fprintf(&b, "# Run by %s at every boot of an instance of the %s group, before\n", Unit(app), s.Name)
	fmt.Fprintf(&b, "# %s.service starts. AWS credentials: the instance profile%s, through the\n", app.Name, profile(sc))
	b.WriteString("# instance metadata service. Each call is tried 5 times, with a growing pause.\n")
	b.WriteString("set -eu\n")
	fmt.Fprintf(&b, "export AWS_DEFAULT_REGION=%s AWS_PAGER= AWS_MAX_ATTEMPTS=2\n", sq(s.Region))
	b.WriteString(`# Endpoints other than the region's (VPC endpoints), from ` + EnvFile + `.
AWS_S3_ENDPOINT=${AWS_S3_ENDPOINT:-}
AWS_SSM_ENDPOINT=${AWS_SSM_ENDPOINT:-}
log() { echo "hacompile-instance: $*" >&2; }

# try DESCRIPTION COMMAND...: COMMAND, tried 5 times.
try() {
    what=$1
    shift
    i=1
    until "$@"; do
        if [ "$i" -ge 5 ]; then
            log "gave up after $i attempts: $what"
            return 1
        fi
        log "failed (attempt $i), retrying in $((i * 3)) s: $what"
        sleep $((i * 3))
        i=$((i + 1))
    done
}
`)
	if len(sc.Secrets) > 0 {
		b.WriteString(`
# ssm_get PARAMETER FILE: the parameter's decrypted value into FILE.
ssm_get() {
    name=$1 out=$2
    shift 2
    if [ -n "$AWS_SSM_ENDPOINT" ]; then
        set -- --endpoint-url "$AWS_SSM_ENDPOINT"
    fi
    aws ssm get-parameter --with-decryption --name "$name" --query Parameter.Value --output text "$@" >"$out"
}

# secret FILE OWNER PARAMETER: FILE, mode 0600 OWNER, from the SSM parameter.
secret() {
    mkdir -p "$(dirname "$1")"
    tmp=$(mktemp "$1.hacompile-XXXXXX")
    if ! try "SSM parameter $3 for $1" ssm_get "$3" "$tmp"; then
        rm -f "$tmp"
        return 1
    fi
    chown "$2:root" "$tmp"
    mv -f "$tmp" "$1"
    log "wrote $1 from SSM parameter $3"
}

# scaling.secrets
`)
		for _, p := range slices.Sorted(maps.Keys(sc.Secrets)) {
			fmt.Fprintf(&b, "secret %s %s %s\n", sq(opt.P(p)), sq(need[p]), sq(sc.Secrets[p]))
		}
	}
	if db := s.Database; pooled(s) {
		fmt.Fprintf(&b, `
# database.pooler: PgBouncer's auth file, from the app's database password
# (PgBouncer doubles a " inside a quoted field), readable by postgres only.
USERLIST=%s
mkdir -p "$(dirname "$USERLIST")"
tmp=$(mktemp "$USERLIST.hacompile-XXXXXX")
printf '"%%s" "%%s"\n' %s "$(sed 's/"/""/g' %s)" >"$tmp"
chown postgres:postgres "$tmp"
chmod 0640 "$tmp"
mv -f "$tmp" "$USERLIST"
log "wrote $USERLIST from %s"
if systemctl -q is-active pgbouncer.service 2>/dev/null; then
    systemctl reload pgbouncer.service
fi
`, sq(opt.P(pgbouncer.UserlistPath)), sq(db.User), sq(opt.P(db.PasswordFile)), db.PasswordFile)
	}
	if src := sc.AppSource; src.Kind == "s3" {
		dir := opt.P(app.WorkingDir)
		fmt.Fprintf(&b, `
# scaling.app_source: the release the stack names, checked before it is extracted.
URL=%s
SHA256=%s
DIR=%s
if [ "$(cat "$DIR/%s" 2>/dev/null || true)" = "$SHA256" ]; then
    log "$URL is in place in $DIR"
    exit 0
fi
work=$(mktemp -d /var/tmp/hacompile-code.XXXXXX)
trap 'rm -rf "$work"' EXIT
if [ -n "$AWS_S3_ENDPOINT" ]; then
    set -- --endpoint-url "$AWS_S3_ENDPOINT"
fi
try "download $URL" aws s3 cp --only-show-errors "$URL" "$work/code.tar.gz" "$@"
got=$(sha256sum "$work/code.tar.gz" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
    log "refused $URL: its sha256 is $got, the stack names $SHA256"
    exit 1
fi
mkdir -p "$DIR"
# Root owns the code: the app's user reads it and cannot change it.
tar -xzf "$work/code.tar.gz" -C "$DIR" --no-same-owner
echo "$SHA256" >"$DIR/%s"
log "extracted $URL into $DIR"
`, sq(src.URL), src.SHA256, sq(dir), CodeMarker, CodeMarker)
	}
	return []byte(b.String())
}

// pooled says whether the instance runs PgBouncer whose auth file the
// script writes: with database.pooler and the database password among
// the secrets an instance fetches.
func pooled(s *schema.Stack) bool {
	db := s.Database
	if db == nil || db.Pooler == nil || db.PasswordFile == "" {
		return false
	}
	_, ok := s.Scaling.Secrets[db.PasswordFile]
	return ok
}

func profile(sc *schema.Scaling) string {
	if sc.InstanceProfile == "" {
		return ""
	}
	return " (" + sc.InstanceProfile + ")"
}

// Reads implements artifact.Scoper: the launch template's host is the
// first app host unless the stack names one.
func (Gen) Reads(s *schema.Stack, h *schema.Host) []string {
	if s.Scaling != nil && h.Has("app") {
		return appOnly
	}
	return nil
}

var appOnly = []string{"app"}

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string {
	// The secrets an instance fetches are those the app settings name
	// (appenv.Vars).
	return []string{"app", "cache", "database", "name", "queue", "region", "scaling", "workers"}
}
