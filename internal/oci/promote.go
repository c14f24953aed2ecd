package oci

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote"
)

// PromoteOptions are one promotion of a stack's hosts from a channel
// tag to another (canary to stable).
type PromoteOptions struct {
	// Name is REGISTRY/REPOSITORY; From and To are the channels.
	Name, From, To string
	Stack          string
	// Hosts are every host of the stack: each one's To tag is moved to
	// its From tag's digest.
	Hosts []string
	// Gate are the hosts following From (the canaries): every one must
	// report having applied its From digest, without failing since.
	Gate   []string
	Status StatusSource
	// Key, when set, must verify each digest's signature before any tag
	// moves (the hosts check it anyway).
	Key *ecdsa.PublicKey
	// Wait is how long the gate is asked again, every Poll, before the
	// promotion is refused; 0 asks once.
	Wait, Poll time.Duration
	DryRun     bool
	// Progress, when set, is told each round of the gate.
	Progress func(round int, gate []GateHost)
}

// GateHost is a canary host's state against the digest it must run.
type GateHost struct {
	Host    string
	Want    digest.Digest
	Status  HostStatus
	Problem string // "" when converged
}

// PromoteResult is what a promotion found and did.
type PromoteResult struct {
	Digests map[string]digest.Digest // host → its From tag's digest
	Gate    []GateHost
	Moved   int // To tags moved (or, dry, to move)
	Already int // To tags already at the digest
	// Index is the From index's digest ("" when there is none);
	// IndexMoved says the To index was moved (or, dry, is to move) to it.
	Index      digest.Digest
	IndexMoved bool
}

// ErrNotConverged is a promotion refused by its gate.
var ErrNotConverged = errors.New("the canary hosts have not converged")

// notConverged is ErrNotConverged with the hosts it names.
type notConverged struct{ msg string }

func (e notConverged) Error() string { return e.msg }
func (e notConverged) Unwrap() error { return ErrNotConverged }

// Promote moves each host's To tag to its From tag's digest (and the
// stack's To index to the From index), only once
// every gate host reports (in its pull metrics) having applied its own
// From digest and no failed apply since. The digests are resolved once,
// before the gate: a publish to From during the wait does not slip
// through unchecked. The signatures name the digest and the repository,
// so they stay valid under the new tag.
func Promote(ctx context.Context, repo *remote.Repository, o PromoteOptions) (*PromoteResult, error) {
	if o.From == o.To {
		return nil, fmt.Errorf("--from and --to are both %q", o.From)
	}
	if len(o.Gate) == 0 {
		return nil, fmt.Errorf("%s: no host follows %q: nothing would gate the promotion (delivery.pull.canary_hosts names the canaries)", o.Stack, o.From)
	}
	res := &PromoteResult{Digests: map[string]digest.Digest{}}
	descs := make([]ocispec.Descriptor, len(o.Hosts))
	var mu sync.Mutex
	var missing []string
	err := forEach(len(o.Hosts), 16, func(i int) error {
		tag, err := HostTag(o.From, o.Stack, o.Hosts[i])
		if err != nil {
			return err
		}
		d, err := repo.Resolve(ctx, tag)
		if errors.Is(err, errdef.ErrNotFound) {
			mu.Lock()
			missing = append(missing, tag)
			mu.Unlock()
			return nil
		}
		if err != nil {
			return fmt.Errorf("resolve %s:%s: %w", o.Name, tag, err)
		}
		descs[i] = d
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return nil, fmt.Errorf("%s has no tag %s: publish --oci %s:%s first", o.Name, strings.Join(missing, ", "), o.Name, o.From)
	}
	for i, h := range o.Hosts {
		res.Digests[h] = descs[i].Digest
	}
	// The stack's index, when the publish made one: it moves with the
	// hosts it lists.
	itag, err := IndexTag(o.From, o.Stack)
	if err != nil {
		return nil, err
	}
	idx, err := repo.Resolve(ctx, itag)
	switch {
	case errors.Is(err, errdef.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("resolve %s:%s: %w", o.Name, itag, err)
	default:
		res.Index = idx.Digest
	}
	if o.Key != nil {
		seen := map[digest.Digest]bool{}
		for _, d := range descs {
			if seen[d.Digest] {
				continue
			}
			seen[d.Digest] = true
			if err := verifySignature(ctx, repo, o.Name, d.Digest, o.Key); err != nil {
				return res, err
			}
		}
	}
	deadline := time.Now().Add(o.Wait)
	for round := 1; ; round++ {
		res.Gate = gate(ctx, o, res.Digests)
		if o.Progress != nil {
			o.Progress(round, res.Gate)
		}
		var bad []string
		for _, g := range res.Gate {
			if g.Problem != "" {
				bad = append(bad, g.Host+": "+g.Problem)
			}
		}
		if len(bad) == 0 {
			break
		}
		if o.Poll <= 0 || !time.Now().Add(o.Poll).Before(deadline) {
			return res, notConverged{fmt.Sprintf("refusing to promote %s from %s to %s: %d of %d %s %s not converged (read from %s):\n  %s",
				o.Stack, o.From, o.To, len(bad), len(res.Gate), o.From, map[bool]string{true: "host", false: "hosts"}[len(res.Gate) == 1],
				o.Status.Describe(), strings.Join(bad, "\n  "))}
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
	moved := make([]bool, len(o.Hosts))
	err = forEach(len(o.Hosts), 16, func(i int) error {
		tag, _ := HostTag(o.To, o.Stack, o.Hosts[i])
		cur, err := repo.Resolve(ctx, tag)
		if err == nil && cur.Digest == descs[i].Digest {
			return nil
		}
		if err != nil && !errors.Is(err, errdef.ErrNotFound) {
			return fmt.Errorf("resolve %s:%s: %w", o.Name, tag, err)
		}
		moved[i] = true
		if o.DryRun {
			return nil
		}
		if err := repo.Tag(ctx, descs[i], tag); err != nil {
			return fmt.Errorf("tag %s as %s:%s: %w", descs[i].Digest, o.Name, tag, err)
		}
		return nil
	})
	for _, m := range moved {
		if m {
			res.Moved++
		} else {
			res.Already++
		}
	}
	if err != nil || res.Index == "" {
		return res, err
	}
	totag, _ := IndexTag(o.To, o.Stack)
	if cur, err := repo.Resolve(ctx, totag); err == nil && cur.Digest == idx.Digest {
		return res, nil
	} else if err != nil && !errors.Is(err, errdef.ErrNotFound) {
		return res, fmt.Errorf("resolve %s:%s: %w", o.Name, totag, err)
	}
	res.IndexMoved = true
	if !o.DryRun {
		if err := repo.Tag(ctx, idx, totag); err != nil {
			return res, fmt.Errorf("tag %s as %s:%s: %w", idx.Digest, o.Name, totag, err)
		}
	}
	return res, nil
}

// gate reads the gate hosts' status and says what keeps each one from
// being converged.
func gate(ctx context.Context, o PromoteOptions, want map[string]digest.Digest) []GateHost {
	sts := o.Status.Status(ctx, o.Gate)
	out := make([]GateHost, 0, len(o.Gate))
	for _, h := range o.Gate {
		g := GateHost{Host: h, Want: want[h], Status: sts[h]}
		tag, _ := HostTag(o.From, o.Stack, h)
		st := g.Status
		switch {
		case st.Err != nil:
			g.Problem = "no metrics (" + st.Source + "): " + st.Err.Error()
		case st.Digest == "":
			g.Problem = "has never applied an artifact"
		case st.Digest != g.Want.String():
			g.Problem = fmt.Sprintf("not converged: applied %s (following %s), %s is %s", ShortDigest(st.Digest), st.Ref, tag, ShortDigest(g.Want.String()))
		case st.Consecutive > 0:
			g.Problem = fmt.Sprintf("failing: applied %s, then %d failed %s since (see /var/lib/hacompile/%s.pull.json on the host)",
				ShortDigest(st.Digest), st.Consecutive, map[bool]string{true: "apply", false: "applies"}[st.Consecutive == 1], o.Stack)
		}
		out = append(out, g)
	}
	return out
}

// ShortDigest is sha256: and the first 12 hex digits.
func ShortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

// forEach runs f for 0..n-1, at most par at once, and returns the first
// error (the rest still run to their end).
func forEach(n, par int, f func(i int) error) error {
	if par < 1 {
		par = 1
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, par)
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}
