package oci

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/hacompile/hacompile/internal/testtool"
)

// startNodeExporter runs Debian's node_exporter with only its textfile
// collector, reading dir, on a free loopback port; it returns the
// metrics URL.
func startNodeExporter(t *testing.T, dir string) string {
	t.Helper()
	bin := testtool.Require(t, "prometheus-node-exporter", "prometheus-node-exporter")
	os.MkdirAll(dir, 0o755)
	addr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t, "127.0.0.1"))
	var log bytes.Buffer
	cmd := exec.Command(bin, "--web.listen-address="+addr, "--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory="+dir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("node_exporter %s:\n%s", addr, log.String())
		}
	})
	waitHTTP(t, "http://"+addr+"/metrics")
	return "http://" + addr + "/metrics"
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 20 s: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// promoteFixture: three hosts; app1 and app2 follow canary, app3
// stable; each host's apply writes its metrics into its root, which a
// node_exporter of its own serves.
type promoteFixture struct {
	*fixture
	urls map[string]string
}

func newPromoteFixture(t *testing.T) *promoteFixture {
	f := &promoteFixture{fixture: newFixture(t), urls: map[string]string{}}
	for _, h := range []string{"app1", "app2", "app3"} {
		f.urls[h] = startNodeExporter(t, filepath.Join(f.root, h, "var/lib/prometheus/node-exporter"))
	}
	return f
}

func (f *promoteFixture) ch(channel string) Ref { r := f.ref; r.Tag = channel; return r }

func (f *promoteFixture) publishTo(channel string, workers int) map[string]digest.Digest {
	f.t.Helper()
	ref := f.ref
	f.ref = f.ch(channel)
	defer func() { f.ref = ref }()
	packs := packAll(f.t, hostsOf(f.t, workers), "rev")
	f.publish(packs)
	out := map[string]digest.Digest{}
	for _, p := range packs {
		out[p.Host] = p.Digest
	}
	return out
}

func (f *promoteFixture) applyFrom(channel, host string, wantOK bool) {
	f.t.Helper()
	if err := f.tryApply(channel, host, wantOK); err != nil {
		f.t.Fatal(err)
	}
}

// tryApply is an apply from the channel, with the right key when ok
// (else another one, which fails): an error when it did not do that.
func (f *promoteFixture) tryApply(channel, host string, ok bool) error {
	key := f.pub
	if !ok {
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		key = &other.PublicKey
	}
	_, err := Apply(context.Background(), ApplyOptions{
		Ref: f.ch(channel), Repo: f.repoOpts(), Stack: "fleet", Host: host, Key: key,
		Root: filepath.Join(f.root, host), NoHealth: true,
		Timeout: 5 * time.Second, CommandTimeout: 10 * time.Second, HealthTimeout: time.Second, LockTimeout: time.Minute,
		Keep: 10, MetricsFile: "/var/lib/prometheus/node-exporter/hacompile.prom", By: "test@apply", PID: os.Getpid(),
	})
	if (err == nil) != ok {
		return fmt.Errorf("apply %s from %s: %v", host, channel, err)
	}
	return nil
}

func (f *promoteFixture) promote(src StatusSource, wait time.Duration) (*PromoteResult, error) {
	repo, err := Open(f.ref, f.repoOpts())
	if err != nil {
		f.t.Fatal(err)
	}
	return Promote(context.Background(), repo, PromoteOptions{
		Name: f.ref.Name(), From: "canary", To: "stable", Stack: "fleet",
		Hosts: []string{"app1", "app2", "app3"}, Gate: []string{"app1", "app2"},
		Status: src, Key: f.pub, Wait: wait, Poll: 500 * time.Millisecond,
	})
}

func (f *promoteFixture) stableDigest(host string) digest.Digest {
	f.t.Helper()
	return f.digestOf("stable-fleet-" + host)
}

func (f *promoteFixture) digestOf(tag string) digest.Digest {
	f.t.Helper()
	repo, _ := Open(f.ref, f.repoOpts())
	d, err := repo.Resolve(context.Background(), tag)
	if err != nil {
		f.t.Fatal(err)
	}
	return d.Digest
}

// Promotion moves the stable tags only once both canaries report, in
// the metrics their real node_exporter serves, having applied their
// canary digest with no failure since: a canary still on the old
// digest, one failing after applying it, and one whose metrics cannot
// be read each refuse it, naming the host, and leave every stable tag
// where it was.
func TestPromoteGate(t *testing.T) {
	f := newPromoteFixture(t)
	v1 := f.publishTo("canary", 3)
	f.publishTo("stable", 3)
	f.applyFrom("canary", "app1", true)
	f.applyFrom("canary", "app2", true)
	f.applyFrom("stable", "app3", true)
	v2 := f.publishTo("canary", 4)
	if v2["app3"] == v1["app3"] {
		t.Fatal("the change did not change app3's digest")
	}
	f.applyFrom("canary", "app1", true)
	scrape := Scrape{URLs: f.urls}

	refused := func(wantHost, wantProblem string) {
		t.Helper()
		_, err := f.promote(scrape, 0)
		if !errors.Is(err, ErrNotConverged) {
			t.Fatalf("promote: %v, want ErrNotConverged", err)
		}
		if !strings.Contains(err.Error(), wantHost+": "+wantProblem) || strings.Contains(err.Error(), "app1:") {
			t.Errorf("promote said:\n%v\nwant %s: %s and nothing about app1", err, wantHost, wantProblem)
		}
		for h, d := range v1 {
			if got := f.stableDigest(h); got != d {
				t.Errorf("stable-fleet-%s moved to %s though the promotion was refused", h, got)
			}
		}
	}
	refused("app2", "not converged: applied "+ShortDigest(v1["app2"].String())+" (following "+f.ch("canary").String()+"), canary-fleet-app2 is "+ShortDigest(v2["app2"].String()))

	f.applyFrom("canary", "app2", true)
	f.applyFrom("canary", "app2", false) // a signature refused: applied v2, then failed
	refused("app2", "failing: applied "+ShortDigest(v2["app2"].String())+", then 1 failed apply since")

	f.applyFrom("canary", "app2", true)
	down := Scrape{URLs: map[string]string{"app1": f.urls["app1"], "app2": fmt.Sprintf("http://127.0.0.1:%d/metrics", testtool.FreePort(t, "127.0.0.1"))}}
	if _, err := f.promote(down, 0); !errors.Is(err, ErrNotConverged) || !strings.Contains(err.Error(), "app2: no metrics (http://127.0.0.1:") {
		t.Fatalf("with app2's endpoint down: %v", err)
	}

	res, err := f.promote(scrape, 0)
	if err != nil {
		t.Fatal(err)
	}
	if res.Moved != 3 || res.Already != 0 {
		t.Errorf("moved %d, already %d; want 3 and 0", res.Moved, res.Already)
	}
	for h, d := range v2 {
		if got := f.stableDigest(h); got != d {
			t.Errorf("stable-fleet-%s at %s, want the canary's %s", h, got, d)
		}
	}
	for _, ch := range []string{"canary", "stable"} {
		if d := f.digestOf(ch + "-fleet"); d != res.Index || !res.IndexMoved {
			t.Errorf("%s-fleet at %s, want the canary index %s (moved %v)", ch, d, res.Index, res.IndexMoved)
		}
	}
	// The stable host now converges to the promoted artifact, its
	// signature valid under the new tag.
	f.ref = f.ch("stable")
	r, err := f.apply("app3", f.pub)
	if err != nil || r.Pulled.Digest != v2["app3"] {
		t.Fatalf("app3 after the promotion: %v (digest %v, want %s)", err, r.Pulled.Digest, v2["app3"])
	}
	requireFiles(t, filepath.Join(f.root, "app3"), hostsOf(t, 4)[2])
	if res, err := f.promote(scrape, 0); err != nil || res.Moved != 0 || res.Already != 3 || res.IndexMoved {
		t.Errorf("promoting again: %v, moved %d, already %d, index moved %v", err, res.Moved, res.Already, res.IndexMoved)
	}
}

// A canary not published refuses before any metrics are read; no
// canary host refuses too.
func TestPromoteRefusals(t *testing.T) {
	f := newFixture(t)
	repo, _ := Open(f.ref, f.repoOpts())
	o := PromoteOptions{Name: f.ref.Name(), From: "canary", To: "stable", Stack: "fleet", Hosts: []string{"app1"}, Gate: []string{"app1"}, Status: Scrape{}}
	if _, err := Promote(context.Background(), repo, o); err == nil || !strings.Contains(err.Error(), "has no tag canary-fleet-app1: publish --oci "+f.ref.Name()+":canary first") {
		t.Errorf("unpublished canary: %v", err)
	}
	o.Gate = nil
	if _, err := Promote(context.Background(), repo, o); err == nil || !strings.Contains(err.Error(), `no host follows "canary"`) {
		t.Errorf("no canary host: %v", err)
	}
}

// Through a real Prometheus scraping the hosts' node_exporters (host
// labels as the stack's prometheus.yml sets them), with --wait: the
// promotion waits while the canaries apply, then goes through.
func TestPromotePrometheusWait(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	prom := testtool.Require(t, "prometheus", "prometheus")
	f := newPromoteFixture(t)
	f.publishTo("canary", 3)
	f.publishTo("stable", 3)
	for _, h := range []string{"app1", "app2"} {
		f.applyFrom("canary", h, true)
	}
	dir := t.TempDir()
	var cfg strings.Builder
	cfg.WriteString("global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: node\n    static_configs:\n")
	for _, h := range []string{"app1", "app2", "app3"} {
		fmt.Fprintf(&cfg, "      - targets: [%q]\n        labels: {host: %s}\n", strings.TrimSuffix(strings.TrimPrefix(f.urls[h], "http://"), "/metrics"), h)
	}
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg.String()), 0o644)
	addr := fmt.Sprintf("127.0.0.1:%d", testtool.FreePort(t, "127.0.0.1"))
	var log bytes.Buffer
	cmd := exec.Command(prom, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", log.String())
		}
	})
	waitHTTP(t, "http://"+addr+"/-/ready")
	src := Prometheus{URL: "http://" + addr}
	// Both canaries have applied the canary's first artifact, as
	// Prometheus sees once it has scraped them.
	deadline := time.Now().Add(30 * time.Second)
	for {
		sts := src.Status(context.Background(), []string{"app1", "app2"})
		if sts["app1"].Err == nil && sts["app2"].Err == nil && sts["app1"].Digest != "" && sts["app2"].Digest != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never had both canaries' metrics: %+v", sts)
		}
		time.Sleep(500 * time.Millisecond)
	}
	v2 := f.publishTo("canary", 4)
	if _, err := f.promote(src, 0); !errors.Is(err, ErrNotConverged) || !strings.Contains(err.Error(), "app1: not converged") || !strings.Contains(err.Error(), "(read from Prometheus at http://"+addr+")") {
		t.Fatalf("before the canaries applied: %v", err)
	}
	go func() {
		time.Sleep(2 * time.Second)
		for _, h := range []string{"app1", "app2"} {
			if err := f.tryApply("canary", h, true); err != nil {
				t.Error(err)
			}
		}
	}()
	start := time.Now()
	res, err := f.promote(src, 60*time.Second)
	if err != nil {
		t.Fatalf("promote --wait: %v", err)
	}
	if time.Since(start) < 2*time.Second || res.Moved != 3 {
		t.Errorf("promoted after %s, moved %d: want a wait of 2 s or more, 3 moved", time.Since(start), res.Moved)
	}
	for h, d := range v2 {
		if got := f.stableDigest(h); got != d {
			t.Errorf("stable-fleet-%s at %s, want %s", h, got, d)
		}
	}
}
