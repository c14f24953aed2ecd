package site

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/par"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// stackCtx is one compiled stack and what the pages derive from it.
type stackCtx struct {
	r        *compile.Rendered
	s        *schema.Stack
	src      []byte
	findings []schema.Diagnostic
	// byHost holds each host's files; stackFiles those beside hosts/.
	byHost      map[string][]artifact.File
	stackFiles  []artifact.File
	stackFileAt map[string]int // path → index in stackFiles (a host page looks up its cloud-init)
	// anchors: host ("" for stack files) → path → id on its page.
	anchors map[string]map[string]string
	// files finds a file's index in r.Files, and its digest and size
	// (which the pages show). same: sameKey → the hosts
	// carrying that exact file, in host order, for the files two hosts
	// or more carry.
	files *compile.Digests
	// hexSums are the files' digests in hex, by index in r.Files: the
	// pages, their keys and the shared-file keys read each several
	// times.
	hexSums []string
	same    map[sameKey][]string
	// samePages: sameKey → site path of the shared listing.
	samePages map[sameKey]string
	// handed marks the files of r.Files already handed to the
	// runbook's Done (their contents dropped).
	handed []bool
	// fileIdx: host ("" for stack files) → the indices of its files in
	// r.Files, in order (those of byHost[host], or of stackFiles).
	fileIdx   map[string][]int
	previewMu sync.Mutex // see previewOf
	// undatedFindings are the HA rules' findings on the stack as it is,
	// without dating waivers, keyed by rule and message: what the
	// previews compare their changed copies with.
	undatedFindings func() map[string]bool
}

// sameKey identifies a host file by path, content, mode and owner: the
// hosts with equal keys carry the same file.
type sameKey struct {
	path, sum, owner string
	mode             fs.FileMode
}

func (sc *stackCtx) sameKey(f artifact.File) sameKey { return sc.sameKeyAt(sc.entry(f)) }

// sameKeyAt is the sameKey of r.Files[i].
func (sc *stackCtx) sameKeyAt(i int) sameKey {
	f := &sc.r.Files[i]
	return sameKey{path: f.Path, sum: sc.sumAt(i), owner: f.Owner, mode: f.Mode}
}

// sum is the sha256 of a rendered file of the stack, as its manifest
// has it.
func (sc *stackCtx) sum(f artifact.File) string { return sc.sumAt(sc.entry(f)) }

// sumAt is the sum of r.Files[i], in hex.
func (sc *stackCtx) sumAt(i int) string { return sc.hexSums[i] }

// entry is the index of a rendered file in r.Files (0
// for a file the stack does not render).
func (sc *stackCtx) entry(f artifact.File) int {
	i, _ := sc.files.Index(f)
	return i
}

// size is a rendered file's size in bytes (its contents may have been
// handed over and dropped).
func (sc *stackCtx) size(f artifact.File) int { return sc.sizeAt(sc.entry(f)) }

// sizeAt is the size of r.Files[i].
func (sc *stackCtx) sizeAt(i int) int {
	_, size := sc.files.Sum(i)
	return size
}

func newStackCtx(r *compile.Rendered, src []byte, all []schema.Diagnostic) (*stackCtx, error) {
	sc := &stackCtx{r: r, s: r.Stack, src: src, byHost: map[string][]artifact.File{}, anchors: map[string]map[string]string{}}
	sc.undatedFindings = sync.OnceValue(func() map[string]bool {
		m := map[string]bool{}
		for _, d := range rules.Check(r.Stack, "") {
			m[d.Rule+"\x00"+d.Message] = true
		}
		return m
	})
	// Findings name a file, not a stack: those positioned in a file the
	// stack imports are this stack's when its own review finds them too.
	imported := map[string]bool{}
	for _, p := range r.Stack.Positions {
		if p.File != "" {
			imported[p.File] = true
		}
	}
	mine := map[string]bool{}
	if len(imported) > 0 {
		for _, d := range rules.Check(r.Stack, "") {
			mine[d.Rule+"\x00"+d.Path+"\x00"+d.Message] = true
		}
	}
	for _, d := range all {
		if d.File == r.Stack.Source || imported[d.File] && mine[d.Rule+"\x00"+d.Path+"\x00"+d.Message] {
			sc.findings = append(sc.findings, d)
		}
	}
	sc.files, sc.same, sc.stackFileAt = compile.DigestsOf(r), map[sameKey][]string{}, map[string]int{}
	sc.fileIdx = map[string][]int{}
	sc.handed = make([]bool, len(r.Files))
	sc.hexSums = make([]string, len(r.Files))
	for i := range r.Files {
		sum, _ := sc.files.Sum(i)
		sc.hexSums[i] = hex.EncodeToString(sum[:])
	}
	stackFiles := 0
	var hostFiles []int32 // the host files' indices, for same
	for i, f := range r.Files {
		sc.handed[i] = f.Handed != nil // written as it was made
		sc.fileIdx[f.Host] = append(sc.fileIdx[f.Host], i)
		if f.Host == "" {
			sc.stackFileAt[f.Path] = stackFiles
			stackFiles++
		} else {
			hostFiles = append(hostFiles, int32(i))
		}
	}
	// same from the host files sorted by key (in r.Files order among
	// equal keys: host order): only the keys of two files or more are
	// kept, not a map entry for each of a large fleet's files.
	keys := make([]sameKey, len(hostFiles))
	for j, i := range hostFiles {
		keys[j] = sc.sameKeyAt(int(i))
	}
	order := make([]int32, len(hostFiles))
	for j := range order {
		order[j] = int32(j)
	}
	par.SortStableFunc(order, func(a, b int32) int {
		ka, kb := &keys[a], &keys[b]
		// Not cmp.Or, which would compare every field every time.
		if c := strings.Compare(ka.path, kb.path); c != 0 {
			return c
		}
		if c := strings.Compare(ka.sum, kb.sum); c != 0 {
			return c
		}
		if c := strings.Compare(ka.owner, kb.owner); c != 0 {
			return c
		}
		return cmp.Compare(ka.mode, kb.mode)
	})
	for lo := 0; lo < len(order); {
		hi := lo + 1
		for hi < len(order) && keys[order[hi]] == keys[order[lo]] {
			hi++
		}
		if hi-lo > 1 {
			hosts := make([]string, hi-lo)
			for j := range hosts {
				hosts[j] = r.Files[hostFiles[order[lo+j]]].Host
			}
			sc.same[keys[order[lo]]] = hosts
		}
		lo = hi
	}
	keys, order, hostFiles = nil, nil, nil
	// Each host's files, and the stack files, as runs of r.Files (sorted
	// by host, as Render leaves them: no copy of a large fleet's list),
	// joined when a host's files are not together.
	for start, i := 0, 1; start < len(r.Files); i++ {
		if i < len(r.Files) && r.Files[i].Host == r.Files[start].Host {
			continue
		}
		run := r.Files[start:i:i]
		if h := run[0].Host; h == "" {
			sc.stackFiles = append(slices.Clip(sc.stackFiles), run...)
		} else if prev, ok := sc.byHost[h]; ok {
			sc.byHost[h] = append(slices.Clip(prev), run...)
		} else {
			sc.byHost[h] = run
		}
		start = i
	}
	sc.samePages = map[sameKey]string{}
	used := map[string]bool{}
	for _, k := range sortedSameKeys(sc.same) {
		if len(sc.same[k]) < 2 {
			continue
		}
		name := anchor("", k.path) + "-" + k.sum[:12]
		for n := 2; used[name]; n++ {
			name = fmt.Sprintf("%s-%s-%d", anchor("", k.path), k.sum[:12], n)
		}
		used[name] = true
		sc.samePages[k] = stackDir(sc.s.Name) + "/same/" + name + ".html"
	}
	// A fleet's hosts share most of their paths: each path's anchor is
	// made once, and the hosts' anchors on every core.
	ids := map[string]string{}
	for _, f := range r.Files {
		if _, ok := ids[f.Path]; !ok {
			ids[f.Path] = anchor("file-", f.Path)
		}
	}
	sc.anchors[""] = fileAnchors(sc.stackFiles, ids)
	hosts := slices.Collect(maps.Keys(sc.byHost))
	anchors := make([]map[string]string, len(hosts))
	par.Each(len(hosts), func(i int) { anchors[i] = fileAnchors(sc.byHost[hosts[i]], ids) })
	for i, h := range hosts {
		sc.anchors[h] = anchors[i]
	}
	return sc, nil
}

// fileHref is the site path of a rendered file's listing.
func (sc *stackCtx) fileHref(f artifact.File) string {
	if h, ok := sc.cloudInitOf(f); ok {
		return hostPage(sc.s.Name, h) + "#" + cloudInitID
	}
	if f.Host == "" {
		return stackPage(sc.s.Name, "files.html") + "#" + sc.anchors[""][f.Path]
	}
	return hostPage(sc.s.Name, f.Host) + "#" + sc.anchors[f.Host][f.Path]
}

// sharedAt lists the hosts carrying exactly r.Files[i] (same path, same
// bytes) when there are several: its listing is then on one page for
// all of them, not repeated on each host's page.
func (sc *stackCtx) sharedAt(i int) []string {
	if sc.r.Files[i].Host == "" {
		return nil
	}
	if hs := sc.same[sc.sameKeyAt(i)]; len(hs) > 1 {
		return hs
	}
	return nil
}

// samePageAt is the site path of the listing shared by the hosts
// carrying exactly r.Files[i].
func (sc *stackCtx) samePageAt(i int) string {
	return sc.samePages[sc.sameKeyAt(i)]
}

// hostPath is how a file is named to an operator: its absolute path on
// the host, or its path under out/<stack>/.
func hostPath(f artifact.File) string {
	if f.Host == "" {
		return f.Path
	}
	return "/" + f.Path
}

// find returns the files of host whose path matches re.
func (sc *stackCtx) find(host string, re *regexp.Regexp) []artifact.File {
	var out []artifact.File
	for _, f := range sc.byHost[host] {
		if re.MatchString(f.Path) {
			out = append(out, f)
		}
	}
	return out
}

// cloudInitID is the id of a host's cloud-init user data on its page
// (file listings' ids start with "file-").
const cloudInitID = "cloud-init"

// cloudInitOf reports the host whose cloud-init user data the stack file
// f is: shown on that host's page, not on the stack files page.
func (sc *stackCtx) cloudInitOf(f artifact.File) (string, bool) {
	if f.Host != "" || f.Kind != (cloudinit.Gen{}).Kind() {
		return "", false
	}
	rest, ok := strings.CutPrefix(f.Path, "cloud-init/")
	h, yaml := strings.CutSuffix(rest, ".yaml")
	if !ok || !yaml || sc.s.Hosts[h] == nil {
		return "", false
	}
	return h, true
}

// stackFile returns the stack-level file at p.
func (sc *stackCtx) stackFile(p string) (artifact.File, bool) {
	i, ok := sc.stackFileAt[p]
	if !ok {
		return artifact.File{}, false
	}
	return sc.stackFiles[i], true
}

// sourceFor is the stack field that a rendered file comes from, as a
// position in the stack file (0 when the author wrote none of it).
func (sc *stackCtx) sourceFor(f artifact.File) (field string, line int) {
	s := sc.s
	// The file's generator says which fields it comes from; the host's
	// entry is the fallback for a host file.
	cands := sc.r.Set.Sources(s, f)
	host := f.Host
	if host != "" {
		cands = append(cands, "hosts."+host)
	}
	for _, c := range cands {
		if p, ok := s.Positions[c]; ok && (p.File == "" || p.File == s.Source) {
			return c, p.Line
		}
	}
	for _, c := range cands {
		if d := s.At(c); d.Line > 0 && d.File == s.Source {
			return c, d.Line
		}
	}
	if len(cands) > 0 {
		return cands[0], 0
	}
	return "", 0
}

// sourceHref links a field path to its line in the stack's source page.
func (sc *stackCtx) sourceHref(field string) string {
	// A position in a file the stack imports (a Jsonnet library) has no
	// line on this stack's source page.
	if d := sc.s.At(field); d.Line > 0 && d.File == sc.s.Source {
		return sourceLine(sc.s.Name, d.Line)
	}
	return stackPage(sc.s.Name, "source.html")
}

// directives returns the lines of content (outside comments) that
// match re, trimmed, each once, in file order.
func directives(content []byte, re *regexp.Regexp) []string {
	var out []string
	for line := range bytes.Lines(content) {
		l := strings.TrimSpace(string(line))
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "//") {
			continue
		}
		if re.MatchString(l) && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// nginxDirectives is directives for nginx files: it leaves out what is
// inside blocks whose opening line matches skip (the ACME relay's own
// short timeouts are not the request path's).
func nginxDirectives(content []byte, re, skip *regexp.Regexp) []string {
	var out []string
	var stack []bool
	for line := range bytes.Lines(content) {
		l := strings.TrimSpace(string(line))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		skipping := slices.Contains(stack, true)
		switch {
		case strings.HasSuffix(l, "{"):
			stack = append(stack, skipping || skip.MatchString(l))
			continue
		case l == "}":
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if !skipping && re.MatchString(l) && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// haproxyDirectives is directives for haproxy.cfg: it leaves out the
// sections (backend, listen, frontend) whose header matches skip (the
// ACME relay's backend: its retries are not the app traffic's).
func haproxyDirectives(content []byte, re, skip *regexp.Regexp) []string {
	var out []string
	skipping := false
	for line := range bytes.Lines(content) {
		raw := string(line)
		l := strings.TrimSpace(raw)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if raw[0] != ' ' && raw[0] != '\t' {
			// A section header: global, defaults, frontend, backend, listen.
			skipping = skip.MatchString(l)
			continue
		}
		if !skipping && re.MatchString(l) && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// roleOrder is how hosts are grouped on the pages.
var roleOrder = []string{"lb", "app", "worker", "cache"}

var roleNames = map[string]string{"lb": "load balancers", "app": "app hosts", "worker": "workers", "cache": "cache hosts"}

// roles lists the stack's roles in display order, each with its hosts.
func roles(s *schema.Stack) []roleHosts {
	var out []roleHosts
	seen := map[string]bool{}
	add := func(role string) {
		if hs := s.HostsWithRole(role); len(hs) > 0 && !seen[role] {
			seen[role] = true
			out = append(out, roleHosts{Role: role, Name: cmpOr(roleNames[role], role), Hosts: hs})
		}
	}
	for _, r := range roleOrder {
		add(r)
	}
	var rest []string
	for _, n := range s.HostNames() {
		rest = append(rest, s.Hosts[n].Roles...)
	}
	slices.Sort(rest)
	for _, r := range slices.Compact(rest) {
		add(r)
	}
	return out
}

type roleHosts struct {
	Role, Name string
	Hosts      []*schema.Host
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// somaxconn is the stack's net.core.somaxconn, or the kernel default.
func somaxconn(s *schema.Stack) (int, bool) {
	if v, ok := s.Tuning.Sysctl["net.core.somaxconn"]; ok {
		if n, err := strconv.Atoi(string(v)); err == nil {
			return n, true
		}
	}
	return 4096, false
}

// serverName is the app server's display name.
func serverName(a schema.App) string {
	switch {
	case a.Server == "starman":
		return "Starman"
	case a.Server == "gunicorn" && a.WorkerClass != "":
		return "gunicorn (" + a.WorkerClass + ")"
	}
	return a.Server
}

func balancerName(b schema.Balancer, provider string) string {
	switch b.Kind {
	case "nginx":
		return "nginx"
	case "haproxy":
		return "HAProxy"
	}
	switch provider {
	case "digitalocean":
		return "DigitalOcean load balancer"
	case "aws":
		return "AWS Application Load Balancer"
	}
	return "cloud load balancer"
}

func engineName(e string) string {
	switch e {
	case "postgresql":
		return "PostgreSQL"
	case "mysql":
		return "MySQL"
	case "redis":
		return "Redis"
	case "memcached":
		return "Memcached"
	case "rabbitmq":
		return "RabbitMQ"
	}
	return e
}

// queuePort is the broker's well-known port.
func queuePort(q *schema.Queue) int {
	if q.Engine == "redis" {
		return 6379
	}
	return 5672
}

// bindText is where the app server listens on each app host.
func bindText(a schema.App) string {
	if a.Bind.Socket != "" {
		return "unix:" + a.Bind.Socket
	}
	return fmt.Sprintf("127.0.0.1:%d", a.Bind.Port)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// sortedSameKeys is the keys of m in the order of path, digest, mode
// and owner.
func sortedSameKeys[V any](m map[sameKey]V) []sameKey {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b sameKey) int {
		if c := cmp.Or(strings.Compare(a.path, b.path), strings.Compare(a.sum, b.sum)); c != 0 {
			return c
		}
		// The mode's text, not its number, as keys were once sorted.
		return cmp.Or(strings.Compare(a.mode.String(), b.mode.String()), strings.Compare(a.owner, b.owner))
	})
	return keys
}

// done hands the files of one host ("": the stack files) to the
// runbook's Done, when set, and drops their contents: no page rendered
// after it reads them.
func (g *gen) done(sc *stackCtx, host string) error { return g.handOver(sc, host, nil) }

// handOver hands those files of one host ("": the stack files) that
// pick selects (nil: all) and that were not handed over before to the
// runbook's Done, when set, and drops their contents.
func (g *gen) handOver(sc *stackCtx, host string, pick func(artifact.File) bool) error {
	if g.sink.done == nil {
		return nil
	}
	var idx []int // in r.Files
	var at []int  // positions in fileIdx[host]
	for j, i := range sc.fileIdx[host] {
		if !sc.handed[i] && (pick == nil || pick(sc.r.Files[i])) {
			idx = append(idx, i)
			at = append(at, j)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	if err := g.sink.done(sc.r, idx); err != nil {
		return handOverError{err}
	}
	for _, j := range at {
		i := sc.fileIdx[host][j]
		sc.handed[i] = true
		sc.r.Files[i].Content = nil
		if host == "" {
			sc.stackFiles[j].Content = nil
		} else {
			sc.byHost[host][j].Content = nil
		}
	}
	return nil
}

// handOverError is the error of the runbook's Done, which writes the
// stack's files: it is about out/, not the site, and is said as it is.
type handOverError struct{ err error }

func (e handOverError) Error() string { return e.err.Error() }
func (e handOverError) Unwrap() error { return e.err }

// releaseCloudInit hands the stack's cloud-init documents over before
// the stack's pages render: on a large fleet they are the largest files
// held, and no page reads them (the excerpts and the certbot commands
// the procedures quote are their hosts' first-boot commands, made from
// the hosts' files). A build that wrote them as they were made
// (artifact.Options.Hand) has handed them already.
func (g *gen) releaseCloudInit(sc *stackCtx) error {
	isDoc := func(f artifact.File) bool { return f.Kind == (cloudinit.Gen{}).Kind() }
	return g.handOver(sc, "", isDoc)
}
