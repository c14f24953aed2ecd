package haproxy

import (
	"fmt"
	"github.com/hacompile/hacompile/generators/osrelease"
	"path"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// shWord returns s for a POSIX shell script when it needs no quoting at
// all. The values the script names are schema paths (#Path) and domain
// names, so anything else is a bug or a strange sandbox root, refused
// rather than quoted.
func shWord(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty value in a shell script")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._/@+-", c) >= 0) {
			return "", fmt.Errorf("%q: a shell script value may hold only letters, digits and ._/@+-", s)
		}
	}
	return s, nil
}

// certScript renders the script that joins the certificate chain and its
// key into the PEM HAProxy loads, then reloads HAProxy. In certbot mode
// it is a deploy hook: certbot runs it after each renewal, with
// RENEWED_LINEAGE naming the renewed certificate's directory.
func certScript(s *schema.Stack, h *schema.Host, opt artifact.Options) ([]byte, error) {
	vals := map[string]string{}
	for k, v := range map[string]string{
		"lineage": opt.P(path.Dir(s.TLS.Certificate)),
		"cert":    opt.P(s.TLS.Certificate),
		"key":     opt.P(s.TLS.Key),
		"dir":     opt.P("/" + CertDir),
		"name":    s.Domain + ".pem",
		"self":    "/" + certScriptPath(s),
	} {
		q, err := shWord(v)
		if err != nil {
			return nil, fmt.Errorf("certificate script: %w", err)
		}
		vals[k] = q
	}
	var b strings.Builder
	c := func(lines ...string) {
		for _, l := range lines {
			if l == "" {
				b.WriteString("#\n")
				continue
			}
			b.WriteString("# " + l + "\n")
		}
	}
	b.WriteString("#!/bin/sh\n")
	b.WriteString(artifact.Header("#", s))
	c("", "Builds "+PEMPath(s)+",",
		"the certificate chain and private key in one file, which is how HAProxy "+osrelease.MustLookup(s.OS).HAProxyVersionMM(),
		"reads them (its bind loads every PEM in /"+CertDir+"/), then reloads",
		"HAProxy; Debian's unit checks the configuration before the reload takes effect.")
	if s.TLS.Mode == "certbot" {
		c("", "certbot runs the scripts in renewal-hooks/deploy/ after every renewal, but not",
			"after the first issuance: name this script there with --deploy-hook (certbot",
			"then stores it and still runs it once per renewal). HAProxy must be running on",
			"the balancers: port 80 sends ACME challenges to port "+fmt.Sprint(ACMEPort)+" of each balancer's",
			"address, where certbot listens while it runs. On "+h.Name+":", "")
		args := []string{"certbot certonly --standalone", fmt.Sprintf("--http-01-address %s --http-01-port %d", h.Address, ACMEPort)}
		if s.TLS.Email != "" {
			args = append(args, "--email "+artifact.ShellQuote(s.TLS.Email)+" --agree-tos --no-eff-email")
		} else {
			args = append(args, "--register-unsafely-without-email --agree-tos")
		}
		args = append(args, "--cert-name "+artifact.ShellQuote(path.Base(path.Dir(s.TLS.Certificate))))
		domains := "-d " + artifact.ShellQuote(s.Domain)
		for _, a := range s.Aliases {
			domains += " -d " + artifact.ShellQuote(a)
		}
		args = append(args, domains, "--deploy-hook "+vals["self"])
		for i, a := range args {
			end := " \\"
			if i == len(args)-1 {
				end = ""
			}
			lead := "    "
			if i == 0 {
				lead = "  "
			}
			b.WriteString("#" + lead + a + end + "\n")
		}
	} else {
		c("", "tls.mode is \"files\": run it after provisioning or replacing the certificate",
			"or the key.")
	}
	b.WriteString("set -eu\n\n")
	b.WriteString("cert=" + vals["cert"] + "\n")
	b.WriteString("key=" + vals["key"] + "\n")
	b.WriteString("dir=" + vals["dir"] + "\n")
	b.WriteString("pem=$dir/" + vals["name"] + "\n\n")
	if s.TLS.Mode == "certbot" {
		c("certbot runs deploy hooks for every certificate it renews; this one is only",
			"about the stack's.")
		b.WriteString("if [ -n \"${RENEWED_LINEAGE:-}\" ] && [ \"$RENEWED_LINEAGE\" != " + vals["lineage"] + " ]; then\n")
		b.WriteString("\texit 0\nfi\n\n")
	}
	c("A key that does not belong to the certificate would make HAProxy refuse the",
		"whole configuration at its next start: keep the PEM it has.")
	b.WriteString("cert_pub=$(openssl x509 -in \"$cert\" -noout -pubkey)\n")
	b.WriteString("key_pub=$(openssl pkey -in \"$key\" -pubout)\n")
	b.WriteString("if [ \"$cert_pub\" != \"$key_pub\" ]; then\n")
	b.WriteString("\techo \"$0: $key is not the key of $cert; $pem left as it was\" >&2\n")
	b.WriteString("\texit 1\nfi\n\n")
	c("Written beside the old PEM and renamed over it, so HAProxy never reads half a",
		"file; the temporary name starts with a dot, which HAProxy skips in the directory.")
	b.WriteString("umask 077\n")
	b.WriteString("mkdir -p \"$dir\"\n")
	b.WriteString("tmp=$(mktemp \"$dir/." + vals["name"] + ".XXXXXX\")\n")
	b.WriteString("trap 'rm -f \"$tmp\"' EXIT\n")
	if s.TLS.Key == s.TLS.Certificate {
		b.WriteString("cat \"$cert\" >\"$tmp\"\n")
	} else {
		b.WriteString("cat \"$cert\" \"$key\" >\"$tmp\"\n")
	}
	b.WriteString("mv -f \"$tmp\" \"$pem\"\n")
	b.WriteString("trap - EXIT\n\n")
	b.WriteString("if systemctl is-active --quiet haproxy; then\n")
	b.WriteString("\tsystemctl reload haproxy\n")
	b.WriteString("fi\n")
	return []byte(b.String()), nil
}

// certDirNote is the dotfile that makes push create the certificate
// directory HAProxy's bind names: without the directory HAProxy refuses
// to start; with it empty, it starts (strict-sni) and port 80 works.
func certDirNote(s *schema.Stack) []byte {
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	if s.MultiApp() {
		b.WriteString("#\n# HAProxy's HTTPS bind loads every PEM in this directory except files whose names\n")
		b.WriteString("# start with a dot, like this one: one per set of host names, each built by its script:\n")
		for _, v := range certViews(s) {
			b.WriteString("#   " + PEMPath(v) + " by /" + certScriptPath(v) + "\n")
		}
		b.WriteString("# Do not put other files here.\n")
		return []byte(b.String())
	}
	for _, l := range []string{
		"",
		"HAProxy's HTTPS bind loads every PEM in this directory except files whose names",
		"start with a dot, like this one. " + PEMPath(s) + " is built by",
		"/" + certScriptPath(s) + "; do not put other files here.",
	} {
		if l == "" {
			b.WriteString("#\n")
			continue
		}
		b.WriteString("# " + l + "\n")
	}
	return []byte(b.String())
}
