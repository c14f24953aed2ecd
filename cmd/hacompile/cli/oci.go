package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/oci"
	"github.com/hacompile/hacompile/internal/push"
	"github.com/hacompile/hacompile/schema"
)

// ociFlags are publish --oci's.
type ociFlags struct {
	ref            string
	signKey        string
	plainHTTP      bool
	registryConfig string
}

func (f *ociFlags) register(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.ref, "oci", "", "publish each host's files as a signed OCI artifact to REGISTRY/REPOSITORY:TAG (tagged TAG-<stack>-<host>) instead of committing to a branch")
	fl.StringVar(&f.signKey, "sign-key", "", "with --oci: ECDSA P-256 private key (PEM) signing each artifact, cosign-compatible (hacompile keygen makes one)")
	fl.BoolVar(&f.plainHTTP, "plain-http", false, "with --oci: speak HTTP to the registry instead of HTTPS (a registry on loopback)")
	fl.StringVar(&f.registryConfig, "registry-config", "", "with --oci: Docker config.json with the registry's credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json, as docker login and oras login write it)")
}

// gitOnlyFlags are publish's flags that mean nothing with --oci.
var gitOnlyFlags = []string{"branch", "repo", "prefix", "push", "remote", "author", "committer", "date", "identity", "known-hosts", "ssh-key"}

// checkOCIFlags refuses a mix of --oci and the git flags, and --oci
// without its key.
func (f *ociFlags) check(c *cobra.Command) error {
	if f.ref == "" {
		for _, n := range []string{"sign-key", "plain-http", "registry-config"} {
			if c.Flags().Changed(n) {
				return usageError{fmt.Errorf("--%s is for --oci", n)}
			}
		}
		return nil
	}
	for _, n := range gitOnlyFlags {
		if c.Flags().Changed(n) {
			return usageError{fmt.Errorf("--%s is for publishing to a branch; --oci publishes to a registry", n)}
		}
	}
	if _, err := oci.ParseRef(f.ref); err != nil {
		return usageError{fmt.Errorf("--oci: %w", err)}
	}
	if f.signKey == "" {
		return usageError{errors.New("--oci needs --sign-key: every artifact is signed (hacompile keygen makes a key pair)")}
	}
	return keyFile("--sign-key", f.signKey)
}

// publishOCI pushes every host of the rendered stacks.
func publishOCI(cmd *cobra.Command, f *ociFlags, res *compile.Result, revision string) error {
	ref, _ := oci.ParseRef(f.ref)
	key, err := oci.LoadPrivateKey(f.signKey)
	if err != nil {
		return fmt.Errorf("--sign-key: %w", err)
	}
	var packs []*oci.Packed
	stacks := 0
	rendered := slices.Clone(res.Rendered)
	slices.SortFunc(rendered, func(a, b *compile.Rendered) int { return strings.Compare(a.Stack.Name, b.Stack.Name) })
	for _, r := range rendered {
		ps, err := oci.PackStack(r, revision, nil)
		if err != nil {
			return err
		}
		stacks++
		packs = append(packs, ps...)
	}
	if err := checkRegistryConfig(f.registryConfig); err != nil {
		return err
	}
	repo, err := oci.Open(ref, oci.RepoOptions{PlainHTTP: f.plainHTTP, DockerConfig: f.registryConfig, Timeout: 5 * time.Minute})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(contextOf(cmd), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := oci.Publish(ctx, repo, ref, packs, key, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "published %d %s of %d %s to %s (tags %s-<stack>-<host>): %d %s uploaded (%d bytes), %d already there; %d %s pushed, %d unchanged; %d stack %s pushed (tags %s-<stack>); %d signed\n",
		len(packs), countNoun(len(packs), "host", "hosts"), stacks, countNoun(stacks, "stack", "stacks"), ref, ref.Tag,
		st.BlobsUploaded, countNoun(st.BlobsUploaded, "blob", "blobs"), st.BytesUploaded, st.BlobsPresent,
		st.Manifests, countNoun(st.Manifests, "manifest", "manifests"), st.Unchanged, st.Indexes, countNoun(st.Indexes, "index", "indexes"), ref.Tag, st.Signed)
	return nil
}

const applyLong = `Apply makes this machine's files those of its host's artifact in an OCI
registry, published by 'hacompile publish --oci': the pull half of delivery,
for fleets where pushing from one machine does not scale.

It resolves the tag <TAG>-<stack>-<host> of --from to a digest, verifies that
digest's cosign-compatible signature (tag sha256-<hex>.sig) against
--verify-key before fetching anything else, then fetches the artifact's config
and file blobs by digest, checking each one's sha256 (a file whose content is
already on the host is not fetched). Only then is anything written, through
push's own engine on this machine: planned against the last applied record
(/var/lib/hacompile/<stack>.json), a file changed by hand is drift (refused
unless --force, which backs it up), each file replaced atomically with a
backup generation, the validate commands run (a failure puts the previous
files back), then the reloads and the host's health check (a failure
restores and reloads the previous files unless --no-auto-revert).

A failed pull — an unsigned artifact, a signature by another key, a tampered
blob, a registry gone mid-pull — leaves every file as it was. Each apply,
successful or not, is recorded in /var/lib/hacompile/<stack>.pull.json and,
with --metrics-file, as node_exporter textfile metrics:
hacompile_applied_generation, hacompile_applied_info{digest,ref},
hacompile_apply_behind, hacompile_apply_last_success_timestamp_seconds,
hacompile_apply_last_attempt_timestamp_seconds,
hacompile_apply_failures_total and hacompile_apply_consecutive_failures.

--root places the tree under a prefix (a chroot, a staging tree) as push's
--root does: only the validate commands checking the tree run, nothing is
reloaded.

Exit codes: 0 applied (or nothing to change); 1 failed (nothing written, or
restored); 64 usage error; 5 drift (nothing written).`

func newApply() *cobra.Command {
	var from, stack, host, root, verifyKey, registryConfig, metrics, output string
	var plainHTTP, force, dryRun, noHealth, noAutoRevert bool
	var keep int
	var timeout, commandTimeout, healthTimeout, lockTimeout time.Duration
	c := &cobra.Command{
		Use:   "apply --from oci://REGISTRY/REPOSITORY:TAG --stack STACK --host NAME --verify-key PEM",
		Short: "Converge this host from its signed artifact in an OCI registry",
		Long:  applyLong,
		Example: `  hacompile apply --from oci://registry.example.com/ops/shop:stable --stack shop --host app1 --verify-key /etc/hacompile/shop.pub
  hacompile apply --from oci://127.0.0.1:5000/shop:canary --plain-http --stack shop --host app1 --verify-key shop.pub --root /srv/staging/app1 --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if from == "" || stack == "" || verifyKey == "" {
				return usageError{errors.New("apply needs --from, --stack and --verify-key")}
			}
			ref, err := oci.ParseRef(from)
			if err != nil {
				return usageError{fmt.Errorf("--from: %w", err)}
			}
			if host == "" {
				h, err := os.Hostname()
				if err != nil {
					return usageError{errors.New("--host: this machine has no host name; give the stack's name for it")}
				}
				host, _, _ = strings.Cut(h, ".")
			}
			// The stack's and the host's names make the tag the host
			// follows: names the stack could not have are a usage error.
			if err := schema.CheckName(stack); err != nil {
				return usageError{fmt.Errorf("--stack: %w", err)}
			}
			if err := schema.CheckName(host); err != nil {
				if cmd.Flags().Changed("host") {
					return usageError{fmt.Errorf("--host: %w", err)}
				}
				return usageError{fmt.Errorf("--host: this machine's short host name %w; give the stack's name for it", err)}
			}
			if !strings.HasPrefix(root, "/") {
				return usageError{fmt.Errorf("--root %q: want an absolute path", root)}
			}
			// push's --root is a template ({host}); apply places one
			// host's tree, so a brace would be a directory's name.
			if err := checkRegistryConfig(registryConfig); err != nil {
				return err
			}
			if strings.ContainsAny(root, "{}") {
				return usageError{fmt.Errorf("--root %q: apply places this host's tree, and its --root has no placeholders: write the directory itself, such as /srv/staging/%s", root, host)}
			}
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("--output: want text or json, got %q", output)}
			}
			if metrics != "" && !filepath.IsAbs(metrics) {
				return usageError{fmt.Errorf("--metrics-file %q: want an absolute path", metrics)}
			}
			if keep < 0 {
				return usageError{fmt.Errorf("--keep: want 0 (keep all) or more, got %d", keep)}
			}
			for _, d := range []struct {
				name string
				v    time.Duration
			}{{"--timeout", timeout}, {"--command-timeout", commandTimeout}, {"--health-timeout", healthTimeout}, {"--lock-timeout", lockTimeout}} {
				if d.v <= 0 {
					return usageError{fmt.Errorf("%s: want a positive duration, got %s", d.name, d.v)}
				}
			}
			key, err := oci.LoadPublicKey(verifyKey)
			if err != nil {
				return fmt.Errorf("--verify-key: %w", err)
			}
			stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
			var progress push.Progress
			if output == "json" {
				progress = push.NewJSONProgress(stdout)
			} else {
				progress = push.NewLogProgress(stderr)
			}
			// Run by its unit, apply's SIGTERM is the machine shutting
			// down: it stops at once.
			ctx, interrupted, end := interruptible(contextOf(cmd), sayer(stderr, push.Tee{progress}), false)
			defer end()
			res, err := oci.Apply(ctx, oci.ApplyOptions{
				Ref: ref, Repo: oci.RepoOptions{PlainHTTP: plainHTTP, DockerConfig: registryConfig},
				Stack: stack, Host: host, Key: key, Root: root, NoHealth: noHealth, Force: force, DryRun: dryRun,
				NoAutoRevert: noAutoRevert, Keep: keep, Timeout: timeout, CommandTimeout: commandTimeout,
				HealthTimeout: healthTimeout, LockTimeout: lockTimeout, MetricsFile: metrics,
				Progress: progress, By: whoAmI(), PID: os.Getpid(), Stop: interrupted,
			})
			if res != nil && res.Summary != nil {
				if output == "json" {
					if err := json.NewEncoder(stdout).Encode(res.Summary); err != nil {
						return err
					}
				} else if dryRun {
					for _, h := range res.Summary.Hosts {
						if h.Plan != nil {
							h.Plan.Format(stdout)
						}
					}
				} else {
					printSummary(stdout, res.Summary)
				}
			}
			if res != nil && res.Pulled != nil && output == "text" {
				fmt.Fprintf(stderr, "%s: %s at %s: signature verified, %d file %s fetched (%d bytes), %d already here\n",
					host, res.Pulled.Tag, res.Pulled.Digest, res.Pulled.Fetched, countNoun(res.Pulled.Fetched, "blob", "blobs"), res.Pulled.Bytes, res.Pulled.Reused)
			}
			if err == nil {
				return nil
			}
			if res != nil && res.Summary != nil {
				return reportHosts(stderr, res.Summary)
			}
			return err
		},
	}
	fl := c.Flags()
	fl.StringVar(&from, "from", "", "the channel to follow: oci://REGISTRY/REPOSITORY:TAG (the host's artifact is at TAG-<stack>-<host>)")
	fl.StringVar(&stack, "stack", "", "the stack this host belongs to")
	fl.StringVar(&host, "host", "", "this host's name in the stack (default: the machine's short host name)")
	fl.StringVar(&verifyKey, "verify-key", "", "ECDSA P-256 public key (PEM) the artifact's signature must verify with")
	fl.StringVar(&root, "root", "/", "directory the host's tree goes under; under a prefix only validate commands checking the tree run, and nothing is reloaded")
	fl.BoolVar(&plainHTTP, "plain-http", false, "speak HTTP to the registry instead of HTTPS (a registry on loopback)")
	fl.StringVar(&registryConfig, "registry-config", "", "Docker config.json with the registry's credentials (default: $DOCKER_CONFIG/config.json or ~/.docker/config.json)")
	fl.StringVar(&metrics, "metrics-file", "", "node_exporter textfile collector file to write the apply's metrics to (e.g. /var/lib/prometheus/node-exporter/hacompile-shop.prom)")
	fl.BoolVar(&dryRun, "dry-run", false, "pull, verify and print the plan; change nothing")
	fl.BoolVar(&force, "force", false, "overwrite files changed by hand since the last apply (they are backed up)")
	fl.BoolVar(&noHealth, "no-health-check", false, "skip the HTTP health check")
	fl.BoolVar(&noAutoRevert, "no-auto-revert", false, "when a reload or the health check fails, leave the new files in place instead of restoring the previous ones")
	fl.IntVar(&keep, "keep", 10, "generations of backups kept (0 keeps all)")
	fl.DurationVar(&timeout, "timeout", 60*time.Second, "deadline for each registry request and each file operation")
	fl.DurationVar(&commandTimeout, "command-timeout", 2*time.Minute, "deadline for each validate or reload command")
	fl.DurationVar(&healthTimeout, "health-timeout", 60*time.Second, "how long the host may take to pass its health check")
	fl.DurationVar(&lockTimeout, "lock-timeout", 15*time.Minute, "a lock left by an apply or push elsewhere that has not been refreshed for this long is taken over")
	fl.StringVarP(&output, "output", "o", "text", "output: text, or json (JSON lines: one per event, then the summary)")
	return c
}

func newKeygen() *cobra.Command {
	var out string
	c := &cobra.Command{
		Use:   "keygen [--out PREFIX]",
		Short: "Make the key pair that signs and verifies OCI artifacts",
		Long: `Keygen writes an ECDSA P-256 key pair for publish --oci (--sign-key PREFIX.key,
PEM PKCS #8, mode 0600) and apply (--verify-key PREFIX.pub, PEM PKIX, the key
hosts are given). They are the formats cosign and containers/image read
(cosign verify --key PREFIX.pub; a containers-policy.json sigstoreSigned
requirement with keyPath). Existing files are never overwritten.

The same pair with openssl:
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out hacompile.key
  openssl pkey -in hacompile.key -pubout -out hacompile.pub`,
		Example: `  hacompile keygen                              # hacompile.key and hacompile.pub here
  hacompile keygen --out /secure/ops-2026       # /secure/ops-2026.key and .pub
  hacompile publish --oci registry.internal:5000/ops/fleet:canary --sign-key /secure/ops-2026.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || strings.HasSuffix(out, "/") {
				return usageError{fmt.Errorf("--out: want a file name prefix (PREFIX.key, PREFIX.pub), got %q", out)}
			}
			priv, pub, err := oci.GenerateKey()
			if err != nil {
				return err
			}
			kf, pf := out+".key", out+".pub"
			for _, p := range []string{kf, pf} {
				if _, err := os.Lstat(p); err == nil {
					return fmt.Errorf("%s exists: not overwritten", p)
				}
			}
			f, err := os.OpenFile(kf, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			if _, err := f.Write(priv); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.WriteFile(pf, pub, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (keep it secret: it signs what every host applies) and %s (give it to the hosts)\n", kf, pf)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "hacompile", "path prefix of the two files: PREFIX.key and PREFIX.pub")
	return c
}

// checkRegistryConfig checks --registry-config, when given, before the
// registry is reached: a file that is not there (a typo) would leave
// the command without credentials until the registry refused it, which
// does not say why.
func checkRegistryConfig(p string) error {
	if p == "" {
		return nil
	}
	if _, err := os.Stat(p); err != nil {
		return fmt.Errorf("--registry-config: %w", err)
	}
	return nil
}
