package keepalived

import (
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/schema"
)

// The VRRP state metric. Debian's prometheus-keepalived-exporter is in
// neither bookworm nor trixie, so keepalived says its state itself: its
// notify script (run on every transition with the new state) writes a
// file for node_exporter's textfile collector, which every host of a
// monitored stack runs, and a timer re-runs it to re-check what
// keepalived does not announce: who holds the address (an operator or
// the provider can move it), and whether keepalived still runs (a
// killed keepalived tells no one).
const (
	// StatePath is the notify script, also run by the timer.
	StatePath = "usr/local/sbin/hacompile-keepalived-state"
	// StateServicePath and StateTimerPath re-run it every 30 s.
	StateServicePath = "etc/systemd/system/hacompile-keepalived-state.service"
	StateTimerPath   = "etc/systemd/system/hacompile-keepalived-state.timer"
	// StateTimer is the timer's unit name.
	StateTimer = "hacompile-keepalived-state.timer"
	// StateFile keeps the last state keepalived announced, for the
	// timer's runs; /run is empty after a reboot, as keepalived's state
	// is.
	StateFile = "/run/hacompile-keepalived.state"
	// PIDFile is where keepalived (Debian's unit) writes its process id.
	PIDFile = "/run/keepalived.pid"
	// PromFile is the textfile collector's file, in node_exporter's
	// textfile directory.
	PromFile = "hacompile_keepalived.prom"
)

// The metrics, on each balancer's node_exporter (job "node"), labelled
// with the VRRP instance (vrrp_instance: "instance" is Prometheus's
// label for the scraped target).
const (
	// StateMetric is 1 for the state the instance is in (state="MASTER",
	// "BACKUP" or "FAULT") and 0 for the other two; all three are 0 when
	// keepalived is stopped.
	StateMetric = "hacompile_keepalived_vrrp_state"
	// HeldMetric is 1 when this host holds the virtual address: it is
	// configured on an interface (failover keepalived), or the provider's
	// metadata service says it is assigned to this host (reserved-ip). It
	// is absent when that could not be found out.
	HeldMetric = "hacompile_keepalived_address_held"
	// CheckMetric is 1 when the last check of the address holder
	// succeeded, 0 when it failed (the metadata service did not answer).
	CheckMetric = "hacompile_keepalived_address_check_success"
)

// States are the VRRP states StateMetric has a series for.
var States = []string{"MASTER", "BACKUP", "FAULT"}

// Monitored reports whether the balancers publish their VRRP state: on
// a monitored stack, where node_exporter reads it.
func Monitored(s *schema.Stack) bool { return Enabled(s) && s.Monitoring.Enabled }

// stateFiles are the state script and its timer on a balancer.
func stateFiles(s *schema.Stack, opt artifact.Options) []artifact.File {
	service := artifact.Header("#", s) +
		"[Unit]\n" +
		"Description=Publish keepalived's VRRP state and the address holder for node_exporter\n" +
		"After=keepalived.service\n\n" +
		"[Service]\n" +
		"Type=oneshot\n" +
		"ExecStart=" + opt.P("/"+StatePath) + "\n\n" +
		"[Install]\n" +
		"WantedBy=multi-user.target\n"
	timer := artifact.Header("#", s) +
		"[Unit]\n" +
		"Description=Re-check keepalived's VRRP state and the address holder every 30 s\n\n" +
		"# keepalived publishes each change at once (notify); this catches what it does\n" +
		"# not announce: the address moved by someone else, keepalived killed. 30 s and\n" +
		"# one scrape are well within the alerts' for: of 1 and 2 minutes.\n" +
		"[Timer]\n" +
		"OnBootSec=30s\n" +
		"OnUnitActiveSec=30s\n" +
		"AccuracySec=1s\n\n" +
		"[Install]\n" +
		"WantedBy=timers.target\n"
	return []artifact.File{
		{Kind: "keepalived", Path: StatePath, Content: []byte(stateScript(s, opt)), Mode: 0o755, Owner: "root:root",
			Validate: artifact.Run("sh", "-n", opt.P("/"+StatePath))},
		{Kind: "keepalived", Path: StateServicePath, Content: []byte(service), Mode: 0o644, Owner: "root:root",
			Validate: artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+StateServicePath)), Reload: artifact.DaemonReload()},
		{Kind: "keepalived", Path: StateTimerPath, Content: []byte(timer), Mode: 0o644, Owner: "root:root",
			Validate: artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+StateTimerPath)),
			Reload:   artifact.DaemonReload().Then(artifact.Restart(StateTimer))},
	}
}

// stateScript writes StateMetric, HeldMetric and CheckMetric.
func stateScript(s *schema.Stack, opt artifact.Options) string {
	v := s.Balancer.VRRP
	var settings, check string
	switch {
	case s.Balancer.Failover == "reserved-ip" && s.Provider == "aws":
		settings = "AWS_METADATA_BASE=http://169.254.169.254\n"
		check = `# The address is held where EC2 has it assigned: a private address of this
# instance's network interface, in the instance metadata (IMDSv2).
md() {
    curl -fsS --connect-timeout 1 --max-time 3 -H "X-aws-ec2-metadata-token: $imds" "$AWS_METADATA_BASE/latest/meta-data/$1"
}
if imds=$(curl -fsS --connect-timeout 1 --max-time 3 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 60' "$AWS_METADATA_BASE/latest/api/token") &&
    mac=$(md mac) && addresses=$(md "network/interfaces/macs/$mac/local-ipv4s"); then
    check=1
    if printf '%s\n' "$addresses" | grep -qxF "$ADDRESS"; then
        held=1
    fi
fi
`
	case s.Balancer.Failover == "reserved-ip":
		settings = "DO_METADATA_BASE=http://169.254.169.254\n"
		check = `# The reserved IP is held by the droplet DigitalOcean routes it to, which the
# droplet's metadata says (the address on lo only marks keepalived's master).
md() {
    curl -fsS --connect-timeout 1 --max-time 3 "$DO_METADATA_BASE/metadata/v1/floating_ip/ipv4/$1"
}
if active=$(md active); then
    case $active in
    true)
        if ip=$(md ip_address); then
            check=1
            if [ "$ip" = "$ADDRESS" ]; then
                held=1
            fi
        fi
        ;;
    false) check=1 ;;
    esac
fi
`
	default:
		check = `# The address is held where it is configured.
if addresses=$(ip -o address show to "$ADDRESS/32"); then
    check=1
    if [ -n "$addresses" ]; then
        held=1
    fi
fi
`
	}
	env := ""
	if s.Balancer.Failover == "reserved-ip" {
		settings += "RECHECK_AFTER=10\n"
		env = "\n# The notify script's settings file (a test points the metadata base there).\nif [ -r " + opt.P(EnvFile) + " ]; then\n    . " + opt.P(EnvFile) + "\nfi\n"
	}
	label := `vrrp_instance=\"$INSTANCE\"`
	return "#!/bin/sh\n" + artifact.Header("#", s) + `#
# Publishes this balancer's VRRP state and whether it holds the address
# ` + v.VirtualAddress + ` for node_exporter's textfile collector (` + PromFile + `);
# monitoring/alerts.yaml (group vrrp) compares the balancers: no master, more
# than one, a balancer in FAULT, the address held by another than the master.
# keepalived runs it on every state change (notify: INSTANCE <name> <state>
# <priority>); ` + StateTimer + ` runs it every 30 s with no arguments
# to re-check what keepalived does not announce: the address moved by someone
# else, keepalived ended without a word (killed).
set -u
umask 022
PATH=/usr/sbin:/usr/bin:/sbin:/bin

INSTANCE=` + InstanceName(s) + `
ADDRESS=` + v.VirtualAddress + `
STATE_FILE=` + opt.P(StateFile) + `
PID_FILE=` + opt.P(PIDFile) + `
OUT=` + opt.P("/"+nodeexporter.TextfileDir+"/"+PromFile) + `
` + settings + env + `
# One writer at a time: keepalived starts a notify script per transition
# without waiting, and the timer may run meanwhile.
exec 9>>"$STATE_FILE.lock"
flock -w 10 9 || exit 1

# A transition of this instance (another's, or a group's, only refreshes).
if [ $# -ge 3 ] && [ "$1" = INSTANCE ] && [ "$2" = "$INSTANCE" ]; then
    case $3 in
    MASTER | BACKUP | FAULT | STOP | DELETED)
        printf '%s\n' "$3" >"$STATE_FILE.tmp" && mv -f "$STATE_FILE.tmp" "$STATE_FILE"
        ;;
    esac
fi
# keepalived ended without saying so (killed, crashed): it is in no state.
if ! pid=$(cat "$PID_FILE" 2>/dev/null) || ! kill -0 "$pid" 2>/dev/null; then
    state=STOP
elif ! state=$(cat "$STATE_FILE" 2>/dev/null) || [ -z "$state" ]; then
    # keepalived has announced nothing since this script was installed (it
    # was running already) or since /run was emptied: the master is the one
    # with the address keepalived adds (` + keepalivedAdds(s) + `).
    if [ -n "$(ip -o address show to "$ADDRESS/32" 2>/dev/null)" ]; then
        state=MASTER
    else
        state=BACKUP
    fi
fi

check=0
held=0
` + check + `
# Written beside the file and renamed over it: the collector never reads half.
tmp="$OUT.$$"
{
    echo '# HELP ` + StateMetric + ` The VRRP state keepalived is in: 1 for it, 0 for the others; all 0 when keepalived is stopped.'
    echo '# TYPE ` + StateMetric + ` gauge'
    for s in ` + joinStates() + `; do
        v=0
        if [ "$s" = "$state" ]; then
            v=1
        fi
        echo "` + StateMetric + `{` + label + `,state=\"$s\"} $v"
    done
    echo '# HELP ` + CheckMetric + ` Whether the last check of the address holder succeeded.'
    echo '# TYPE ` + CheckMetric + ` gauge'
    echo "` + CheckMetric + `{` + label + `,address=\"$ADDRESS\"} $check"
    if [ "$check" = 1 ]; then
        echo '# HELP ` + HeldMetric + ` Whether this host holds the virtual address.'
        echo '# TYPE ` + HeldMetric + ` gauge'
        echo "` + HeldMetric + `{` + label + `,address=\"$ADDRESS\"} $held"
    fi
} >"$tmp" && mv -f "$tmp" "$OUT"
` + recheck(s)
}

// recheck is, for a reserved IP, a second look a few seconds after
// becoming master: notify_master moves the address through the API while
// this script runs, so the first look usually finds it still elsewhere,
// and the timer's next run may be 30 s away.
func recheck(s *schema.Stack) string {
	if s.Balancer.Failover != "reserved-ip" {
		return ""
	}
	return `
# Just became master: the notify_master script is moving the address now.
# Look again once it has had time (RECHECK_AFTER seconds), in the background.
if [ $# -ge 3 ] && [ "$3" = MASTER ] && [ "$held" = 0 ]; then
    (
        sleep "$RECHECK_AFTER"
        exec "$0"
    ) </dev/null >/dev/null 2>&1 9>&- &
fi
`
}

// keepalivedAdds says where keepalived's master adds the address.
func keepalivedAdds(s *schema.Stack) string {
	if addsAddress(s) {
		return "on " + s.Balancer.VRRP.Interface
	}
	return "on lo"
}

func joinStates() string {
	out := ""
	for i, st := range States {
		if i > 0 {
			out += " "
		}
		out += st
	}
	return out
}
