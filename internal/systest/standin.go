//go:build unix

package systest

import (
	"fmt"
	"path"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// The stand-ins: what the test puts on a host where the real thing is
// outside hacompile's reach. Each answers the same interfaces as what
// it replaces, so the rendered files are used unchanged.

// certbotStandIn replaces certbot, which needs an ACME server on the
// internet: it takes the same arguments, issues a self-signed
// certificate for the -d names under /etc/letsencrypt/live/<cert-name>/
// and runs the pre-, deploy- and post-hooks as certbot does. With
// --webroot (-w DIR) it first does what the ACME server's validation
// needs: it writes a token under DIR and fetches it from this host's
// port 80 (with the PROXY header a cloud balancer sends, or without) or
// the siblings' relay port, and fails as certbot would when nothing
// serves it.
const certbotStandIn = `#!/bin/sh
# hacompile test: certbot stand-in (no ACME server is reachable from the test network).
set -eu
name= domains= pre= post= deploy= webroot=
while [ $# -gt 0 ]; do
	case "$1" in
	--cert-name) name=$2; shift ;;
	-d|--domain|--domains) domains="$domains $2"; shift ;;
	--pre-hook) pre=$2; shift ;;
	--post-hook) post=$2; shift ;;
	--deploy-hook) deploy=$2; shift ;;
	-w|--webroot-path) webroot=$2; shift ;;
	-m|--email|--http-01-address|--http-01-port|--key-type|--rsa-key-size) shift ;;
	esac
	shift
done
[ -n "$name" ] || name=$(echo $domains | cut -d' ' -f1)
[ -n "$pre" ] && sh -c "$pre"
if [ -n "${webroot:-}" ]; then
	tok=hacompile-test-$$
	mkdir -p "$webroot/.well-known/acme-challenge"
	echo "$tok.thumbprint" > "$webroot/.well-known/acme-challenge/$tok"
	served=
	for a in $(hostname -I); do
		for how in "--haproxy-protocol http://$a:80" "http://$a:80" "http://$a:8088"; do
			if [ "$(curl -fsS --max-time 5 $how/.well-known/acme-challenge/$tok 2>/dev/null)" = "$tok.thumbprint" ]; then
				served=$how
				break 2
			fi
		done
	done
	rm -f "$webroot/.well-known/acme-challenge/$tok"
	if [ -z "$served" ]; then
		echo "certbot (hacompile test stand-in): nothing on this host's port 80 serves the webroot $webroot" >&2
		exit 1
	fi
fi
live=/etc/letsencrypt/live/$name
mkdir -p "$live"
san=$(for d in $domains; do printf 'DNS:%s,' "$d"; done)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
	-subj "/CN=$(echo $domains | cut -d' ' -f1)" -addext "subjectAltName=${san%,}" \
	-keyout "$live/privkey.pem" -out "$live/cert.pem" 2>/dev/null
cp "$live/cert.pem" "$live/fullchain.pem"
cp "$live/cert.pem" "$live/chain.pem"
chmod 600 "$live/privkey.pem"
[ -n "$deploy" ] && RENEWED_LINEAGE=$live RENEWED_DOMAINS="${domains# }" sh -c "$deploy"
[ -n "$post" ] && sh -c "$post"
exit 0
`

// wsgiStandIn is the application for gunicorn: / answers with the
// host's name (so the test sees which backend served a request), every
// path answers 200, /slow takes two seconds.
const wsgiStandIn = `# hacompile test: stand-in WSGI application.
import socket, time

NAME = socket.gethostname()
APP = "@APP@"


def application(environ, start_response):
    if environ.get("PATH_INFO", "").endswith("/slow"):
        time.sleep(2)
    body = (NAME + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), ("X-Served-By", NAME), ("X-Served-App", APP)])
    return [body]


app = application
`

// celeryStandIn is the Celery application: the broker comes from the
// settings the stack renders (QUEUE_URL, the password from its file).
const celeryStandIn = `# hacompile test: stand-in Celery application.
import os
from urllib.parse import quote, urlsplit, urlunsplit

from celery import Celery


def _url(var, password_var):
    url = os.environ.get(var, "")
    pw_file = os.environ.get(password_var, "")
    if url and pw_file and os.path.exists(pw_file):
        u = urlsplit(url)
        pw = quote(open(pw_file).read().strip(), safe="")
        user = u.username or ""
        host = u.hostname + (":%d" % u.port if u.port else "")
        url = urlunsplit((u.scheme, "%s:%s@%s" % (user, pw, host), u.path, u.query, u.fragment))
    return url


app = Celery("standin", broker=_url("QUEUE_URL", "QUEUE_PASSWORD_FILE") or _url("CACHE_URL", "CACHE_PASSWORD_FILE"))


@app.task
def ping():
    return "pong"
`

// psgiStandIn is the application for Starman.
const psgiStandIn = `# hacompile test: stand-in PSGI application.
use strict;
use warnings;
use Sys::Hostname qw(hostname);
my $name = hostname();
my $served_app = '@APP@';
my $app = sub {
    my $env = shift;
    sleep 2 if $env->{PATH_INFO} =~ m{/slow$};
    return [200, ['Content-Type' => 'text/plain', 'X-Served-By' => $name, 'X-Served-App' => $served_app], ["$name\n"]];
};
$app;
`

// deployStandIn installs the stand-in application where the stack's
// units look for it: the module gunicorn loads (in the virtualenv the
// unit starts), the Celery app, or the PSGI file. It is what a deploy
// of the real code would put there.
func deployStandIn(m *Machine, s *schema.Stack, h *schema.Host) error {
	if !h.Has("app") && !(h.Has("worker") && s.Workers != nil) {
		return nil
	}
	// Each app the host runs, as its view of the stack sees the host;
	// a worker host gets the app whose code its workers run.
	apps := s.AppsOn(h)
	if len(apps) == 0 || !s.MultiApp() {
		apps = []*schema.App{&s.App}
		if s.MultiApp() && s.Workers != nil {
			if a := s.AppByName(s.Workers.Runs); a != nil {
				apps = []*schema.App{a}
			}
		}
	}
	for _, a := range apps {
		v := s.ForApp(a)
		if err := deployAppStandIn(m, v, v.Hosts[h.Name]); err != nil {
			return err
		}
	}
	return nil
}

// deployAppStandIn installs the stand-in of the app of s (one app's view
// of the stack) on h: it answers X-Served-App with the app's name.
func deployAppStandIn(m *Machine, s *schema.Stack, h *schema.Host) error {
	a := s.App
	if a.Runtime == "perl" {
		if a.PSGI == "" {
			return fmt.Errorf("app.psgi is empty")
		}
		return m.Write(a.PSGI, []byte(strings.ReplaceAll(psgiStandIn, "@APP@", a.Name)), 0o644)
	}
	wd := a.WorkingDir
	mod, _, _ := strings.Cut(a.Module, ":")
	if mod != "" && h.Has("app") {
		parts := strings.Split(mod, ".")
		for i := 1; i < len(parts); i++ {
			if err := m.Write(path.Join(wd, path.Join(parts[:i]...), "__init__.py"), nil, 0o644); err != nil {
				return err
			}
		}
		if err := m.Write(path.Join(wd, path.Join(parts...)+".py"), []byte(strings.ReplaceAll(wsgiStandIn, "@APP@", a.Name)), 0o644); err != nil {
			return err
		}
	}
	if h.Has("worker") && s.Workers != nil {
		// celery -A <app name> finds <app name>.celery:app.
		if err := m.Write(path.Join(wd, a.Name, "__init__.py"), nil, 0o644); err != nil {
			return err
		}
		if err := m.Write(path.Join(wd, a.Name, "celery.py"), []byte(celeryStandIn), 0o644); err != nil {
			return err
		}
	}
	if a.Virtualenv != "" {
		// The virtualenv sees Debian's gunicorn and Celery, as one made
		// with pip would have its own.
		if err := m.Chroot("python3", "-m", "venv", "--without-pip", "--system-site-packages", a.Virtualenv); err != nil {
			return err
		}
		py := path.Join(a.Virtualenv, "bin/python3")
		for bin, mod := range map[string]string{"gunicorn": "gunicorn.app.wsgiapp", "celery": "celery.__main__"} {
			script := fmt.Sprintf("#!%s\nimport sys\nfrom %s import main as _m\nsys.exit(_m())\n", py, mod)
			if bin == "gunicorn" {
				script = fmt.Sprintf("#!%s\nimport sys\nfrom gunicorn.app.wsgiapp import run\nsys.exit(run())\n", py)
			}
			if err := m.Write(path.Join(a.Virtualenv, "bin", bin), []byte(script), 0o755); err != nil {
				return err
			}
		}
	}
	return nil
}
