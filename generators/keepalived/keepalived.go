// Package keepalived renders balancer failover: keepalived (VRRP) on
// every lb host of a stack whose balancer.failover is "keepalived" or
// "reserved-ip", deciding which balancer holds the stack's virtual
// address.
//
// Decisions, and why:
//
//   - Unicast VRRP to the other lb hosts' addresses: cloud and most
//     provider networks drop multicast, and unicast names exactly who may
//     take part.
//   - VRRP version 3 with 0.5 s advertisements: a backup takes over
//     3 × 0.5 s (plus its skew) after the master's last advertisement,
//     within the 3 s of failures the system test allows. Version 3 has
//     no authentication field (RFC 5798 dropped version 2's clear-text
//     password, which anyone on the path could read); what keeps other
//     stacks' VRRP out is check_unicast_src (an advertisement from an
//     address that is not a listed peer is dropped), the peers list
//     itself, and a router id unique among the stacks of a build (the
//     rules check it).
//   - Every balancer starts as BACKUP with nopreempt: when no master is
//     heard, the highest priority waits least and takes over, and the
//     address does not move back (a second interruption) when a failed
//     balancer returns.
//   - A vrrp_script tracks the local balancer daemon: when haproxy or
//     nginx is not running, the instance goes to FAULT and gives the
//     address up at once.
//   - failover "keepalived": the master adds the virtual address to its
//     interface and announces it with gratuitous ARP.
//   - failover "reserved-ip" (DigitalOcean): the reserved IP is routed by
//     DigitalOcean to a droplet, not announced by ARP, so notify_master
//     runs a script that assigns it to this droplet through the API, with
//     the token read from a file on the host that the operator provisions
//     (never the stack or out/), timeouts, retries and logging. Its API
//     and metadata base URLs can be overridden in an environment file, so
//     a test can point it at a stand-in on 127.0.0.1.
//   - On a monitored stack, every state change runs a script that
//     writes the state, and who holds the address, for node_exporter's
//     textfile collector (state.go): the alerts compare the balancers.
package keepalived

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the keepalived generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "keepalived" }

// Paths on the balancer host, without the leading slash.
const (
	ConfigPath = "etc/keepalived/keepalived.conf"
	// NotifyPath assigns the reserved IP to the new master.
	NotifyPath = "usr/local/sbin/hacompile-reserved-ip"
	// TokenFile holds the DigitalOcean API token (write scope on
	// reserved IPs), provisioned by the operator, mode 0600.
	TokenFile = "/etc/keepalived/digitalocean-token"
	// EnvFile may override the script's settings (DO_API_BASE,
	// DO_METADATA_BASE, ATTEMPTS); it is optional and not rendered.
	EnvFile = "/etc/default/hacompile-reserved-ip"
	// AWSCredentialsFile, when present, holds AWS credentials for the
	// notify script; without it the instance profile's role is used.
	AWSCredentialsFile = "/etc/keepalived/aws-credentials"
)

// AdvertInterval is the VRRP advertisement interval.
const AdvertInterval = "0.5"

// Enabled reports whether the stack's balancers run keepalived.
func Enabled(s *schema.Stack) bool {
	b := s.Balancer
	return (b.Kind == "haproxy" || b.Kind == "nginx") && b.VRRP != nil &&
		(b.Failover == "keepalived" || b.Failover == "reserved-ip")
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if !Enabled(s) {
		return nil, nil
	}
	lbs := s.HostsWithRole("lb")
	if len(lbs) < 2 {
		return nil, artifact.Errorf("balancer.failover", "%q needs two or more hosts with the role \"lb\"", s.Balancer.Failover)
	}
	var files []artifact.File
	for _, h := range lbs {
		if !opt.Renders(h.Name) {
			continue
		}
		cfg := config(s, h, opt)
		files = append(files, artifact.File{
			Host: h.Name, Kind: "keepalived", Path: ConfigPath, Content: []byte(cfg), Mode: 0o644, Owner: "root:root",
			Validate: artifact.Run("keepalived", "-t", "-f", opt.P("/"+ConfigPath)),
			Reload:   artifact.ReloadUnit("keepalived"),
		})
		if s.Balancer.Failover == "reserved-ip" {
			script := notifyScript(s, opt)
			if s.Provider == "aws" {
				script = awsNotifyScript(s, opt)
			}
			files = append(files, artifact.File{
				Host: h.Name, Kind: "keepalived", Path: NotifyPath, Content: []byte(script), Mode: 0o755, Owner: "root:root",
				Validate: artifact.Run("sh", "-n", opt.P("/"+NotifyPath)),
			})
		}
		if Monitored(s) {
			for _, f := range stateFiles(s, opt) {
				f.Host = h.Name
				files = append(files, f)
			}
		}
	}
	return files, nil
}

// service is the balancer daemon's unit.
func service(s *schema.Stack) string {
	if s.Balancer.Kind == "haproxy" {
		return "haproxy.service"
	}
	return "nginx.service"
}

// InstanceName is the VRRP instance's name in keepalived.conf.
func InstanceName(s *schema.Stack) string { return strings.ReplaceAll(s.Name, "-", "_") + "_lb" }

func config(s *schema.Stack, h *schema.Host, opt artifact.Options) string {
	v := s.Balancer.VRRP
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	b.WriteString(artifact.Header("#", s))
	var peers []string
	for _, o := range s.HostsWithRole("lb") {
		if o.Name != h.Name {
			peers = append(peers, o.Address)
		}
	}
	slices.Sort(peers)
	p("#")
	p("# %s on %s: VRRP between the balancers %s decides", release(s.OS), h.Name, lbNames(s))
	switch {
	case s.Balancer.Failover == "reserved-ip" && s.Provider == "aws":
		p("# which one holds the secondary private address %s/%d; the new master moves it to its", v.VirtualAddress, v.Prefix)
		if v.ElasticIPAllocation != "" {
			p("# own network interface, with the Elastic IP %s, through the EC2 API (notify_master).", v.ElasticIPAllocation)
		} else {
			p("# own network interface through the EC2 API (notify_master).")
		}
	case s.Balancer.Failover == "reserved-ip":
		p("# which one holds the DigitalOcean reserved IP %s; the new master assigns it to", v.VirtualAddress)
		p("# itself through the API (notify_master).")
	default:
		p("# which one holds the virtual address %s/%d, announced by gratuitous ARP.", v.VirtualAddress, v.Prefix)
	}
	p("")
	p("global_defs {")
	p("    router_id %s-%s", s.Name, h.Name)
	p("    # Scripts run as script_user, and only when no one else can change them.")
	p("    enable_script_security")
	p("    script_user root")
	p("}")
	p("")
	check := "chk_" + strings.ReplaceAll(strings.TrimSuffix(service(s), ".service"), "-", "_")
	p("# The local %s must be running to hold the address: two failed checks a", service(s))
	p("# second apart put this balancer in FAULT, and it gives the address up at once.")
	p("vrrp_script %s {", check)
	p("    script \"/usr/bin/systemctl is-active --quiet %s\"", service(s))
	p("    interval 1")
	p("    timeout 1")
	p("    fall 2")
	p("    rise 2")
	p("}")
	p("")
	p("vrrp_instance %s {", InstanceName(s))
	p("    # Every balancer starts as BACKUP. When no master is heard, the one whose wait runs")
	p("    # out first takes over, and a higher priority waits less: among balancers that start")
	p("    # together, or backups when the master is lost, the highest priority wins. nopreempt:")
	p("    # a returning balancer does not take the address back (a second interruption). Move")
	p("    # it on purpose with systemctl restart keepalived on the master.")
	p("    state BACKUP")
	p("    nopreempt")
	p("    priority %d", s.VRRPPriority(h.Name))
	p("    interface %s", v.Interface)
	p("    # Unique among the stacks of this build (hacompile checks it).")
	p("    virtual_router_id %d", v.RouterID)
	p("    # VRRPv3, an advertisement every %ss: a backup takes over about 1.5 s after the", AdvertInterval)
	p("    # master's last one.")
	p("    version 3")
	p("    advert_int %s", AdvertInterval)
	p("    # Unicast to the other balancers (cloud networks drop multicast). VRRPv3 carries no")
	p("    # password (version 2's was clear text on the wire): advertisements from any address")
	p("    # that is not a listed peer are dropped (check_unicast_src), which keeps other stacks'")
	p("    # VRRP out.")
	p("    unicast_src_ip %s", h.Address)
	p("    unicast_peer {")
	for _, o := range peers {
		p("        %s", o)
	}
	p("    }")
	p("    check_unicast_src")
	if addsAddress(s) {
		p("    # The master adds the address; the balancer already listens on every address.")
		p("    virtual_ipaddress {")
		p("        %s/%d dev %s", v.VirtualAddress, v.Prefix, v.Interface)
		p("    }")
	} else {
		p("    # keepalived manages at least one address. DigitalOcean delivers the reserved IP's")
		p("    # traffic to the droplet's anchor address, not by ARP, so the address goes on the")
		p("    # master's loopback only, harmless there and a sign of who is master: ip addr show lo.")
		p("    virtual_ipaddress {")
		p("        %s/32 dev lo scope host", v.VirtualAddress)
		p("    }")
	}
	p("    track_script {")
	p("        %s", check)
	p("    }")
	switch {
	case s.Balancer.Failover == "reserved-ip" && s.Provider == "aws":
		p("    # EC2 delivers the address to the network interface it is assigned to; this moves it here.")
		p("    notify_master \"%s\"", opt.P("/"+NotifyPath))
	case s.Balancer.Failover == "reserved-ip":
		p("    # DigitalOcean routes the reserved IP to a droplet; this moves it here.")
		p("    notify_master \"%s\"", opt.P("/"+NotifyPath))
	}
	if Monitored(s) {
		p("    # Every state change, for node_exporter (%s): the alerts compare the balancers.", StateMetric)
		p("    notify \"%s\"", opt.P("/"+StatePath))
	}
	p("}")
	return b.String()
}

// addsAddress reports whether the master adds the virtual address to its
// interface: on a plain network (keepalived) and on AWS, where the
// secondary private address must be configured on the instance too.
func addsAddress(s *schema.Stack) bool {
	return s.Balancer.Failover == "keepalived" || s.Provider == "aws"
}

// versions is the keepalived each target release ships (major.minor),
// by the stack's os value. Every keyword keepalived.conf uses (VRRPv3
// with unicast peers and check_unicast_src, script_user,
// enable_script_security, track_script, notify) is older than 2.0 and
// still in 2.3.3's keepalived.conf(5), so each release reads the file
// the same way: only the comment naming the version follows the release.
// The versions are the release archives': bookworm 1:2.2.7-1+b2, trixie
// 1:2.3.3-1 (checked against a debootstrapped root), noble 1:2.2.8 as
// released (not checked against a root).
var versions = map[string]string{
	"debian-12":    "2.2",
	"debian-13":    "2.3",
	"ubuntu-24.04": "2.2",
}

// release names the keepalived of the stack's target release, as
// "keepalived 2.3 (Debian trixie)"; without a known version, the
// release alone.
func release(osName string) string {
	r := osrelease.MustLookup(osName)
	distro, _, _ := strings.Cut(r.Pretty, " ")
	if v, ok := versions[r.Name]; ok {
		return fmt.Sprintf("keepalived %s (%s %s)", v, distro, r.Codename)
	}
	return fmt.Sprintf("keepalived (%s %s)", distro, r.Codename)
}

func lbNames(s *schema.Stack) string {
	var n []string
	for _, h := range s.HostsWithRole("lb") {
		n = append(n, h.Name)
	}
	return strings.Join(n, ", ")
}

// notifyScript assigns the reserved IP to this droplet.
func notifyScript(s *schema.Stack, opt artifact.Options) string {
	v := s.Balancer.VRRP
	return "#!/bin/sh\n" + artifact.Header("#", s) + `#
# Run by keepalived when this balancer becomes VRRP master: assigns the
# DigitalOcean reserved IP ` + v.VirtualAddress + ` to this droplet through the API.
# The token (a DigitalOcean API token allowed to assign reserved IPs) is read
# from ` + TokenFile + `, which the operator provisions on every balancer
# (paste the token, then Ctrl-D); it never appears on a command line:
#   install -m 600 -o root -g root /dev/stdin ` + TokenFile + ` Settings below may be overridden in
# ` + EnvFile + ` (optional), for example DO_API_BASE for a test.
# Each attempt times out after 10 s; failures are retried with a growing pause,
# except a refusal (HTTP 4xx other than 429), which retrying cannot fix. Every
# step is logged to the journal (tag hacompile-reserved-ip).
set -u

RESERVED_IP=` + artifact.ShellQuote(v.VirtualAddress) + `
TOKEN_FILE=` + opt.P(TokenFile) + `
DO_API_BASE=https://api.digitalocean.com
DO_METADATA_BASE=http://169.254.169.254
` + settingsAndLog(opt) + `
if ! token=$(cat "$TOKEN_FILE" 2>/dev/null) || [ -z "$token" ]; then
    log "cannot read the API token from $TOKEN_FILE: provision it (see the runbook), then run $0"
    exit 1
fi

if ! droplet=$(curl -fsS --connect-timeout 2 --max-time 5 --retry 3 --retry-delay 1 "$DO_METADATA_BASE/metadata/v1/id"); then
    log "cannot read this droplet's id from the metadata service at $DO_METADATA_BASE"
    exit 1
fi
case $droplet in
'' | *[!0-9]*)
    log "the metadata service answered a droplet id that is not a number: $droplet"
    exit 1
    ;;
esac

i=1
while :; do
    # The Authorization header reaches curl on its standard input, not its arguments.
    out=$(printf 'header = "Authorization: Bearer %s"\n' "$token" |
        curl -sS --config - --connect-timeout 3 --max-time 10 -X POST \
            -H 'Content-Type: application/json' \
            -d "{\"type\":\"assign\",\"droplet_id\":$droplet}" \
            -w '\n%{http_code}' "$DO_API_BASE/v2/reserved_ips/$RESERVED_IP/actions" 2>&1)
    code=$(printf '%s\n' "$out" | tail -n 1)
    case $code in
    2??)
        log "assigned $RESERVED_IP to droplet $droplet (attempt $i)"
        exit 0
        ;;
    429 | 5?? | 000 | '') ;;
    4??)
        log "the API refused to assign $RESERVED_IP to droplet $droplet (HTTP $code): $(printf '%s\n' "$out" | head -n 1)"
        exit 1
        ;;
    esac
    if [ "$i" -ge "$ATTEMPTS" ]; then
        log "gave up assigning $RESERVED_IP to droplet $droplet after $i attempts (last: HTTP $code)"
        exit 1
    fi
    log "assigning $RESERVED_IP to droplet $droplet failed (attempt $i, HTTP $code); retrying in $i s"
    sleep "$i"
    i=$((i + 1))
done
`
}

// awsNotifyScript moves the secondary private address (and its Elastic
// IP) to this instance through the EC2 API.
func awsNotifyScript(s *schema.Stack, opt artifact.Options) string {
	v := s.Balancer.VRRP
	what := "the secondary private address " + v.VirtualAddress + " to this instance's\n# network interface (EC2 AssignPrivateIpAddresses, with reassignment)"
	perms := "ec2:AssignPrivateIpAddresses"
	if v.ElasticIPAllocation != "" {
		what += ", and associates\n# the Elastic IP " + v.ElasticIPAllocation + " with it (AssociateAddress, with reassociation)"
		perms += " and ec2:AssociateAddress"
	}
	return "#!/bin/sh\n" + artifact.Header("#", s) + `#
# Run by keepalived when this balancer becomes VRRP master: moves ` + what + `.
# keepalived adds the address to the interface itself.
# Credentials: the instance profile's role, which needs ` + perms + `;
# or, when it exists, the credentials file ` + AWSCredentialsFile + `, which the
# operator provisions (paste it, then Ctrl-D); nothing secret is in this file:
#   install -m 600 -o root -g root /dev/stdin ` + AWSCredentialsFile + `
# Settings below may be overridden in ` + EnvFile + ` (optional),
# for example AWS_EC2_ENDPOINT and AWS_METADATA_BASE for a test.
# Each call times out (3 s to connect, 10 s to answer); failures are retried with
# a growing pause, except a refusal (bad credentials, permissions or ids), which
# retrying cannot fix. Every step is logged to the journal (tag hacompile-reserved-ip).
set -u

VIRTUAL_ADDRESS=` + v.VirtualAddress + `
ALLOCATION_ID=` + v.ElasticIPAllocation + `
CREDENTIALS_FILE=` + opt.P(AWSCredentialsFile) + `
AWS_METADATA_BASE=http://169.254.169.254
AWS_EC2_ENDPOINT=
` + settingsAndLog(opt) + `
if [ -r "$CREDENTIALS_FILE" ]; then
    export AWS_SHARED_CREDENTIALS_FILE="$CREDENTIALS_FILE"
fi
# This script retries; the CLI tries each call once more at most.
export AWS_MAX_ATTEMPTS=2 AWS_PAGER=

# Instance metadata, IMDSv2.
if ! imds=$(curl -fsS --connect-timeout 2 --max-time 5 --retry 3 --retry-delay 1 -X PUT \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' "$AWS_METADATA_BASE/latest/api/token"); then
    log "cannot reach the instance metadata service at $AWS_METADATA_BASE"
    exit 1
fi
md() {
    curl -fsS --connect-timeout 2 --max-time 5 --retry 3 --retry-delay 1 \
        -H "X-aws-ec2-metadata-token: $imds" "$AWS_METADATA_BASE/latest/meta-data/$1"
}
if ! mac=$(md mac) || ! eni=$(md "network/interfaces/macs/$mac/interface-id") || ! region=$(md placement/region); then
    log "cannot read this instance's network interface and region from the metadata service"
    exit 1
fi

ec2() {
    if [ -n "$AWS_EC2_ENDPOINT" ]; then
        set -- "$@" --endpoint-url "$AWS_EC2_ENDPOINT"
    fi
    aws ec2 "$@" --region "$region" --cli-connect-timeout 3 --cli-read-timeout 10 --output text 2>&1
}

# try DESCRIPTION EC2-ARGS...: one EC2 call, retried.
try() {
    what=$1
    shift
    i=1
    while :; do
        if out=$(ec2 "$@"); then
            log "$what (attempt $i)"
            return 0
        fi
        case $out in
        *UnauthorizedOperation* | *AuthFailure* | *InvalidParameter* | *InvalidAllocationID* | *InvalidNetworkInterfaceID* | *InvalidClientTokenId* | *Unable\ to\ locate\ credentials*)
            log "refused: $what: $out"
            return 1
            ;;
        esac
        if [ "$i" -ge "$ATTEMPTS" ]; then
            log "gave up after $i attempts: $what: $out"
            return 1
        fi
        log "failed (attempt $i), retrying in $i s: $what: $out"
        sleep "$i"
        i=$((i + 1))
    done
}

try "moved $VIRTUAL_ADDRESS to $eni" assign-private-ip-addresses \
    --network-interface-id "$eni" --private-ip-addresses "$VIRTUAL_ADDRESS" --allow-reassignment || exit 1
if [ -n "$ALLOCATION_ID" ]; then
    try "associated $ALLOCATION_ID with $VIRTUAL_ADDRESS on $eni" associate-address \
        --allocation-id "$ALLOCATION_ID" --network-interface-id "$eni" \
        --private-ip-address "$VIRTUAL_ADDRESS" --allow-reassociation || exit 1
fi
`
}

// settingsAndLog is the notify scripts' common part: the number of
// attempts, the optional environment file that may override any setting
// above it, and the log function (journal and standard error).
func settingsAndLog(opt artifact.Options) string {
	return `ATTEMPTS=5

if [ -r ` + opt.P(EnvFile) + ` ]; then
    . ` + opt.P(EnvFile) + `
fi

log() {
    logger -t hacompile-reserved-ip -p daemon.notice -- "$*" 2>/dev/null || true
    printf 'hacompile-reserved-ip: %s\n' "$*" >&2
}
`
}

// Reads implements artifact.Scoper: a balancer's peers, names and
// priority come from the other balancers.
func (Gen) Reads(s *schema.Stack, h *schema.Host) []string {
	if h.Has("lb") {
		return lbOnly
	}
	return nil
}

var lbOnly = []string{"lb"}

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
// os names the release whose keepalived version the file's header says.
func (Gen) ReadsSettings() []string {
	return []string{"balancer", "monitoring", "name", "os", "provider"}
}
