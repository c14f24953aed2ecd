package site

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/alecthomas/chroma/v2"

	"github.com/hacompile/hacompile/internal/par"

	"github.com/hacompile/hacompile/generators/cloudinit"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// The index, host, stack-file and source pages.

type indexRole struct {
	Name  string
	Hosts []link
}

type indexStack struct {
	Name, Href, Description, Provider, Domain, Balancer string
	Source, SourceHref, HostsText                       string
	Roles                                               []indexRole
	Links                                               []link
	Hosts, Files, Warnings, Waived                      int
	OS                                                  string // the release and its versions
}

type indexData struct {
	Stacks []indexStack
}

// card is a stack's card on the site's index page and its entry in the
// search index.
func card(sc *stackCtx) (indexStack, searchEntry) {
	const p = "index.html"
	s := sc.s
	is := indexStack{
		Name: s.Name, Href: stackPage(s.Name, "index.html"), Description: s.Description,
		Provider: s.Provider + regionSuffix(s.Region), OS: osText(s.OS), Domain: s.Domain, Balancer: balancerName(s.Balancer, s.Provider),
		Source: s.Source, SourceHref: stackPage(s.Name, "source.html"),
		Hosts: len(s.Hosts), HostsText: plural(len(s.Hosts), "host", "hosts"), Files: len(sc.r.Files),
	}
	for _, r := range roles(s) {
		ir := indexRole{Name: r.Name}
		for _, h := range r.Hosts {
			ir.Hosts = append(ir.Hosts, link{h.Name, hostPage(s.Name, h.Name)})
		}
		is.Roles = append(is.Roles, ir)
	}
	for _, t := range stackTabs(s, p) {
		is.Links = append(is.Links, link{t.Text, t.Href})
	}
	for _, f := range sc.findings {
		switch f.Severity {
		case "warning":
			is.Warnings++
		case "waived":
			is.Waived++
		}
	}
	return is, searchEntry{Kind: "stack", Title: s.Name, Text: strings.Join([]string{s.Description, s.Domain, s.Provider, s.Region}, " · "), URL: is.Href}
}

// index writes the site's index page: every stack's card, in name
// order.
func (g *gen) index(cards []indexStack) error {
	const p = "index.html"
	return g.write(page{Path: p, Title: "Runbook", Footer: footer(nil, p)}, "index", indexData{Stacks: cards})
}

// stack renders every page of one stack. The pages are independent:
// they render on every core and go to the sink as each is done; their
// search entries are merged in a fixed order (stack pages, then hosts in
// name order) so the site's bytes do not depend on scheduling. The stack
// pages' entries go to g.search; it returns the host pages' by host part
// of the index (searchHostParts), or none, and then they go to g.search
// too.
func (g *gen) stack(sc *stackCtx) ([][]searchEntry, error) {
	jobs := []func(*gen) error{
		func(g *gen) error { return g.overview(sc) },
		func(g *gen) error { return g.procedures(sc) },
		func(g *gen) error { return g.alerts(sc) },
		func(g *gen) error { return g.stackFiles(sc) },
		func(g *gen) error { return g.source(sc) },
		func(g *gen) error { return g.samePages(sc) },
		func(g *gen) error { return g.changesPage(sc.s, nil) },
	}
	if err := g.releaseCloudInit(sc); err != nil {
		return nil, err
	}
	// The stack's own pages first: they read every file; then the host
	// pages, each of which reads its host's files only, so that each
	// host's files can go (Options.Done) once its page is rendered.
	stackJobs := len(jobs)
	for _, name := range sc.s.HostNames() {
		jobs = append(jobs, func(g *gen) error {
			if err := g.host(sc, name); err != nil {
				return err
			}
			return g.done(sc, name)
		})
	}
	subs := make([]*gen, len(jobs))
	errs := make([]error, len(jobs))
	// Each job's directive hits are merged as it ends, not held to the
	// end: on a large fleet they quote most lines of every host's files.
	merge := newDirMerge()
	run := func(i int) {
		subs[i] = &gen{sink: g.sink, tmpl: g.tmpl, hl: g.hl, md: g.md}
		if g.sink.failed() {
			return // a page could not be written: render no more
		}
		hits := dirHits.Get().(*[]dirHit)
		subs[i].dirs = (*hits)[:0]
		errs[i] = jobs[i](subs[i])
		merge.add(i, subs[i].dirs)
		// Cleared: a hit's text is a view of a file's content.
		clear(subs[i].dirs)
		*hits, subs[i].dirs = subs[i].dirs[:0], nil
		dirHits.Put(hits)
	}
	par.Each(stackJobs, run)
	if err := errors.Join(errs[:stackJobs]...); err == nil && !g.sink.failed() {
		if err := g.done(sc, ""); err != nil {
			return nil, err
		}
		par.Each(len(jobs)-stackJobs, func(i int) { run(stackJobs + i) })
	}
	// The stack's pages' entries go to the stack's part of the search
	// index, each host page's to its host part, if the stack has them.
	hosts := sc.s.HostNames()
	hostParts := make([][]searchEntry, searchHostParts(len(hosts)))
	// partOf is where host h's entries go.
	partOf := func(h string) *[]searchEntry {
		if len(hostParts) == 0 {
			return &g.search
		}
		return &hostParts[searchHostPart(h, len(hostParts))]
	}
	for i, sub := range subs {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if sub == nil {
			continue // not run: the sink failed, and says so
		}
		to := &g.search
		if i >= stackJobs {
			to = partOf(hosts[i-stackJobs])
		}
		*to = append(*to, sub.search...)
		for _, h := range slices.Sorted(maps.Keys(sub.hostSearch)) {
			to := partOf(h)
			*to = append(*to, sub.hostSearch[h]...)
		}
	}
	g.mergeDirectives(sc.s.Name, merge)
	return hostParts, nil
}

// dirHits hold the directive hits of a page's job, merged as it ends
// (dirMerge.add copies what it keeps) and then kept for another job.
var dirHits = sync.Pool{New: func() any { return new([]dirHit) }}

type fileView struct {
	ID, Path, Kind, Mode, Owner, SHA256, Validate, Reload string
	Size                                                  int
	SourceHref, SourceText                                string
	Lexer                                                 string
	Listing                                               template.HTML
	Same                                                  *sameRef
}

// sameRef points a host page's file at the listing its identical
// copies share.
type sameRef struct {
	Count int
	Href  string
}

// fileViews describes files for the page from. A host file that other
// hosts carry byte for byte has its listing on the shared page only.
// With lazy, the listings that are the highlighted contents of the
// files are left out (fillListings makes them): the views' digests and
// lexers say what they would be, for a page's key.
// The files are r.Files[i] for each i of idx.
func (g *gen) fileViews(sc *stackCtx, from string, files []artifact.File, idx []int, lazy bool) []fileView {
	out := make([]fileView, 0, len(files))
	for j, f := range files {
		v := g.fileView(sc, from, f, idx[j], false)
		where := sc.s.Name
		if f.Host != "" {
			where = f.Host + " · " + sc.s.Name
		}
		if hs := sc.sharedAt(idx[j]); hs != nil {
			v.Same = &sameRef{Count: len(hs), Href: rel(from, sc.samePageAt(idx[j]))}
		} else {
			if !lazy || !sc.digestNamesListing(f) {
				v.Listing = g.listingOf(sc, f)
			}
			// A file several hosts share is indexed once, from its
			// shared page.
			dirWhere := sc.s.Name
			if f.Host != "" {
				dirWhere = "" // merged with the other hosts' lines
			}
			g.indexDirectives(f, v.Path, dirWhere, sc.fileHref(f))
		}
		out = append(out, v)
		g.addSearch(searchEntry{Kind: "file", Title: v.Path, Text: where + " · " + f.Kind, URL: sc.fileHref(f)})
	}
	return out
}

// fileView is f, r.Files[i], with its metadata as the page from shows
// it, without listing. On a page shared by several hosts (shared), a
// source that names one host's field names the hosts instead.
func (g *gen) fileView(sc *stackCtx, from string, f artifact.File, i int, shared bool) fileView {
	field, line := sc.sourceFor(f)
	if shared && strings.HasPrefix(field, "hosts.") {
		field, line = "hosts", sc.s.Positions["hosts"].Line
	}
	href := stackPage(sc.s.Name, "source.html")
	text := sc.s.Source
	if line > 0 {
		href = sourceLine(sc.s.Name, line)
		text = sc.s.Source + ":" + strconv.Itoa(line)
	}
	if field != "" {
		text += " (" + field + ")"
	}
	return fileView{
		ID: sc.anchors[f.Host][f.Path], Path: hostPath(f), Kind: f.Kind,
		Mode: octal4(uint32(f.Mode.Perm())), Owner: f.Owner, SHA256: sc.sumAt(i),
		Validate: f.Validate.String(), Reload: f.Reload.String(), Size: sc.sizeAt(i),
		SourceHref: rel(from, href), SourceText: text, Lexer: lexerFor(f.Path),
	}
}

// octal4 is m in octal, at least four digits (as %04o prints it).
func octal4(m uint32) string {
	o := strconv.FormatUint(uint64(m), 8)
	if len(o) < 4 {
		o = "0000"[len(o):] + o
	}
	return o
}

// fillListings makes the listings fileViews left out with lazy: views
// are fileViews's of files.
func (g *gen) fillListings(sc *stackCtx, views []fileView, files []artifact.File) {
	for i, f := range files {
		if views[i].Same == nil && sc.digestNamesListing(f) {
			views[i].Listing = g.listingOf(sc, f)
		}
	}
}

// highlighted reports whether f's listing is its content highlighted,
// made from nothing but the lexer of its path and its content, which a
// file view's Lexer and SHA256 name (not so a cloud-init excerpt).
func highlighted(f artifact.File) bool { return f.Kind != (cloudinit.Gen{}).Kind() }

// digestNamesListing reports whether f's listing follows from what its
// file view says of it, for a page's key: a highlighted file's from its
// lexer and digest; a host's cloud-init excerpt from its digest, as the
// packages, the files written and the first-boot commands the excerpt
// shows are all in the document, each as the excerpt shows it.
func (sc *stackCtx) digestNamesListing(f artifact.File) bool {
	if highlighted(f) {
		return true
	}
	_, ok := sc.cloudInitOf(f)
	return ok
}

// listingOf is f's highlighted content (a cloud-init file's excerpt).
// A file's listing is on one page only (the copies several hosts carry
// share one page), so it is not memoized: the memo would hold every
// host's listings until the whole runbook is written.
func (g *gen) listingOf(sc *stackCtx, f artifact.File) template.HTML {
	if !highlighted(f) {
		return cloudInitExcerpt(sc, f)
	}
	return g.hl.highlight(lexerFor(f.Path), f.Content)
}

type sameData struct {
	Stack, Path string
	Hosts       template.HTML
	Count       int
	Files       []fileView // the one file
}

// samePages writes one page per host file that several hosts carry byte
// for byte: its listing once, and the hosts it is on.
func (g *gen) samePages(sc *stackCtx) error {
	s := sc.s
	for _, k := range sortedSameKeys(sc.samePages) {
		p := sc.samePages[k]
		hosts := sc.same[k]
		var f artifact.File
		at := 0
		for j, i := range sc.fileIdx[hosts[0]] {
			if sc.sameKeyAt(i) == k {
				f, at = sc.byHost[hosts[0]][j], i
				break
			}
		}
		v := g.fileView(sc, p, f, at, true)
		v.ID = "file"
		v.Listing = g.listingOf(sc, f)
		g.indexDirectives(f, v.Path, fmt.Sprintf("%s (%d hosts) · %s", artifact.CompactNames(hosts), len(hosts), s.Name), p+"#file")
		d := sameData{Stack: s.Name, Path: v.Path, Hosts: hostLinksNames(s, p, hosts), Count: len(hosts), Files: []fileView{v}}
		title := fmt.Sprintf("%s on %d hosts · %s", v.Path, len(hosts), s.Name)
		if err := g.write(page{Path: p, Title: title, Crumbs: stackCrumbs(s, p, link{"hosts", rel(p, stackPage(s.Name, "index.html")+"#hosts")}),
			Tabs: stackTabs(s, p), Footer: footer(s, p)}, "same", d); err != nil {
			return err
		}
	}
	return nil
}

// cloudInitExcerpt shows what a host's cloud-init adds to its files: the
// packages and the first-boot commands. Its write_files are the host's
// files, listed on the host's page; repeating them here would make this
// page as large as the fleet.
func cloudInitExcerpt(sc *stackCtx, f artifact.File) template.HTML {
	name := strings.TrimSuffix(path.Base(f.Path), ".yaml")
	h := sc.s.Hosts[name]
	if h == nil {
		return confListing("plaintext", string(f.Content))
	}
	files := sc.byHost[name]
	var b strings.Builder
	b.WriteString("# Excerpt: write_files carries the " + strconv.Itoa(len(files)) + " rendered files above.\n")
	b.WriteString("packages:\n")
	for _, p := range cloudinit.Packages(sc.s, h, files, sc.r.Set.Generators) {
		b.WriteString("  - " + p + "\n")
	}
	b.WriteString("runcmd:\n")
	for _, c := range cloudinit.RunCmd(sc.s, h, files, sc.r.Set.Generators) {
		b.WriteString("  - " + c + "\n")
	}
	return confListing("yaml", b.String())
}

type hostData struct {
	Stack, Name string
	Facts       []fact
	Notes       template.HTML
	Files       []fileView
	CloudInit   []fileView // its cloud-init user data, with an excerpt (none or one)
	Push        template.HTML
}

func (g *gen) host(sc *stackCtx, name string) error {
	s := sc.s
	h := s.Hosts[name]
	p := hostPage(s.Name, name)
	d := hostData{Stack: s.Name, Name: name, Notes: g.markdown(h.Notes)}
	var roleLinks []string
	for _, r := range h.Roles {
		roleLinks = append(roleLinks, cmpOr(strings.TrimSuffix(roleNames[r], "s"), r))
	}
	addr, ssh := code(h.Address), code(fmt.Sprintf("ssh -p %d %s@%s", h.SSH.Port, h.SSH.User, h.Address))
	if t := s.ScalingTemplateHost(); t != nil && t.Name == name {
		// The launch template's host: its address is a placeholder, and
		// the machines are the group's instances.
		addr, ssh = instanceReach(sc, h)
	}
	d.Facts = []fact{
		{"Roles", text(strings.Join(h.Roles, ", ") + " (" + strings.Join(roleLinks, ", ") + ")")},
		{"Address", addr},
		{"Size", text(fmt.Sprintf("%s%d vCPU, %d MB", sizePrefix(h.Size), h.Cores, h.MemoryMB))},
		{"SSH", ssh},
	}
	if h.Has("app") && s.MultiApp() {
		for _, a := range s.AppsOn(h) {
			d.Facts = append(d.Facts, fact{"App " + a.Name, text(fmt.Sprintf("%s, %d workers × %s, nginx on port %d, answering %s%s",
				serverName(*a), a.Workers.For(h), appConcurrency(*a), a.HTTPPort, strings.Join(s.AppDomains(a), ", "), pathsText(a)))})
		}
	} else if h.Has("app") {
		d.Facts = append(d.Facts, fact{"App", text(fmt.Sprintf("%s, %d workers × %s", serverName(s.App), s.App.Workers.For(h), appConcurrency(s.App)))})
	}
	v, r := hostActions(sc, name)
	d.Facts = append(d.Facts, fact{"Validate", codes(v)}, fact{"Reload", codes(r)})
	d.Push = hostDelivery(sc, name, rel(p, stackPage(s.Name, "procedures.html")))
	var cloudInit []artifact.File
	if f, ok := sc.stackFile("cloud-init/" + name + ".yaml"); ok {
		if _, own := sc.cloudInitOf(f); own {
			v := g.fileViews(sc, p, []artifact.File{f}, []int{sc.fileIdx[""][sc.stackFileAt[f.Path]]}, true)[0]
			v.ID, v.Path = cloudInitID, "out/"+s.Name+"/"+f.Path
			d.CloudInit, cloudInit = []fileView{v}, []artifact.File{f}
		}
	}
	files := sc.byHost[name]
	d.Files = g.fileViews(sc, p, files, sc.fileIdx[name], true)
	g.addSearch(searchEntry{Kind: "host", Title: name, Text: fmt.Sprintf("%s · %s · %s %s", s.Name, strings.Join(h.Roles, ", "), h.Address, h.Size), URL: p})
	pg := page{
		Path: p, Title: name + " · " + s.Name, Crumbs: stackCrumbs(s, p, link{"hosts", rel(p, stackPage(s.Name, "index.html")+"#hosts")}),
		Tabs: stackTabs(s, p), Footer: footer(s, p),
	}
	// A host page is its page and data (the listings aside, which its
	// files' digests and lexers name) through the layout: one made from
	// the same ones is the same page.
	key, keyed, reused := g.reuse(pg, d)
	if reused {
		return nil
	}
	g.fillListings(sc, d.Files, files)
	g.fillListings(sc, d.CloudInit, cloudInit)
	b := layout(withRoot(pg), sizeHint(d.Files)+sizeHint(d.CloudInit), func(w *htmlw) { writeHostBody(w, d) })
	if keyed {
		g.emitKeyed(p, b, key)
	} else {
		g.emit(p, b)
	}
	return nil
}

// instanceReach is the address and SSH facts of the launch template's
// host h: its address (0.0.0.0) is the template's placeholder, which
// no machine answers on; an instance of the group is reached at the
// private address it got at launch, which describe-instances lists by
// the tag Auto Scaling puts on the group's instances.
func instanceReach(sc *stackCtx, h *schema.Host) (addr, ssh template.HTML) {
	s := sc.s
	group, _ := asgNames(sc)
	region := ""
	if s.Region != "" {
		region = " --region " + s.Region
	}
	list := fmt.Sprintf("aws ec2 describe-instances%s --filters Name=tag:aws:autoscaling:groupName,Values=%s Name=instance-state-name,Values=running --query 'Reservations[].Instances[].[InstanceId,PrivateIpAddress]' --output text", region, group)
	addr = hf("%s, the launch template's placeholder: each instance of the Auto Scaling group %s gets its own private address at launch", code(h.Address), code(group))
	ssh = hf("to an instance, from the VPC: %s, with the instances' private addresses from %s", code(fmt.Sprintf("ssh -p %d %s@<private-address>", h.SSH.Port, h.SSH.User)), code(list))
	return addr, ssh
}

func sizePrefix(size string) string {
	if size == "" {
		return ""
	}
	return size + ": "
}

type filesData struct {
	Stack string
	Files []fileView
}

func (g *gen) stackFiles(sc *stackCtx) error {
	s := sc.s
	p := stackPage(s.Name, "files.html")
	// A host's cloud-init user data is on its page.
	var files []artifact.File
	var idx []int
	for j, f := range sc.stackFiles {
		if _, ok := sc.cloudInitOf(f); !ok {
			files, idx = append(files, f), append(idx, sc.fileIdx[""][j])
		}
	}
	d := filesData{Stack: s.Name, Files: g.fileViews(sc, p, files, idx, false)}
	return g.write(page{Path: p, Title: "Stack files · " + s.Name, Crumbs: stackCrumbs(s, p), Tabs: stackTabs(s, p), Footer: footer(s, p)}, "files", d)
}

type sourceData struct {
	Stack, Source, Digest string
	Lines                 int
	Listing               template.HTML
	// A stack file longer than sourcePageLines is listed on several
	// pages: Parts are all of them, From and To the lines of this one.
	Parts    []sourcePart
	From, To int
}

// sourcePart is one page of a long stack file's listing.
type sourcePart struct {
	Text, Href string
	Current    bool
}

// sourcePageLines is how many lines of a stack file one source page
// lists. A 10,000-host fleet's file, listed whole, was a 6 MB page made
// again on every edit; in parts, an edit to one host makes the part
// that holds its lines again, and the first (which shows the file's
// digest), not the others.
var sourcePageLines = 1000

// sourcePage is the page of a stack's source listing that holds line
// (counted from 1).
func sourcePage(stack string, line int) string {
	if n := (line - 1) / sourcePageLines; n > 0 {
		return stackPage(stack, "source-"+strconv.Itoa(n+1)+".html")
	}
	return stackPage(stack, "source.html")
}

func (g *gen) source(sc *stackCtx) error {
	s := sc.s
	g.indexSettings(sc)
	d := sourceData{Stack: s.Name, Source: s.Source, Digest: s.SourceDigest, Lines: strings.Count(string(sc.src), "\n")}
	lexer := lexerFor(s.Source)
	it, err := tokenise(lexer, string(sc.src))
	if err != nil {
		// A file the lexer cannot read: one page, shown plain.
		return g.wholeSource(s, d, plainListing(string(sc.src)))
	}
	all := it.Tokens()
	lines := chroma.SplitTokensIntoLines(all)
	if len(lines) <= sourcePageLines {
		return g.wholeSource(s, d, g.hl.numberedFrom(1, all))
	}
	var firsts []int // the first line of each page
	for from := 1; from <= len(lines); from += sourcePageLines {
		firsts = append(firsts, from)
	}
	for k, from := range firsts {
		to := min(from+sourcePageLines-1, len(lines))
		p := sourcePage(s.Name, from)
		pd := d
		pd.From, pd.To = from, to
		if k > 0 {
			pd.Digest = "" // on the first page only: it changes with every edit
		}
		for _, f := range firsts {
			q := sourcePage(s.Name, f)
			pd.Parts = append(pd.Parts, sourcePart{Text: strconv.Itoa(f) + "–" + strconv.Itoa(min(f+sourcePageLines-1, len(lines))), Href: rel(p, q), Current: q == p})
		}
		pg := page{Path: p, Title: s.Source, Crumbs: stackCrumbs(s, p), Tabs: stackTabs(s, p), Footer: footer(s, p)}
		// The page is its data and its lines' tokens through the layout
		// and the lexer's formatter: the same ones make the same page.
		var toks []chroma.Token
		for _, l := range lines[from-1 : to] {
			toks = append(toks, l...)
		}
		key, keyed, reused := g.reuse(pg, sourceKey{pd, lexer, tokensDigest(toks)})
		if reused {
			continue
		}
		pd.Listing = g.hl.numberedFrom(from, toks)
		var b bytes.Buffer
		if err := g.tmpl.ExecuteTemplate(&b, "source", pd); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out := layout(withRoot(pg), b.Len(), func(w *htmlw) { w.b = append(w.b, b.Bytes()...) })
		if keyed {
			g.emitKeyed(p, out, key)
		} else {
			g.emit(p, out)
		}
	}
	return nil
}

// wholeSource writes a stack file's listing whole, on source.html.
func (g *gen) wholeSource(s *schema.Stack, d sourceData, listing template.HTML) error {
	p := stackPage(s.Name, "source.html")
	d.Listing = listing
	return g.write(page{Path: p, Title: s.Source, Crumbs: stackCrumbs(s, p), Tabs: stackTabs(s, p), Footer: footer(s, p)}, "source", d)
}

// sourceKey is what a part of a long source listing is made from.
type sourceKey struct {
	Data   sourceData
	Lexer  string
	Tokens [sha256.Size]byte // tokensDigest of its lines' tokens
}

// tokensDigest is the sha256 of a list of tokens, each written as its
// type and its value with its length first (so no two lists write the
// same bytes): the key of a listing part walks a thousand lines' tokens
// cheaper than by reflection.
func tokensDigest(toks []chroma.Token) [sha256.Size]byte {
	var b []byte
	for _, t := range toks {
		b = binary.AppendVarint(b, int64(t.Type))
		b = binary.AppendUvarint(b, uint64(len(t.Value)))
		b = append(b, t.Value...)
	}
	return sha256.Sum256(b)
}

// pathsText is " under /a/, /b/" for an app routed by path, else "".
func pathsText(a *schema.App) string {
	if len(a.Paths) == 0 {
		return ""
	}
	return " under " + strings.Join(a.Paths, ", ")
}
