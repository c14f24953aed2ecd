package oci

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/oci/ocitest"
	"github.com/hacompile/hacompile/internal/push"
	"github.com/hacompile/hacompile/internal/testtool"
)

func stackSrc(workers int) string {
	return `name: "fleet"
domain: "fleet.example.com"
tls: mode: "none"
hosts: {
	app1: {address: "10.0.0.11", roles: ["app"], cores: 1, memory_mb: 1024}
	app2: {address: "10.0.0.12", roles: ["app"], cores: 1, memory_mb: 1024}
	app3: {address: "10.0.0.13", roles: ["app"], cores: 1, memory_mb: 1024}
}
balancer: kind: "cloud"
app: {runtime: "python", module: "wsgi:app", working_dir: "/srv/app", bind: port: 8000, workers: ` + itoa(workers) + `}
`
}

func itoa(n int) string { return strconv.Itoa(n) }

func hostsOf(t testing.TB, workers int) []push.Host {
	t.Helper()
	res, err := compile.CompileInputs([]compile.Input{{Name: "stacks/fleet.cue", Data: []byte(stackSrc(workers))}}, "2026-01-01")
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := push.Targets(res.Rendered[0], push.TargetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return hosts
}

func packAll(t testing.TB, hosts []push.Host, rev string) []*Packed {
	t.Helper()
	var out []*Packed
	for _, h := range hosts {
		p, err := Pack("fleet", "src", rev, h)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func keys(t testing.TB) (*ecdsa.PrivateKey, string, string) {
	t.Helper()
	dir := t.TempDir()
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kf, pf := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	os.WriteFile(kf, priv, 0o600)
	os.WriteFile(pf, pub, 0o644)
	k, err := LoadPrivateKey(kf)
	if err != nil {
		t.Fatal(err)
	}
	return k, kf, pf
}

// The same files give the same manifest digest; the source commit is
// the only other input.
func TestPackReproducible(t *testing.T) {
	a := packAll(t, hostsOf(t, 3), "abc")
	b := packAll(t, hostsOf(t, 3), "abc")
	for i := range a {
		if a[i].Digest != b[i].Digest || !bytes.Equal(a[i].Manifest, b[i].Manifest) {
			t.Fatalf("%s: %s then %s", a[i].Host, a[i].Digest, b[i].Digest)
		}
		if bytes.Contains(a[i].Manifest, []byte("created")) {
			t.Errorf("%s: the manifest has a creation time: %s", a[i].Host, a[i].Manifest)
		}
	}
	c := packAll(t, hostsOf(t, 3), "def")
	if c[0].Digest == a[0].Digest {
		t.Error("another source commit gave the same digest")
	}
	d := packAll(t, hostsOf(t, 4), "abc")
	if d[0].Digest == a[0].Digest {
		t.Error("other files gave the same digest")
	}
	// Identical hosts share their blobs: three hosts hold fewer
	// distinct contents than three times one host's.
	all := map[digest.Digest]bool{}
	for _, p := range a {
		for d := range p.Blobs {
			all[d] = true
		}
	}
	if n := len(a[0].Blobs); len(all) >= 3*n {
		t.Errorf("%d distinct blobs for 3 hosts of %d each: nothing shared", len(all), n)
	}
}

type fixture struct {
	t    *testing.T
	reg  *ocitest.Registry
	ref  Ref
	key  *ecdsa.PrivateKey
	pub  *ecdsa.PublicKey
	kf   string
	pf   string
	cnt  *ocitest.Counter
	root string
}

func newFixture(t *testing.T) *fixture {
	reg := ocitest.Start(t)
	k, kf, pf := keys(t)
	ref, err := ParseRef("oci://" + reg.Addr + "/hacompile/fleet:stable")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, reg: reg, ref: ref, key: k, pub: &k.PublicKey, kf: kf, pf: pf, cnt: &ocitest.Counter{}, root: t.TempDir()}
}

func (f *fixture) repoOpts() RepoOptions {
	return RepoOptions{PlainHTTP: true, Transport: f.cnt, DockerConfig: filepath.Join(f.t.TempDir(), "none.json"), Timeout: 5 * time.Second}
}

func (f *fixture) publish(packs []*Packed) PublishStats {
	f.t.Helper()
	repo, err := Open(f.ref, f.repoOpts())
	if err != nil {
		f.t.Fatal(err)
	}
	st, err := Publish(context.Background(), repo, f.ref, packs, f.key, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fixture) apply(host string, key *ecdsa.PublicKey) (*ApplyResult, error) {
	return Apply(context.Background(), f.applyOptions(host, key))
}

// applyOptions are the options of f.apply, for a test to change.
func (f *fixture) applyOptions(host string, key *ecdsa.PublicKey) ApplyOptions {
	return ApplyOptions{
		Ref: f.ref, Repo: f.repoOpts(), Stack: "fleet", Host: host, Key: key,
		Root: filepath.Join(f.root, host), NoHealth: true,
		Timeout: 5 * time.Second, CommandTimeout: 10 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
		Keep: 10, MetricsFile: "/var/lib/prometheus/node-exporter/hacompile.prom", By: "test@apply", PID: os.Getpid(),
	}
}

// snapshot is every file under dir but the apply's own record and
// metrics, which record a failure too.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if strings.HasSuffix(p, ".pull.json") || strings.HasSuffix(p, "hacompile.prom") {
			return nil
		}
		fi, _ := d.Info()
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			out[rel] = fi.Mode().String() + " " + string(b)
		} else {
			out[rel] = fi.Mode().String()
		}
		return nil
	})
	return out
}

func requireSame(t *testing.T, before, after map[string]string) {
	t.Helper()
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed", p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s appeared", p)
		}
	}
}

func requireFiles(t *testing.T, root string, h push.Host) {
	t.Helper()
	for _, f := range h.Files {
		b, err := os.ReadFile(filepath.Join(root, f.Path))
		if err != nil {
			t.Fatalf("%s: %v", f.Path, err)
		}
		if !bytes.Equal(b, f.Content) {
			t.Fatalf("%s differs from the rendered file", f.Path)
		}
		fi, _ := os.Stat(filepath.Join(root, f.Path))
		if fi.Mode().Perm() != f.Mode.Perm() {
			t.Errorf("%s: mode %v, want %v", f.Path, fi.Mode().Perm(), f.Mode.Perm())
		}
	}
}

// Publish to a real registry, then apply into host roots: each host's
// files land byte for byte; no blob is uploaded twice, even for
// identical hosts, nor again on a republish; an unchanged host fetches
// no file blob again.
func TestPublishApply(t *testing.T) {
	f := newFixture(t)
	hosts := hostsOf(t, 3)
	packs := packAll(t, hosts, "abc")
	distinct := map[digest.Digest]bool{}
	for _, p := range packs {
		distinct[digest.FromBytes(p.Config)] = true
		for d := range p.Blobs {
			distinct[d] = true
		}
	}
	st := f.publish(packs)
	// Each signature (a host's, the stack index's) adds its payload and
	// its config.
	if want := len(distinct) + 2*(len(packs)+1); st.BlobsUploaded != want || f.cnt.Count(ocitest.BlobUpload) != want {
		t.Fatalf("uploaded %d blobs (%d upload requests), want %d distinct: %+v", st.BlobsUploaded, f.cnt.Count(ocitest.BlobUpload), want, st)
	}
	if st.Signed != len(packs)+1 || st.Manifests != len(packs) || st.Indexes != 1 {
		t.Fatalf("%+v", st)
	}
	requireIndex(t, f, "stable-fleet", packs)
	f.cnt.Reset()
	st = f.publish(packAll(t, hostsOf(t, 3), "abc"))
	if st.BlobsUploaded != 0 || st.Manifests != 0 || st.Signed != 0 || st.Indexes != 0 || f.cnt.Count(ocitest.BlobUpload) != 0 || f.cnt.Count(ocitest.ManifestPut) != 0 {
		t.Fatalf("a republish of the same files sent %+v (%v)", st, f.cnt.Counts)
	}

	for _, h := range hosts {
		f.cnt.Reset()
		res, err := f.apply(h.Name, f.pub)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		if res.Summary.Hosts[0].Status != push.StatusDone || res.Pulled.Reused != 0 {
			t.Fatalf("%s: %+v", h.Name, res.Summary.Hosts[0])
		}
		requireFiles(t, filepath.Join(f.root, h.Name), h)
	}
	// Again: nothing to change, and nothing fetched but the tag's
	// digest: the host verified that digest before, with this key, and
	// has every content.
	f.cnt.Reset()
	res, err := f.apply("app1", f.pub)
	if err != nil {
		t.Fatal(err)
	}
	if res.Summary.Hosts[0].Status != push.StatusUnchanged || res.Pulled.Fetched != 0 || !res.Pulled.Cached {
		t.Fatalf("second apply: %s, %d blobs fetched, cached %v", res.Summary.Hosts[0].Status, res.Pulled.Fetched, res.Pulled.Cached)
	}
	if f.cnt.Total != 1 || f.cnt.Count(ocitest.ManifestHead) != 1 {
		t.Errorf("second apply made %d requests, want 1 (the tag's digest): %v", f.cnt.Total, f.cnt.Counts)
	}
	// With another key the same digest is verified again, and refused.
	_, _, otherPub := keys(t)
	other, _ := LoadPublicKey(otherPub)
	if _, err := f.apply("app1", other); err == nil || !strings.Contains(err.Error(), "not made with the verification key") {
		t.Fatalf("the digest verified with one key was accepted with another: %v", err)
	}
	// A file changed by hand since: drift, refused, with nothing fetched
	// again but the file's own blob.
	drifted := filepath.Join(f.root, "app2", hosts[1].Files[0].Path)
	os.WriteFile(drifted, []byte("hand edit\n"), 0o644)
	res, err = f.apply("app2", f.pub)
	if !errors.Is(err, push.ErrDrift) {
		t.Fatalf("a hand edit: err = %v", err)
	}
	if res.Pulled.Fetched != 1 {
		t.Errorf("with one file changed by hand, %d blobs fetched, want 1", res.Pulled.Fetched)
	}
	m, err := os.ReadFile(filepath.Join(f.root, "app1/var/lib/prometheus/node-exporter/hacompile.prom"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nhacompile_applied_generation 1\n", `hacompile_applied_info{digest="` + packs[0].Digest.String(), "\nhacompile_apply_failures_total 1\n", "\nhacompile_apply_consecutive_failures 1\n", "\nhacompile_apply_behind 0\n"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	// The exposition format as Prometheus's own linter reads it.
	promtool := testtool.Require(t, "promtool", "prometheus")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(m)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n%s", err, out, m)
	}
}

// Each way a pull can go wrong leaves the host's files exactly as they
// were, with an error saying what went wrong, and counts a failure.
func TestApplyRefusals(t *testing.T) {
	f := newFixture(t)
	f.publish(packAll(t, hostsOf(t, 3), "v1"))
	for _, h := range []string{"app1", "app2", "app3"} {
		if _, err := f.apply(h, f.pub); err != nil {
			t.Fatal(err)
		}
	}
	v2 := packAll(t, hostsOf(t, 5), "v2")
	f.publish(v2)
	repo, _ := Open(f.ref, f.repoOpts())
	ctx := context.Background()

	check := func(host, want string, err error) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: err = %v, want %q", host, err, want)
		}
		m, _ := os.ReadFile(filepath.Join(f.root, host, "var/lib/prometheus/node-exporter/hacompile.prom"))
		if !strings.Contains(string(m), "\nhacompile_apply_failures_total 1\n") || !strings.Contains(string(m), "\nhacompile_apply_behind 1\n") {
			t.Errorf("%s: the failure is not counted:\n%s", host, m)
		}
	}

	// Wrong key.
	_, other, _ := keys(t)
	otherKey, _ := LoadPrivateKey(other)
	before := snapshot(t, filepath.Join(f.root, "app1"))
	_, err := f.apply("app1", &otherKey.PublicKey)
	check("app1", "not made with the verification key", err)
	requireSame(t, before, snapshot(t, filepath.Join(f.root, "app1")))

	// Tampered blob: the registry's stored copy of a changed file.
	var changed digest.Digest
	for d := range v2[1].Blobs {
		if !packAll(t, hostsOf(t, 3), "v1")[1].hasBlob(d) {
			changed = d
		}
	}
	if changed == "" {
		t.Fatal("v2 changes no file of app2")
	}
	data := filepath.Join(f.reg.Storage, "docker/registry/v2/blobs/sha256", changed.Encoded()[:2], changed.Encoded(), "data")
	orig, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(orig, []byte("workers"), []byte("WORKERS"), 1)
	if bytes.Equal(tampered, orig) {
		tampered = append(bytes.Clone(orig), '#')[1:]
	}
	os.WriteFile(data, tampered, 0o644)
	before = snapshot(t, filepath.Join(f.root, "app2"))
	_, err = f.apply("app2", f.pub)
	check("app2", "content does not match its digest", err)
	requireSame(t, before, snapshot(t, filepath.Join(f.root, "app2")))
	os.WriteFile(data, orig, 0o644)

	// Unsigned: the signature removed from the registry.
	sd, err := repo.Resolve(ctx, SignatureTag(v2[2].Digest))
	if err != nil {
		t.Fatal(err)
	}
	if err := repo.Delete(ctx, sd); err != nil {
		t.Fatal(err)
	}
	before = snapshot(t, filepath.Join(f.root, "app3"))
	_, err = f.apply("app3", f.pub)
	check("app3", "is not signed", err)
	if !errors.Is(err, ErrSignature) {
		t.Errorf("err = %v, want ErrSignature", err)
	}
	requireSame(t, before, snapshot(t, filepath.Join(f.root, "app3")))

	// The registry killed mid-pull: after the signature and config,
	// at the first file blob.
	blobs := 0
	f.cnt.OnBlobs = func() {
		if blobs++; blobs == 3 {
			f.reg.Stop()
		}
	}
	before = snapshot(t, filepath.Join(f.root, "app1"))
	res, err := f.apply("app1", f.pub)
	if err == nil || !strings.Contains(err.Error(), "fetch sha256:") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("registry gone: err = %v", err)
	}
	if res.Summary != nil {
		t.Error("push's engine ran after a failed pull")
	}
	requireSame(t, before, snapshot(t, filepath.Join(f.root, "app1")))
}

func (p *Packed) hasBlob(d digest.Digest) bool { _, ok := p.Blobs[d]; return ok }

// requireIndex: tag is the stack's signed index, listing the hosts'
// manifests in host order with their names and roles.
func requireIndex(t *testing.T, f *fixture, tag string, packs []*Packed) {
	t.Helper()
	repo, _ := Open(f.ref, f.repoOpts())
	desc, rc, err := repo.FetchReference(context.Background(), tag)
	if err != nil {
		t.Fatal(err)
	}
	b, err := readVerified(rc, desc, 4<<20)
	if err != nil {
		t.Fatal(err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil || desc.MediaType != ocispec.MediaTypeImageIndex || idx.MediaType != ocispec.MediaTypeImageIndex {
		t.Fatalf("%s is a %s (%v): %s", tag, desc.MediaType, err, b)
	}
	if len(idx.Manifests) != len(packs) || idx.Annotations[AnnotationStack] != "fleet" {
		t.Fatalf("%s: %s", tag, b)
	}
	for i, p := range packs {
		m := idx.Manifests[i]
		if m.Digest != p.Digest || m.Size != int64(len(p.Manifest)) || m.Annotations[AnnotationHost] != p.Host || m.Annotations[AnnotationRoles] != "app" {
			t.Errorf("%s entry %d: %+v, want %s at %s", tag, i, m, p.Host, p.Digest)
		}
	}
	if err := verifySignature(context.Background(), repo, f.ref.Name(), desc.Digest, f.pub); err != nil {
		t.Errorf("%s: %v", tag, err)
	}
}

// inFlight is a transport that holds each request 20 ms and records
// the most requests in flight at once.
type inFlight struct {
	mu       sync.Mutex
	cur, max int
}

func (c *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.cur++
	c.max = max(c.max, c.cur)
	c.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
	resp, err := http.DefaultTransport.RoundTrip(r)
	c.mu.Lock()
	c.cur--
	c.mu.Unlock()
	return resp, err
}

// Publish sends hosts at once, never more than asked: with 2, the
// registry sees 2 requests in flight at most (and more than 1), and
// the result is the serial one's (each blob uploaded once).
func TestPublishParallel(t *testing.T) {
	f := newFixture(t)
	packs := packAll(t, hostsOf(t, 3), "abc")
	tr := &inFlight{}
	o := f.repoOpts()
	o.Transport = tr
	repo, _ := Open(f.ref, o)
	st, err := Publish(context.Background(), repo, f.ref, packs, f.key, 2)
	if err != nil {
		t.Fatal(err)
	}
	if tr.max != 2 {
		t.Errorf("%d requests in flight at most, want 2", tr.max)
	}
	distinct := map[digest.Digest]bool{}
	for _, p := range packs {
		distinct[digest.FromBytes(p.Config)] = true
		for d := range p.Blobs {
			distinct[d] = true
		}
	}
	if want := len(distinct) + 2*(len(packs)+1); st.BlobsUploaded != want || st.Manifests != 3 || st.Signed != 4 {
		t.Errorf("%+v, want %d blobs uploaded", st, want)
	}
	requireIndex(t, f, "stable-fleet", packs)
}

// An apply interrupted (its Stop closed) before or while it pulls
// writes nothing and says so; the next apply goes ahead as if it had not
// run.
func TestApplyInterruptedPulling(t *testing.T) {
	for _, while := range []bool{false, true} {
		t.Run(map[bool]string{false: "before", true: "while"}[while], func(t *testing.T) {
			f := newFixture(t)
			hosts := hostsOf(t, 1)
			f.publish(packAll(t, hosts, "abc"))
			stop := make(chan struct{})
			h := hosts[0].Name
			root := filepath.Join(f.root, h)
			o := f.applyOptions(h, f.pub)
			o.Stop = stop
			want := "interrupted before pulling, so nothing was written"
			if while {
				// The registry's first answer never comes: the
				// interrupt arrives as the pull waits for it.
				o.Repo.Transport = stallingTransport(func() { close(stop) })
				want = "interrupted while pulling, so nothing was written"
			} else {
				close(stop)
			}
			res, err := Apply(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("err = %v, want %q", err, want)
			}
			if res.Summary != nil {
				t.Fatalf("files were applied: %+v", res.Summary)
			}
			requireNoFiles(t, root, hosts[0])
			if _, err := f.apply(h, f.pub); err != nil {
				t.Fatalf("the next apply: %v", err)
			}
			requireFiles(t, root, hosts[0])
		})
	}
}

// stallingTransport calls first on its first request and answers none:
// each request waits until its context ends.
func stallingTransport(first func()) http.RoundTripper {
	var once sync.Once
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		once.Do(first)
		<-req.Context().Done()
		return nil, req.Context().Err()
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// requireNoFiles fails t if any of h's files is under root.
func requireNoFiles(t *testing.T, root string, h push.Host) {
	t.Helper()
	for _, file := range h.Files {
		if _, err := os.Stat(filepath.Join(root, file.Path)); !os.IsNotExist(err) {
			t.Errorf("%s: %v, want none", file.Path, err)
		}
	}
}

// An apply interrupted once its pull is done, as it connects to the
// host's files: the host is skipped, and the apply fails saying so (it
// must not record the artifact as applied, nor exit 0); its lock is
// released; the next apply writes the files.
func TestApplyInterruptedConnecting(t *testing.T) {
	f := newFixture(t)
	hosts := hostsOf(t, 1)
	f.publish(packAll(t, hosts, "abc"))
	stop := make(chan struct{})
	var once sync.Once
	h := hosts[0].Name
	root := filepath.Join(f.root, h)
	o := f.applyOptions(h, f.pub)
	o.Stop = stop
	o.Progress = push.ProgressFunc(func(_ string, phase push.Phase, _ string) {
		if phase == push.PhaseConnecting {
			once.Do(func() { close(stop) })
		}
	})
	_, err := Apply(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "interrupted before the host was written") {
		t.Fatalf("err = %v", err)
	}
	requireNoFiles(t, root, hosts[0])
	if _, err := os.Stat(filepath.Join(root, push.StateDir, "fleet.lock")); !os.IsNotExist(err) {
		t.Errorf("the lock: %v, want released", err)
	}
	b, err := os.ReadFile(filepath.Join(root, PullStatePath("fleet")))
	if err != nil {
		t.Fatal(err)
	}
	var st PullState
	if err := json.Unmarshal(b, &st); err != nil || !st.LastSuccess.IsZero() || st.Digest != "" || st.Consecutive != 1 {
		t.Errorf("the host's record after an interrupted apply: %s (%v)", b, err)
	}
	if _, err := f.apply(h, f.pub); err != nil {
		t.Fatalf("the next apply: %v", err)
	}
	requireFiles(t, root, hosts[0])
}
