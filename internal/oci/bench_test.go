package oci

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/oci/ocitest"
	"github.com/hacompile/hacompile/internal/push"
	"github.com/hacompile/hacompile/internal/push/pushtest"
)

// benchHosts is $name as a number, or def.
func benchHosts(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// fleetStack is a stack of n app hosts alike but for their names and
// addresses, with workers as given (a change every host sees).
func fleetStack(n, workers int) string {
	var b strings.Builder
	b.WriteString("name: \"fleet\"\ndomain: \"fleet.example.com\"\ntls: mode: \"none\"\nhosts: {\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "\tapp%d: {address: \"10.%d.%d.%d\", roles: [\"app\"], cores: 1, memory_mb: 1024}\n", i, 1+i/65536, (i/256)%256, i%256)
	}
	b.WriteString("}\nbalancer: kind: \"cloud\"\n")
	fmt.Fprintf(&b, "app: {runtime: \"python\", module: \"wsgi:app\", working_dir: \"/srv/app\", bind: port: 8000, workers: %d}\n", workers)
	return b.String()
}

func fleetHosts(b testing.TB, n, workers int) []push.Host {
	res, err := compile.CompileInputs([]compile.Input{{Name: "stacks/fleet.cue", Data: []byte(fleetStack(n, workers))}}, "2026-01-01")
	if err != nil {
		b.Fatal(err)
	}
	hosts, err := push.Targets(res.Rendered[0], push.TargetOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return hosts
}

// BenchmarkPullFleet: $HACOMPILE_BENCH_PULL_HOSTS hosts (default 200)
// converge from one publish to Debian's docker-registry on loopback,
// each host an apply with its own root, HTTP client and sftp-server,
// $HACOMPILE_BENCH_PARALLEL (default 8) at once; then again with
// nothing changed, then after a change to every host's app settings.
// Each host also gets a copy of one of its files under another path
// (two files, one content).
// Reported per host: registry requests (by kind) and bytes received
// (the registry's answers), mean and costliest host, the file blobs
// fetched beside the host's files and distinct contents; a host that
// fetches a blob twice, or fails, fails the benchmark.
func BenchmarkPullFleet(b *testing.B) {
	n := benchHosts("HACOMPILE_BENCH_PULL_HOSTS", 200)
	par := benchHosts("HACOMPILE_BENCH_PARALLEL", 8)
	reg := ocitest.Start(b)
	dir := b.TempDir()
	priv, pub, err := GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "k.key"), priv, 0o600)
	os.WriteFile(filepath.Join(dir, "k.pub"), pub, 0o644)
	key, _ := LoadPrivateKey(filepath.Join(dir, "k.key"))
	ref, _ := ParseRef(reg.Addr + "/bench/fleet:stable")
	noCreds := filepath.Join(dir, "none.json")

	publish := func(workers int) (PublishStats, time.Duration) {
		start := time.Now()
		hosts := fleetHosts(b, n, workers)
		var packs []*Packed
		for _, h := range hosts {
			h.Files = append(h.Files, duplicate(b, h, "/var/www/app-errors/500.html", "/var/www/app-errors/copy-of-500.html"))
			p, err := Pack("fleet", "bench", "bench", h)
			if err != nil {
				b.Fatal(err)
			}
			packs = append(packs, p)
		}
		repo, _ := Open(ref, RepoOptions{PlainHTTP: true, DockerConfig: noCreds})
		st, err := Publish(context.Background(), repo, ref, packs, key, 0)
		if err != nil {
			b.Fatal(err)
		}
		return st, time.Since(start)
	}
	type round struct {
		wall              time.Duration
		reqs, bytes, blob int64
		maxReqs, maxBytes int64          // the costliest host's
		files, distinct   int64          // file entries and distinct contents, over all hosts
		twice             int64          // blobs a host fetched more than once
		kinds             map[string]int // requests by kind, over all hosts
		statuses          map[string]int
	}
	converge := func() round {
		var mu sync.Mutex
		r := round{statuses: map[string]int{}, kinds: map[string]int{}}
		sem := make(chan struct{}, par)
		var wg sync.WaitGroup
		start := time.Now()
		for i := 1; i <= n; i++ {
			host := "app" + strconv.Itoa(i)
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				cnt := &ocitest.Counter{}
				gets := &blobGets{Base: cnt}
				res, err := Apply(context.Background(), ApplyOptions{
					Ref: ref, Repo: RepoOptions{PlainHTTP: true, Transport: gets, DockerConfig: noCreds}, Stack: "fleet", Host: host, Key: &key.PublicKey,
					Root: filepath.Join(dir, "hosts", host), NoHealth: true,
					Timeout: 30 * time.Second, CommandTimeout: time.Minute, HealthTimeout: time.Second, LockTimeout: time.Minute,
					Keep: 3, By: "bench", PID: os.Getpid(),
				})
				if err != nil {
					b.Errorf("%s: %v", host, err)
					return
				}
				if res.Pulled == nil {
					b.Errorf("%s: applied without a pulled artifact", host)
					return
				}
				distinct := map[string]bool{}
				for _, f := range res.Pulled.Config.Files {
					distinct[f.SHA256] = true
				}
				mu.Lock()
				r.reqs += int64(cnt.Total)
				r.bytes += cnt.Bytes
				r.maxReqs = max(r.maxReqs, int64(cnt.Total))
				r.maxBytes = max(r.maxBytes, cnt.Bytes)
				r.blob += int64(res.Pulled.Fetched)
				r.files += int64(len(res.Pulled.Config.Files))
				r.distinct += int64(len(distinct))
				r.twice += int64(gets.twice())
				for k, v := range cnt.Counts {
					r.kinds[k] += v
				}
				r.statuses[res.Summary.Hosts[0].Status]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		r.wall = time.Since(start)
		return r
	}
	for b.Loop() {
		st, pubWall := publish(3)
		b.Logf("publish of %d hosts: %s, %d blobs uploaded (%d bytes), %d manifests, %d signatures", n, pubWall.Round(time.Millisecond), st.BlobsUploaded, st.BytesUploaded, st.Manifests, st.Signed)
		first := converge()
		again := converge()
		st2, pubWall2 := publish(4)
		b.Logf("publish after a change to every host: %s, %d blobs uploaded (%d bytes)", pubWall2.Round(time.Millisecond), st2.BlobsUploaded, st2.BytesUploaded)
		changed := converge()
		for _, x := range []struct {
			name string
			r    round
		}{{"first", first}, {"unchanged", again}, {"changed", changed}} {
			r, per := x.r, func(v int64) float64 { return float64(v) / float64(n) }
			b.Logf("%-9s %d hosts in %s (%.1f hosts/s): %.1f requests, %.0f bytes, %.1f file blobs per host (of %.1f files, %.1f distinct contents); costliest host %d requests, %d bytes; blobs fetched twice by a host: %d; requests %v; %v",
				x.name, n, r.wall.Round(time.Millisecond), float64(n)/r.wall.Seconds(), per(r.reqs), per(r.bytes), per(r.blob), per(r.files), per(r.distinct),
				r.maxReqs, r.maxBytes, r.twice, r.kinds, r.statuses)
			if r.twice > 0 {
				b.Errorf("%s: %d blobs fetched more than once by the same host", x.name, r.twice)
			}
			if r.statuses[push.StatusFailed] > 0 || len(r.statuses) == 0 {
				b.Errorf("%s: statuses %v", x.name, r.statuses)
			}
			b.ReportMetric(r.wall.Seconds(), x.name+"-s")
			b.ReportMetric(per(r.reqs), x.name+"-req/host")
			b.ReportMetric(per(r.bytes), x.name+"-B/host")
			b.ReportMetric(per(r.blob), x.name+"-blobs/host")
			b.ReportMetric(float64(r.maxReqs), x.name+"-max-req")
			b.ReportMetric(float64(r.maxBytes), x.name+"-max-B")
		}
		b.ReportMetric(float64(st.BlobsUploaded), "publish-blobs")
		b.ReportMetric(pubWall.Seconds(), "publish-s")
		b.ReportMetric(pubWall2.Seconds(), "republish-changed-s")
	}
}

// duplicate is a copy of h's file at path under another path, with no
// actions: a host with two files of the same content, which it should
// fetch once.
func duplicate(b testing.TB, h push.Host, path, copyPath string) push.File {
	for _, f := range h.Files {
		if f.Path == path {
			return push.File{Path: copyPath, Content: f.Content, Mode: f.Mode, Owner: f.Owner, Kind: f.Kind}
		}
	}
	b.Fatalf("%s has no %s", h.Name, path)
	return push.File{}
}

// blobGets is a host's transport that counts its GETs of each blob
// path: a host that fetched the same blob twice shows in twice.
type blobGets struct {
	Base http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (g *blobGets) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.Contains(req.URL.Path, "/blobs/") {
		g.mu.Lock()
		if g.n == nil {
			g.n = map[string]int{}
		}
		g.n[req.URL.Path]++
		g.mu.Unlock()
	}
	return g.Base.RoundTrip(req)
}

// twice is the number of blobs fetched more than once.
func (g *blobGets) twice() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	k := 0
	for _, c := range g.n {
		if c > 1 {
			k++
		}
	}
	return k
}

// BenchmarkPublishFleet: the publish of $HACOMPILE_BENCH_PUBLISH_HOSTS
// hosts (default 300) to a fresh docker-registry on loopback, one host
// at a time (parallel 1: the requests of the serial publish) and 8 at
// once, then the republish of the same files (nothing to upload).
func BenchmarkPublishFleet(b *testing.B) {
	n := benchHosts("HACOMPILE_BENCH_PUBLISH_HOSTS", 300)
	hosts := fleetHosts(b, n, 3)
	var packs []*Packed
	for _, h := range hosts {
		p, err := Pack("fleet", "bench", "bench", h)
		if err != nil {
			b.Fatal(err)
		}
		packs = append(packs, p)
	}
	dir := b.TempDir()
	priv, _, err := GenerateKey()
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "k.key"), priv, 0o600)
	key, _ := LoadPrivateKey(filepath.Join(dir, "k.key"))
	for b.Loop() {
		for _, par := range []int{1, 8} {
			reg := ocitest.Start(b)
			ref, _ := ParseRef(reg.Addr + "/bench/fleet:stable")
			cnt := &ocitest.Counter{}
			repo, _ := Open(ref, RepoOptions{PlainHTTP: true, Transport: cnt, DockerConfig: filepath.Join(dir, "none.json")})
			start := time.Now()
			st, err := Publish(context.Background(), repo, ref, packs, key, par)
			if err != nil {
				b.Fatal(err)
			}
			first := time.Since(start)
			reqs := cnt.Total
			start = time.Now()
			if _, err := Publish(context.Background(), repo, ref, packs, key, par); err != nil {
				b.Fatal(err)
			}
			again := time.Since(start)
			b.Logf("publish of %d hosts, %d at once: %s (%d requests, %d blobs uploaded, %d bytes); again, unchanged: %s (%d requests)",
				n, par, first.Round(time.Millisecond), reqs, st.BlobsUploaded, st.BytesUploaded, again.Round(time.Millisecond), cnt.Total-reqs)
			b.ReportMetric(first.Seconds(), fmt.Sprintf("publish-par%d-s", par))
			b.ReportMetric(again.Seconds(), fmt.Sprintf("republish-par%d-s", par))
			reg.Stop()
		}
	}
}

// BenchmarkPushFleet is the same files delivered by hacompile push, then
// by Ansible, to $HACOMPILE_BENCH_SSH_HOSTS (default 20) real sshd
// instances on loopback (each host's tree under its own root), in the
// same run: push with --parallel $HACOMPILE_BENCH_PARALLEL, then
// ansible-playbook (Debian's ansible) with as many forks copying every
// file with a validate step, each host's files as push has them.
func BenchmarkPushFleet(b *testing.B) {
	m := benchHosts("HACOMPILE_BENCH_SSH_HOSTS", 20)
	par := benchHosts("HACOMPILE_BENCH_PARALLEL", 8)
	names := make([]string, m)
	for i := range names {
		names[i] = "app" + strconv.Itoa(i+1)
	}
	f := pushtest.Start(b, 20, names...)
	for _, n := range f.Names {
		f.Hosts[n].Stub(b, "/srv/app/venv/bin/gunicorn") // push validates the app's settings with it
	}
	res, err := compile.CompileInputs([]compile.Input{{Name: "stacks/fleet.cue", Data: []byte(f.StackCUE("fleet", 30))}}, "2026-01-01")
	if err != nil {
		b.Fatal(err)
	}
	known := f.KnownHosts(false)
	for b.Loop() {
		for _, round := range []string{"first", "unchanged"} {
			hosts, err := push.Targets(res.Rendered[0], push.TargetOptions{Root: f.Dir + "/{host}/root", NoHealth: true})
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			sum, err := push.Run(context.Background(), push.Options{
				Stack: "fleet", SourceSHA256: "bench", Hosts: hosts,
				Auth:    push.Auth{KnownHosts: []string{known}, Identity: f.ClientKey},
				Timeout: 30 * time.Second, CommandTimeout: time.Minute, HealthTimeout: time.Second, LockTimeout: time.Minute,
				Batch: "100%", Parallel: par, Canary: 0, Keep: 3, By: "bench", PID: os.Getpid(),
			})
			if err != nil {
				b.Fatalf("push: %v", err)
			}
			wall := time.Since(start)
			b.Logf("push %-9s %d hosts in %s (%.1f hosts/s), %v", round, m, wall.Round(time.Millisecond), float64(m)/wall.Seconds(), statuses(sum))
			b.ReportMetric(wall.Seconds(), "push-"+round+"-s")
		}
		ansible(b, f, res.Rendered[0], known, par)
	}
}

func statuses(sum *push.Summary) map[string]int {
	out := map[string]int{}
	for _, h := range sum.Hosts {
		out[h.Status]++
	}
	return out
}

// ansible copies each host's files to a root of its own beside push's,
// with ansible-playbook: one copy task looping over the host's files
// (mode and a validate step each), forks as push's parallelism.
func ansible(b *testing.B, f *pushtest.Fleet, r *compile.Rendered, known string, forks int) {
	playbook, err := exec.LookPath("ansible-playbook")
	if err != nil {
		b.Logf("ansible-playbook not found (apt-get install ansible): Ansible not measured")
		return
	}
	dir := b.TempDir()
	hosts, err := push.Targets(r, push.TargetOptions{NoHealth: true})
	if err != nil {
		b.Fatal(err)
	}
	var inv strings.Builder
	inv.WriteString("all:\n  hosts:\n")
	for _, h := range hosts {
		fh := f.Hosts[h.Name]
		fmt.Fprintf(&inv, "    %s:\n      ansible_host: %s\n      ansible_port: %d\n      ansible_user: %s\n      ansible_ssh_private_key_file: %s\n", h.Name, fh.Addr, fh.Port, f.User, f.ClientKey)
		fmt.Fprintf(&inv, "      ansible_ssh_common_args: '-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'\n", known)
		fmt.Fprintf(&inv, "      root: %s\n      files:\n", filepath.Join(fh.Root, "..", "ansible-root"))
		for _, fl := range h.Files {
			src := filepath.Join(dir, "files", h.Name, fl.Path)
			os.MkdirAll(filepath.Dir(src), 0o755)
			os.WriteFile(src, fl.Content, 0o644)
			fmt.Fprintf(&inv, "        - {src: %q, path: %q, mode: \"%04o\"}\n", src, fl.Path, fl.Mode.Perm())
		}
	}
	os.WriteFile(filepath.Join(dir, "inventory.yml"), []byte(inv.String()), 0o644)
	os.WriteFile(filepath.Join(dir, "site.yml"), []byte(`- hosts: all
  gather_facts: false
  tasks:
    - name: directories
      file: {path: "{{ root }}{{ item.path | dirname }}", state: directory, mode: "0755"}
      loop: "{{ files }}"
    - name: files
      copy: {src: "{{ item.src }}", dest: "{{ root }}{{ item.path }}", mode: "{{ item.mode }}", validate: "test -s %s"}
      loop: "{{ files }}"
`), 0o644)
	for _, round := range []string{"first", "unchanged"} {
		cmd := exec.Command(playbook, "-i", "inventory.yml", "-f", strconv.Itoa(forks), "site.yml")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "ANSIBLE_HOST_KEY_CHECKING=True", "ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3", "ANSIBLE_NOCOLOR=1", "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"))
		start := time.Now()
		out, err := cmd.CombinedOutput()
		wall := time.Since(start)
		if err != nil {
			b.Fatalf("ansible-playbook: %v\n%s", err, out)
		}
		recap := string(out)
		if i := strings.Index(recap, "PLAY RECAP"); i >= 0 {
			recap = recap[i:]
		}
		changed := strings.Count(recap, "changed=0")
		b.Logf("ansible %-9s %d hosts in %s (%.2f s per host), %d hosts unchanged", round, len(hosts), wall.Round(time.Millisecond), wall.Seconds()/float64(len(hosts)), changed)
		b.ReportMetric(wall.Seconds(), "ansible-"+round+"-s")
	}
	// The files Ansible wrote are push's, byte for byte.
	for _, h := range hosts {
		for _, fl := range h.Files {
			got, err := os.ReadFile(filepath.Join(f.Hosts[h.Name].Root, "..", "ansible-root", fl.Path))
			if err != nil || string(got) != string(fl.Content) {
				b.Fatalf("ansible: %s %s differs: %v", h.Name, fl.Path, err)
			}
		}
	}
}
