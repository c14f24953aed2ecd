package cli

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/generators/pull"
	"github.com/hacompile/hacompile/internal/oci"
)

// exitNotConverged is promote's "the canary hosts have not converged
// (yet)": nothing was moved, and a later run may go through.
const exitNotConverged = 7

const promoteLong = `Promote moves a stack's hosts from one channel to another — their --to tags
(stable) to the digests their --from tags (canary) point at — once the hosts
following --from have converged: each one (delivery.pull.canary_hosts for
canary) must report, in the metrics its pull agent writes (hacompile apply
--metrics-file, node_exporter's textfile collector), having applied the
digest its --from tag points at (hacompile_applied_info{digest}), and no
failed apply since (hacompile_apply_consecutive_failures 0). Otherwise
nothing moves, and promote names each host not converged, failing, or whose
metrics it could not read (exit 7).

The metrics are read from each canary's node_exporter (http://<address>:
<monitoring.ports.node>/metrics, as the stack renders it; --metrics HOST=URL
overrides one host's), or with --prometheus from a Prometheus server's query
API, by the host label the stack's prometheus.yml gives node_exporter's
targets. --wait asks again every 5 seconds until the canaries converge or
the time is up.

The digests are resolved once, before the check: an artifact published to
--from while promote waits is not promoted unchecked. Tags move by digest,
so every host's --to tag gets exactly the artifact its canary counterpart
has, and the signatures (which name the digest and the repository) stay
valid; --verify-key checks each one before anything moves. A tag already at
its digest is left.

The registry and repository are the stack's delivery.pull ones unless --oci
names others; credentials come from the Docker config as for publish --oci.

Exit codes: 0 promoted (or nothing to move); 1 failed; 64 usage error; 7 the
hosts following --from have not converged (nothing moved).`

func newPromote() *cobra.Command {
	var from, to, ociName, prom, stacks, registryConfig, verifyKey string
	var metrics []string
	var plainHTTP, dryRun bool
	var wait time.Duration
	c := &cobra.Command{
		Use:   "promote [STACK] [--from canary] [--to stable] [--prometheus URL | --metrics HOST=URL...]",
		Short: "Move a stack's stable tags to the canary's artifacts once the canary hosts applied them",
		Long:  promoteLong,
		Example: `  hacompile promote shop                                   # canary → stable, reading the canaries' node_exporters
  hacompile promote shop --prometheus http://10.0.0.5:9090 --wait 30m
  hacompile promote shop --metrics app1=http://127.0.0.1:9100/metrics --dry-run`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !oci.ValidTag(from) || !oci.ValidTag(to) {
				return usageError{fmt.Errorf("--from %q, --to %q: want tags (letters, digits, '.', '_', '-')", from, to)}
			}
			if from == to {
				return usageError{fmt.Errorf("--from and --to are both %q", from)}
			}
			if prom != "" && len(metrics) > 0 {
				return usageError{errors.New("--prometheus and --metrics are two sources of the same metrics: give one")}
			}
			if wait < 0 {
				return usageError{fmt.Errorf("--wait: want a duration of 0 or more, got %s", wait)}
			}
			if prom != "" {
				if u, err := url.Parse(prom); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return usageError{fmt.Errorf("--prometheus %q: want the server's http:// or https:// URL", prom)}
				}
			}
			r, err := resolveStack(cmd, stacks, args)
			if err != nil {
				return err
			}
			s := r.Stack
			if !s.PullEnabled() {
				return usageError{fmt.Errorf("stack %s has no delivery.pull: its hosts do not follow channel tags", s.Name)}
			}
			pl := s.Delivery.Pull
			name := pl.Registry + "/" + pl.Repository
			if ociName != "" {
				name = strings.TrimPrefix(ociName, "oci://")
			}
			ref, err := oci.ParseRef(name + ":" + from)
			if err != nil {
				return usageError{fmt.Errorf("--oci: want REGISTRY/REPOSITORY: %w", err)}
			}
			if !cmd.Flags().Changed("plain-http") {
				plainHTTP = pl.PlainHTTP
			}
			hosts := s.HostNames()
			var gate []string
			for _, h := range hosts {
				if pull.Channel(s, h) == from {
					gate = append(gate, h)
				}
			}
			var src oci.StatusSource
			if prom != "" {
				src = oci.Prometheus{URL: prom}
			} else {
				urls := map[string]string{}
				for _, h := range gate {
					urls[h] = "http://" + nodeexporter.ListenAddress(s, s.Hosts[h]) + "/metrics"
				}
				for _, m := range metrics {
					h, u, ok := strings.Cut(m, "=")
					if !ok || !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
						return usageError{fmt.Errorf("--metrics %q: want HOST=http://ADDRESS:PORT/metrics", m)}
					}
					if !slices.Contains(gate, h) {
						return usageError{fmt.Errorf("--metrics %q: %s is not a host of %s following %q (those are: %s)", m, h, s.Name, from, strings.Join(gate, ", "))}
					}
					urls[h] = u
				}
				src = oci.Scrape{URLs: urls}
			}
			var key *ecdsa.PublicKey
			if verifyKey != "" {
				k, err := oci.LoadPublicKey(verifyKey)
				if err != nil {
					return fmt.Errorf("--verify-key: %w", err)
				}
				key = k
			}
			if err := checkRegistryConfig(registryConfig); err != nil {
				return err
			}
			repo, err := oci.Open(ref, oci.RepoOptions{PlainHTTP: plainHTTP, DockerConfig: registryConfig, Timeout: time.Minute})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(contextOf(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
			res, err := oci.Promote(ctx, repo, oci.PromoteOptions{
				Name: ref.Name(), From: from, To: to, Stack: s.Name, Hosts: hosts, Gate: gate,
				Status: src, Key: key, Wait: wait, Poll: 5 * time.Second, DryRun: dryRun,
				Progress: func(round int, g []oci.GateHost) {
					if wait == 0 {
						return
					}
					n := 0
					for _, h := range g {
						if h.Problem == "" {
							n++
						}
					}
					fmt.Fprintf(stderr, "%s: %d of %d %s hosts converged\n", time.Now().UTC().Format(time.TimeOnly), n, len(g), from)
				},
			})
			if errors.Is(err, oci.ErrNotConverged) {
				fmt.Fprintf(stderr, "hacompile: %v\n", err)
				return codedError{exitNotConverged}
			}
			if err != nil {
				return err
			}
			for _, g := range res.Gate {
				fmt.Fprintf(stdout, "%s: applied %s (%s-%s-%s), no failure since\n", g.Host, oci.ShortDigest(g.Status.Digest), from, s.Name, g.Host)
			}
			if res.Index != "" {
				state := "already there"
				if res.IndexMoved {
					state = map[bool]string{true: "to move", false: "moved"}[dryRun]
				}
				fmt.Fprintf(stdout, "index %s-%s: %s (%s)\n", to, s.Name, oci.ShortDigest(res.Index.String()), state)
			}
			verb, moved := "promoted", "moved"
			if dryRun {
				verb, moved = "would promote", "to move"
			}
			fmt.Fprintf(stdout, "%s %s from %s to %s at %s: %d %s %s, %d already there (%d %s %s converged)\n",
				verb, s.Name, from, to, ref.Name(), res.Moved, countNoun(res.Moved, "tag", "tags"), moved, res.Already, len(res.Gate), from, countNoun(len(res.Gate), "host", "hosts"))
			return nil
		},
	}
	fl := c.Flags()
	fl.StringVar(&from, "from", "canary", "the channel whose artifacts are promoted; the hosts following it are the gate")
	fl.StringVar(&to, "to", "stable", "the channel whose tags move")
	fl.StringVar(&prom, "prometheus", "", "read the canaries' metrics from this Prometheus server's query API (by their host label) instead of their node_exporters")
	fl.StringArrayVar(&metrics, "metrics", nil, "HOST=URL: read this canary's metrics from URL instead of http://<address>:<monitoring.ports.node>/metrics (repeatable)")
	fl.DurationVar(&wait, "wait", 0, "ask again every 5 s for up to this long while the canaries have not converged (0: ask once)")
	fl.BoolVar(&dryRun, "dry-run", false, "check the canaries and say what would move; move nothing")
	fl.StringVar(&verifyKey, "verify-key", "", "ECDSA P-256 public key (PEM) each promoted artifact's signature must verify with before any tag moves")
	fl.StringVar(&ociName, "oci", "", "REGISTRY/REPOSITORY holding the tags (default: the stack's delivery.pull registry and repository)")
	fl.BoolVar(&plainHTTP, "plain-http", false, "speak HTTP to the registry instead of HTTPS (default: the stack's delivery.pull.plain_http)")
	fl.StringVar(&registryConfig, "registry-config", "", "Docker config.json with the registry's credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)")
	fl.StringVar(&stacks, "stacks", "stacks", "directory holding the stack files, for STACK given as a name")
	addStackFlags(c)
	return c
}
