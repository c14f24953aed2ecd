package oci

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/hacompile/hacompile/internal/push"
)

// ApplyOptions are one apply on a host.
type ApplyOptions struct {
	Ref         Ref
	Repo        RepoOptions
	Stack, Host string
	Key         *ecdsa.PublicKey
	// Root is the directory the host's tree goes under: "/" on a real
	// host; a prefix leaves the machine's services alone (push's
	// --root: only validate commands checking the tree run, nothing is
	// reloaded).
	Root           string
	NoHealth       bool
	Force          bool // overwrite drifted files (backed up)
	DryRun         bool
	NoAutoRevert   bool
	Keep           int
	Timeout        time.Duration // each registry request and local file operation
	CommandTimeout time.Duration
	HealthTimeout  time.Duration
	LockTimeout    time.Duration
	// MetricsFile, when set, is node_exporter's textfile collector file
	// written after every apply, success or not (under Root).
	MetricsFile string
	Progress    push.Progress
	By          string
	PID         int
	// Stop, when it closes (the first interrupt), ends a pull under
	// way, before anything is written, or lets the files' apply go on
	// to its end and release the lock (push.Options.Stop).
	Stop <-chan struct{}
	now  func() time.Time
}

// ApplyResult is what an apply did.
type ApplyResult struct {
	Pulled  *Pulled
	Summary *push.Summary
}

// PullState is the host's record of its applies, beside push's own
// (/var/lib/hacompile/<stack>.pull.json): what the metrics report.
type PullState struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"` // the artifact last applied
	// Available is the digest the tag pointed at in the last attempt
	// that resolved it: when it is not Digest, the host is behind.
	Available   string    `json:"available,omitempty"`
	Generation  int       `json:"generation,omitempty"`
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	Failures    int       `json:"failures"` // every failed apply since the record began
	Consecutive int       `json:"consecutive_failures"`
	LastError   string    `json:"last_error,omitempty"`
}

// PullStatePath is where the host keeps its PullState.
func PullStatePath(stack string) string { return push.StateDir + "/" + stack + ".pull.json" }

// Apply pulls the host's artifact (its signature verified before
// anything else is fetched, every blob checked against its digest) and
// hands the files to push's engine on this machine: planned against
// the last applied state (drift refused unless Force), written
// atomically with a backup generation, validated (restored on
// failure), reloaded and health-checked, reverted automatically when a
// reload or the check fails. Nothing is written before the pull is
// complete and verified: a pull that fails leaves the host as it was.
func Apply(ctx context.Context, o ApplyOptions) (*ApplyResult, error) {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.now == nil {
		o.now = time.Now
	}
	res := &ApplyResult{}
	err := apply(ctx, o, res)
	if !o.DryRun {
		if rerr := o.record(res, err); rerr != nil && err == nil {
			err = rerr
		}
	}
	return res, err
}

func apply(ctx context.Context, o ApplyOptions, res *ApplyResult) error {
	if o.Repo.Timeout == 0 {
		o.Repo.Timeout = o.Timeout
	}
	repo, err := Open(o.Ref, o.Repo)
	if err != nil {
		return err
	}
	select {
	case <-o.Stop:
		// Seen here, not only by the watch below: a quick pull could
		// finish before the watch ran.
		return errors.New("interrupted before pulling, so nothing was written")
	default:
	}
	pctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-o.Stop:
			cancel()
		case <-pctx.Done():
		}
	}()
	res.Pulled, err = Pull(pctx, repo, o.Ref, PullOptions{Stack: o.Stack, Host: o.Host, Key: o.Key, Have: o.have, Verified: o.verified})
	cancel()
	if err != nil {
		select {
		case <-o.Stop:
			return fmt.Errorf("interrupted while pulling, so nothing was written: %w", err)
		default:
			return err
		}
	}
	h, err := res.Pulled.PushHost(o.Root)
	if err != nil {
		return err
	}
	if o.NoHealth {
		h.HealthURL = ""
	}
	opt := push.Options{
		Stack: o.Stack, SourceSHA256: res.Pulled.Config.SourceSHA256, Hosts: []push.Host{h},
		Timeout: o.Timeout, CommandTimeout: o.CommandTimeout, HealthTimeout: o.HealthTimeout, LockTimeout: o.LockTimeout,
		Batch: "1", Parallel: 1, Canary: 0, NoAutoRevert: o.NoAutoRevert, DryRun: o.DryRun, Force: o.Force, Keep: o.Keep,
		Progress: o.Progress, By: o.By, PID: o.PID, Stop: o.Stop,
		// No dead-man timer: nothing connects to this machine, so no
		// change can cut the apply off from it.
		ConfirmTimeout: 0,
	}
	sum, err := push.Run(ctx, opt)
	res.Summary = sum
	if err != nil {
		return err
	}
	if sum != nil && !sum.OK {
		if err := sum.Err(); err != nil {
			return err
		}
		// Skipped, with no error of its own: the apply was interrupted
		// before the host was written.
		return errors.New("interrupted before the host was written")
	}
	return nil
}

// have reads a file's current content under the root, so content
// already on the host is not fetched again (Pull checks its sha256).
// Only a regular file is read.
func (o ApplyOptions) have(p string) []byte {
	full := filepath.Join(o.Root, p)
	fi, err := os.Lstat(full)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() > 256<<20 {
		return nil
	}
	b, err := os.ReadFile(full)
	if err != nil {
		return nil
	}
	return b
}

// verifiedRecord is the config of the artifact last applied, kept
// (/var/lib/hacompile/<stack>.pull-verified.json) so a host whose tag
// has not moved fetches only the tag's digest.
type verifiedRecord struct {
	Digest string     `json:"digest"`
	Key    string     `json:"key_sha256"` // the verification key's PKIX sha256
	Config HostConfig `json:"config"`
}

func verifiedPath(stack string) string { return push.StateDir + "/" + stack + ".pull-verified.json" }

func keyID(k *ecdsa.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return ""
	}
	return sha256Hex(der)
}

// verified is PullOptions.Verified: the record of the artifact last
// applied, when it is d and was verified with this apply's key.
func (o ApplyOptions) verified(d digest.Digest) *HostConfig {
	b, err := os.ReadFile(filepath.Join(o.Root, verifiedPath(o.Stack)))
	if err != nil {
		return nil
	}
	var v verifiedRecord
	if json.Unmarshal(b, &v) != nil || v.Digest != d.String() || v.Key == "" || v.Key != keyID(o.Key) {
		return nil
	}
	return &v.Config
}

// record updates the host's PullState and, when asked, the metrics.
func (o ApplyOptions) record(res *ApplyResult, applyErr error) error {
	file := filepath.Join(o.Root, PullStatePath(o.Stack))
	var st PullState
	if b, err := os.ReadFile(file); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	now := o.now().UTC().Truncate(time.Second)
	st.Ref, st.LastAttempt = o.Ref.String(), now
	if res.Pulled != nil {
		st.Available = res.Pulled.Digest.String()
	}
	if applyErr != nil {
		st.Failures++
		st.Consecutive++
		st.LastError = applyErr.Error()
	} else {
		st.Consecutive, st.LastError = 0, ""
		st.LastSuccess = now
		st.Digest = res.Pulled.Digest.String()
		if !res.Pulled.Cached {
			vb, _ := json.Marshal(verifiedRecord{Digest: st.Digest, Key: keyID(o.Key), Config: res.Pulled.Config})
			if err := os.MkdirAll(filepath.Dir(filepath.Join(o.Root, verifiedPath(o.Stack))), push.DirMode); err != nil {
				return err
			}
			if err := writeFileAtomic(filepath.Join(o.Root, verifiedPath(o.Stack)), append(vb, '\n'), 0o644); err != nil {
				return err
			}
		}
		if res.Summary != nil && len(res.Summary.Hosts) == 1 {
			if g := res.Summary.Hosts[0].Generation; g > 0 {
				st.Generation = g
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(file), push.DirMode); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	if err := writeFileAtomic(file, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if o.MetricsFile == "" {
		return nil
	}
	mf := filepath.Join(o.Root, o.MetricsFile)
	if err := os.MkdirAll(filepath.Dir(mf), push.DirMode); err != nil {
		return err
	}
	return writeFileAtomic(mf, []byte(Metrics(st)), 0o644)
}

// Metrics is the node_exporter textfile of a host's PullState.
func Metrics(st PullState) string {
	var b strings.Builder
	// No host or stack label: node_exporter's target labels name the
	// host, and a scraped label of the same name would be renamed.
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return strconv.FormatInt(t.Unix(), 10)
	}
	fmt.Fprintf(&b, "# HELP hacompile_applied_generation The push generation the last successful apply left on the host.\n# TYPE hacompile_applied_generation gauge\nhacompile_applied_generation %d\n", st.Generation)
	if st.Digest != "" {
		fmt.Fprintf(&b, "# HELP hacompile_applied_info The artifact the host last applied, as its digest and the reference it followed.\n# TYPE hacompile_applied_info gauge\nhacompile_applied_info{digest=%q,ref=%q} 1\n", st.Digest, st.Ref)
	}
	behind := 0
	if st.Available != "" && st.Available != st.Digest {
		behind = 1
	}
	fmt.Fprintf(&b, "# HELP hacompile_apply_behind 1 when the followed tag points at an artifact other than the one applied (a newer one not applied yet, or one that failed).\n# TYPE hacompile_apply_behind gauge\nhacompile_apply_behind %d\n", behind)
	fmt.Fprintf(&b, "# HELP hacompile_apply_last_success_timestamp_seconds When the last apply succeeded (0: never).\n# TYPE hacompile_apply_last_success_timestamp_seconds gauge\nhacompile_apply_last_success_timestamp_seconds %s\n", ts(st.LastSuccess))
	fmt.Fprintf(&b, "# HELP hacompile_apply_last_attempt_timestamp_seconds When the last apply ran.\n# TYPE hacompile_apply_last_attempt_timestamp_seconds gauge\nhacompile_apply_last_attempt_timestamp_seconds %s\n", ts(st.LastAttempt))
	fmt.Fprintf(&b, "# HELP hacompile_apply_failures_total Applies that failed.\n# TYPE hacompile_apply_failures_total counter\nhacompile_apply_failures_total %d\n", st.Failures)
	fmt.Fprintf(&b, "# HELP hacompile_apply_consecutive_failures Applies that failed since the last success.\n# TYPE hacompile_apply_consecutive_failures gauge\nhacompile_apply_consecutive_failures %d\n", st.Consecutive)
	return b.String()
}

func writeFileAtomic(file string, b []byte, mode fs.FileMode) error {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
