// Package pull renders what makes a host converge by itself from an OCI
// registry (delivery.pull): a systemd service running hacompile apply
// for the host's stack and name, a timer starting it every
// interval_minutes with up to randomized_delay_minutes more at random
// (RandomizedDelaySec: a fleet does not hit the registry at once), the
// apply's settings as the service's environment file, the public key
// its signatures must verify with, and node_exporter textfile metrics
// (hacompile apply --metrics-file) that the monitoring's "delivery"
// alerts read. cloud-init installs the agent and runs a first apply.
package pull

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/schema"
)

// Gen is the pull generator.
type Gen struct{}

var _ artifact.Generator = Gen{}

// Kind implements artifact.Generator.
func (Gen) Kind() string { return "pull" }

// UnitDir holds the service and timer: systemd's directory for units
// installed locally, outside /etc/systemd/system, whose services
// cloud-init starts as the stack's own; the agent's first apply is
// started by FirstBoot once the host's services are configured.
const UnitDir = "usr/local/lib/systemd/system"

// ServicePath, TimerPath and EnvPath are the files' paths on the host,
// without the leading slash.
func ServicePath(s *schema.Stack) string { return UnitDir + "/" + Unit(s) + ".service" }

// TimerPath is the timer's path.
func TimerPath(s *schema.Stack) string { return UnitDir + "/" + Unit(s) + ".timer" }

// EnvPath is the apply's environment file.
func EnvPath(s *schema.Stack) string { return "etc/hacompile/" + s.Name + ".pull.env" }

// Unit is the service's and timer's name, without suffix.
func Unit(s *schema.Stack) string { return "hacompile-pull-" + s.Name }

// MetricsFile is the textfile the apply writes its metrics to.
func MetricsFile(s *schema.Stack) string {
	return "/" + nodeexporter.TextfileDir + "/hacompile_pull_" + strings.ReplaceAll(s.Name, "-", "_") + ".prom"
}

// Channel is the tag host h follows.
func Channel(s *schema.Stack, h string) string {
	p := s.Delivery.Pull
	if slices.Contains(p.CanaryHosts, h) {
		return "canary"
	}
	return p.Channel
}

// Generate implements artifact.Generator.
func (Gen) Generate(s *schema.Stack, opt artifact.Options) ([]artifact.File, error) {
	if !s.PullEnabled() {
		return nil, nil
	}
	p := s.Delivery.Pull
	var files []artifact.File
	for _, n := range s.HostNames() {
		if !opt.Renders(n) {
			continue
		}
		files = append(files,
			artifact.File{Host: n, Kind: "pull", Path: EnvPath(s), Content: env(s, n, opt), Mode: 0o644, Owner: "root:root"},
			artifact.File{Host: n, Kind: "pull", Path: ServicePath(s), Content: service(s, opt), Mode: 0o644, Owner: "root:root",
				Validate: artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+ServicePath(s))), Reload: artifact.DaemonReload()},
			artifact.File{Host: n, Kind: "pull", Path: TimerPath(s), Content: timer(s), Mode: 0o644, Owner: "root:root",
				Validate: artifact.Run("systemd-analyze", "verify", "--man=no", opt.P("/"+TimerPath(s))),
				Reload:   artifact.DaemonReload().Then(artifact.Restart(Unit(s) + ".timer"))},
		)
		if p.PublicKey != "" {
			key := p.PublicKey
			if !strings.HasSuffix(key, "\n") {
				key += "\n"
			}
			files = append(files, artifact.File{Host: n, Kind: "pull", Path: strings.TrimPrefix(p.PublicKeyPath, "/"), Content: []byte(key), Mode: 0o644, Owner: "root:root"})
		}
	}
	return files, nil
}

func env(s *schema.Stack, host string, opt artifact.Options) []byte {
	p := s.Delivery.Pull
	var b strings.Builder
	b.WriteString(artifact.Header("#", s))
	fmt.Fprintf(&b, "# hacompile apply on %s, run by %s.timer: follows the tag %q of\n", host, Unit(s), Channel(s, host))
	fmt.Fprintf(&b, "# %s/%s (delivery.pull), verifies the artifact's signature with\n", p.Registry, p.Repository)
	b.WriteString("# the public key before fetching anything else, and writes the host's files\n")
	b.WriteString("# through push's engine (drift refused, backups, validate, reload, health\n")
	b.WriteString("# check, automatic revert). Read by the service as its environment.\n")
	fmt.Fprintf(&b, "HACOMPILE_FROM=oci://%s/%s:%s\n", p.Registry, p.Repository, Channel(s, host))
	fmt.Fprintf(&b, "HACOMPILE_STACK=%s\n", s.Name)
	fmt.Fprintf(&b, "HACOMPILE_HOST=%s\n", host)
	fmt.Fprintf(&b, "HACOMPILE_VERIFY_KEY=%s\n", opt.P(p.PublicKeyPath))
	fmt.Fprintf(&b, "HACOMPILE_METRICS_FILE=%s\n", MetricsFile(s))
	var flags []string
	if p.PlainHTTP {
		flags = append(flags, "--plain-http")
	}
	if p.CredentialsFile != "" {
		flags = append(flags, "--registry-config", opt.P(p.CredentialsFile))
	}
	fmt.Fprintf(&b, "HACOMPILE_APPLY_FLAGS=%q\n", strings.Join(flags, " "))
	return []byte(b.String())
}

func service(s *schema.Stack, opt artifact.Options) []byte {
	p := s.Delivery.Pull
	return []byte(artifact.Header("#", s) +
		"[Unit]\n" +
		"Description=Apply " + s.Name + "'s signed files from " + p.Registry + "/" + p.Repository + "\n" +
		"Wants=network-online.target\n" +
		"After=network-online.target\n\n" +
		"[Service]\n" +
		"Type=oneshot\n" +
		"EnvironmentFile=" + opt.P("/"+EnvPath(s)) + "\n" +
		"ExecStart=" + opt.P(p.Agent.Path) + " apply --from ${HACOMPILE_FROM} --stack ${HACOMPILE_STACK} --host ${HACOMPILE_HOST} " +
		"--verify-key ${HACOMPILE_VERIFY_KEY} --metrics-file ${HACOMPILE_METRICS_FILE} $HACOMPILE_APPLY_FLAGS\n" +
		// A reload the apply runs may restart this very unit's timer:
		// never kill the apply for it.
		"KillMode=process\n" +
		"TimeoutStartSec=30min\n")
}

func timer(s *schema.Stack) []byte {
	p := s.Delivery.Pull
	return []byte(artifact.Header("#", s) +
		"[Unit]\n" +
		"Description=Apply " + s.Name + "'s signed files every " + minutes(p.IntervalMinutes) + "\n\n" +
		delayComment(p.RandomizedDelayMinutes) +
		"[Timer]\n" +
		"OnBootSec=1min\n" +
		"OnUnitInactiveSec=" + strconv.Itoa(p.IntervalMinutes) + "min\n" +
		"RandomizedDelaySec=" + strconv.Itoa(p.RandomizedDelayMinutes) + "min\n" +
		"AccuracySec=1s\n\n" +
		"[Install]\n" +
		"WantedBy=timers.target\n")
}

// delayComment says what RandomizedDelaySec does for the fleet.
func delayComment(n int) string {
	if n == 0 {
		return "# No random delay (delivery.pull.randomized_delay_minutes is 0): every host runs on\n" +
			"# its own schedule from its boot.\n"
	}
	d := strconv.Itoa(n) + " minutes"
	if n == 1 {
		d = "1 minute"
	}
	return "# Each host waits up to " + d + " more at random, so a fleet does not\n" +
		"# reach the registry at once (delivery.pull.randomized_delay_minutes).\n"
}

// minutes says n minutes in words: "minute" for one.
func minutes(n int) string {
	if n == 1 {
		return "minute"
	}
	return strconv.Itoa(n) + " minutes"
}

// Reads implements artifact.Scoper: no other host's record reaches its
// files (a host's pull agent is made from the host alone).
func (Gen) Reads(*schema.Stack, *schema.Host) []string { return nil }

// ReadsSettings implements artifact.SettingsReader: the stack settings its
// files are made from (TestRenderChangedSettingsMatchesRender checks them).
func (Gen) ReadsSettings() []string { return []string{"delivery", "name"} }
