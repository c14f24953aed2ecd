package site

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"html/template"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/generators/instance"
	"github.com/hacompile/hacompile/generators/keepalived"
	"github.com/hacompile/hacompile/generators/nginx"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/generators/pull"
	"github.com/hacompile/hacompile/internal/par"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/haproxy"
	"github.com/hacompile/hacompile/generators/monitoring"
	"github.com/hacompile/hacompile/generators/systemd"
	"github.com/hacompile/hacompile/schema"
)

// The procedures page: what an operator does to this stack, with the
// exact commands, written from the model and the rendered files.

type procedure struct {
	ID, Title string
	write     func(d *doc, sc *stackCtx, from string)
}

var procedures = []procedure{
	{"deploy", "Deploy a change", deploy},
	{"rollback", "Roll back", rollback},
	{"add-app-host", "Add an app host", addAppHost},
	{"remove-app-host", "Remove an app host", removeAppHost},
	{"drain", "Drain a host", drain},
	{"failover-balancer", "Fail over the load balancer", failoverBalancer},
	{"failover-database", "Fail over the database", failoverDatabase},
	{"certificates", "Certificates: issue, renew, rotate", certificates},
	{"secrets", "Provision secrets", secrets},
}

type proceduresData struct {
	Name string
	TOC  []link
	Body template.HTML
}

func (g *gen) procedures(sc *stackCtx) error {
	s := sc.s
	p := stackPage(s.Name, "procedures.html")
	data := proceduresData{Name: s.Name}
	// Each procedure is its own section, and several preview a changed
	// copy of the stack (a render of the whole fleet): write them on
	// every core, joined in order.
	parts := make([]template.HTML, len(procedures))
	par.Each(len(procedures), func(i int) {
		d := &doc{g: g}
		d.section(procedures[i].ID, procedures[i].Title)
		procedures[i].write(d, sc, p)
		d.end()
		parts[i] = d.html()
	})
	var body strings.Builder
	for i, pr := range procedures {
		data.TOC = append(data.TOC, link{pr.Title, "#" + pr.ID})
		body.WriteString(string(parts[i]))
		g.addSearch(searchEntry{Kind: "procedure", Title: pr.Title, Text: s.Name, URL: p + "#" + pr.ID})
	}
	data.Body = template.HTML(body.String())
	return g.write(page{
		Path: p, Title: "Procedures · " + s.Name, Crumbs: stackCrumbs(s, p), Tabs: stackTabs(s, p), Footer: footer(s, p),
	}, "procedures", data)
}

// stackFileArg is the stack file as a word of the runbook's shell
// commands: quoted when its path (a directory's name) holds anything a
// shell reads, so a copied command names the file and runs nothing else.
func stackFileArg(s *schema.Stack) string { return artifact.ShellQuote(s.Source) }

// hostActions lists, per host, the validate and reload commands of its
// files, in file order, each once.
func hostActions(sc *stackCtx, host string) (validate, reload []string) {
	for _, f := range sc.byHost[host] {
		if v := f.Validate.String(); v != "" && !slices.Contains(validate, v) {
			validate = append(validate, v)
		}
		if r := f.Reload.String(); r != "" && !slices.Contains(reload, r) {
			reload = append(reload, r)
		}
	}
	return validate, reload
}

func codes(cmds []string) template.HTML {
	if len(cmds) == 0 {
		return "—"
	}
	var parts []string
	for _, c := range cmds {
		parts = append(parts, string(code(c)))
	}
	return template.HTML(strings.Join(parts, "<br>"))
}

func healthURL(s *schema.Stack) string {
	scheme := "https"
	if !s.TLS.Enabled() {
		scheme = "http"
	}
	return scheme + "://" + s.Domain + s.Balancer.Health.Path
}

// curlHost is curl as it must ask one host directly: behind a balancer
// that sends the PROXY protocol, the host's listeners expect its header
// first (curl --haproxy-protocol sends version 1).
func curlHost(s *schema.Stack) string {
	if s.ProxyProtocol() {
		return "curl -fsS --haproxy-protocol"
	}
	return "curl -fsS"
}

func hostLink(s *schema.Stack, from, host string) template.HTML {
	return hf(`<a href="%s">%s</a>`, rel(from, hostPage(s.Name, host)), host)
}

func deploy(d *doc, sc *stackCtx, from string) {
	s := sc.s
	if s.Scaling != nil {
		asgDeploy(d, sc)
		return
	}
	how := "a push"
	if s.PullEnabled() {
		how = "a signed publish"
	}
	d.p(hf("Every change starts in %s and reaches the hosts only through %s of the committed %s.", code(stackFileArg(s)), how, code("out/"+s.Name+"/")))
	d.step(hf("Edit the stack and check it: errors name the file, line and field."), "hacompile vet "+stackFileArg(s))
	d.step(hf("Render and read what changes on the hosts."), "hacompile build", "git diff --stat -- out/"+s.Name+"/", "git diff -- out/"+s.Name+"/")
	d.step(hf("Commit the stack and its output together; CI runs %s, which fails when they disagree.", code("hacompile build --check")),
		"git add "+stackFileArg(s)+" out/", "git commit")
	if s.PullEnabled() {
		pullDeploy(d, sc)
		return
	}
	d.step(hf("Preview the push: the files each host would get, and no writes."), "hacompile push "+s.Name+" --dry-run")
	d.step(hf("Push. Hosts go in batches (one load balancer at a time, app hosts in batches, a health check between batches). On each host the changed files are written, their validate commands run, the old files come back if one fails, then the reload actions run."),
		"hacompile push "+s.Name)
	d.step(hf("Check the site answers through the balancer."), "curl -fsS -o /dev/null -w '%{http_code}\\n' "+healthURL(s))
	d.p("What a push runs on each host when its files change (hosts that run the same, on one row):")
	// One row per roles, validate and reload commands, in the order of
	// each row's first host.
	type row struct {
		roles         string
		validate, rel []string
		hosts         []string
	}
	var rows []*row
	byKey := map[string]*row{}
	for _, n := range s.HostNames() {
		v, r := hostActions(sc, n)
		roles := strings.Join(s.Hosts[n].Roles, ", ")
		k := roles + "\x00" + strings.Join(v, "\x00") + "\x00\x00" + strings.Join(r, "\x00")
		w := byKey[k]
		if w == nil {
			w = &row{roles: roles, validate: v, rel: r}
			byKey[k] = w
			rows = append(rows, w)
		}
		w.hosts = append(w.hosts, n)
	}
	cells := make([][]template.HTML, len(rows))
	for i, w := range rows {
		cells[i] = []template.HTML{hostLinksNames(s, from, w.hosts), text(w.roles), codes(w.validate), codes(w.rel)}
	}
	d.table([]string{"Hosts", "Roles", "Validate", "Reload"}, cells)
	var stackLevel []template.HTML
	for _, f := range sc.stackFiles {
		if f.Kind == (monitoring.Gen{}).Kind() {
			stackLevel = append(stackLevel, hf(`<a href="%s">%s</a>: validate %s, then %s on the monitoring host`, rel(from, sc.fileHref(f)), f.Path, code(f.Validate.String()), code(f.Reload.String())))
		}
	}
	if len(stackLevel) > 0 {
		d.p(hf("Push copies host files only. The monitoring files under %s go to the Prometheus host by hand or by its own deployment:", code("out/"+s.Name+"/monitoring/")))
		d.ul(stackLevel...)
	}
}

// pullDeploy is how a committed change reaches the hosts of a stack
// that pulls (delivery.pull): published as signed artifacts, applied by
// each host's timer. A push alone would be undone by the next apply of
// the published files.
func pullDeploy(d *doc, sc *stackCtx) {
	s := sc.s
	p := s.Delivery.Pull
	repo := p.Registry + "/" + p.Repository
	wait := p.IntervalMinutes + p.RandomizedDelayMinutes
	d.p(hf("The hosts pull (%s): each applies its signed artifact from %s every %s. A push still writes files, but the next apply puts the published ones back: publish every change.",
		code("delivery.pull"), code(repo), minutesText(p.IntervalMinutes, p.RandomizedDelayMinutes)))
	if len(p.CanaryHosts) > 0 {
		d.step(hf("Publish to the canary channel, signed (the key stays on the machine that publishes). %s follow %s and apply it within %s; the other hosts stay on %s.",
			text(strings.Join(p.CanaryHosts, ", ")), code(":canary"), plural(wait, "minute", "minutes"), code(":stable")),
			publishOCI(s, "canary"))
		d.step(hf("Promote once every canary has applied it with no failure since (read from their node_exporters; exit 7 names a canary that has not, and nothing moves). The other hosts apply it within %s.", plural(wait, "minute", "minutes")),
			promoteOCI(s))
	} else {
		d.step(hf("Publish, signed (the key stays on the machine that publishes). Every host applies it within %s.", plural(wait, "minute", "minutes")),
			publishOCI(s, p.Channel))
	}
	watchApplied(d, s, "the hosts", "on a host")
	d.step(hf("Check the site answers through the balancer."), "curl -fsS -o /dev/null -w '%{http_code}\\n' "+healthURL(s))
}

// publishOCI is the command that publishes the stack's signed artifacts
// to a channel of its registry.
func publishOCI(s *schema.Stack, channel string) string {
	p := s.Delivery.Pull
	cmd := "hacompile publish --oci " + p.Registry + "/" + p.Repository + ":" + channel + " --sign-key <signing-key.pem>"
	if p.PlainHTTP {
		cmd += " --plain-http"
	}
	return cmd + " " + stackFileArg(s)
}

// minutesText says a pull period: "15 minutes (plus up to 5 at random)".
func minutesText(interval, delay int) string {
	t := plural(interval, "minute", "minutes")
	if interval == 1 {
		t = "minute"
	}
	if delay > 0 {
		t += fmt.Sprintf(" (plus up to %d at random)", delay)
	}
	return t
}

// promoteOCI is the command that moves the stable channel to what the
// canaries applied, once they have.
func promoteOCI(s *schema.Stack) string {
	p := s.Delivery.Pull
	return "hacompile promote " + s.Name + " --from canary --to stable --wait " + strconv.Itoa(2*(p.IntervalMinutes+p.RandomizedDelayMinutes)) + "m --verify-key <public-key.pem>"
}

// delivery is how a change committed with its rendered files reaches
// the stack's hosts: a push; or, on a stack whose hosts pull
// (delivery.pull), the signed publish Deploy gives, which each host's
// timer applies (a push there is undone by the next apply). Every
// procedure step and host page line that delivers a change says it
// through this.
type delivery struct {
	s     *schema.Stack
	pulls bool
	verb  string   // "push" or "publish": "commit and <verb>"
	cmds  []string // what delivers the committed change, as Deploy gives it
}

func deliveryOf(s *schema.Stack) delivery {
	if !s.PullEnabled() {
		return delivery{s: s, verb: "push", cmds: []string{"hacompile push " + s.Name}}
	}
	p := s.Delivery.Pull
	if len(p.CanaryHosts) > 0 {
		return delivery{s: s, pulls: true, verb: "publish", cmds: []string{publishOCI(s, "canary"), promoteOCI(s)}}
	}
	return delivery{s: s, pulls: true, verb: "publish", cmds: []string{publishOCI(s, p.Channel)}}
}

// commit is a step's commands: before, then committing the stack with
// its output, then delivering it.
func (dl delivery) commit(before ...string) []string {
	return append(append(slices.Clone(before), "git add "+stackFileArg(dl.s)+" out/", "git commit"), dl.cmds...)
}

// within is how long a host that pulls takes at most to apply what
// was published.
func (dl delivery) within() string {
	p := dl.s.Delivery.Pull
	return plural(p.IntervalMinutes+p.RandomizedDelayMinutes, "minute", "minutes")
}

// hostTag is the tag of the registry host h follows.
func hostTag(s *schema.Stack, h string) string {
	return pull.Channel(s, h) + "-" + s.Name + "-" + h
}

// deliver writes the step that commits a change and delivers it (text
// says what it does, with dl.verb), and on a stack that pulls what the
// publish does and the step that watches the hosts the change reaches
// apply it: hosts of the stack, and added, hosts the change adds (the
// publish covers them: it publishes every host of the stack).
func (dl delivery) deliver(d *doc, from string, text template.HTML, hosts []string, added []*schema.Host, before ...string) {
	if !dl.pulls {
		d.step(text, dl.commit(before...)...)
		return
	}
	s := dl.s
	p := s.Delivery.Pull
	if len(p.CanaryHosts) > 0 {
		text += hf(" Publish it signed to %s, then promote it once the canaries (%s) have applied it: they apply it within %s, the other hosts within %s of the promotion. A push would be undone by their next apply.",
			code(":canary"), strings.Join(p.CanaryHosts, ", "), dl.within(), dl.within())
	} else {
		text += hf(" The publish is signed (the key stays on the machine that publishes); each host applies its own files within %s. A push would be undone by its next apply.", dl.within())
	}
	for _, h := range added {
		text += hf(" It covers every host of the stack, %s included, under the tag %s follows (%s).", h.Name, h.Name, code(hostTag(s, h.Name)))
	}
	d.step(text, dl.commit(before...)...)
	var who []string
	if len(hosts) > 0 {
		who = append(who, string(hostLinksNames(s, from, hosts)))
	}
	for _, h := range added {
		who = append(who, template.HTMLEscapeString(h.Name))
	}
	if len(who) > 0 {
		watchApplied(d, s, template.HTML(strings.Join(who, ", ")), "on each of them")
	}
}

// watchApplied is the step that watches hosts that pull apply what was
// published (who: which; on: where to read the last apply).
func watchApplied(d *doc, s *schema.Stack, who template.HTML, on string) {
	d.step(hf("Watch %s converge: %s fires for a host still on an old digest after two periods, %s for one with no success in three; %s, its last apply:", who, code("HostStuckOnOldDigest"), code("PullNotApplying"), on),
		"journalctl -u "+pull.Unit(s)+".service -n 20")
}

// changedHosts are the hosts of the stack whose files the previewed
// change reaches, in name order; without a preview, fallback.
func changedHosts(s *schema.Stack, p preview, fallback []*schema.Host) []string {
	if p.Err != "" || p.stack == nil {
		return schema.HostNamesOf(fallback)
	}
	changed := map[string]bool{}
	for _, c := range p.Changes {
		changed[c.Host] = true
	}
	var out []string
	for _, n := range s.HostNames() {
		if changed[n] && p.stack.Hosts[n] != nil {
			out = append(out, n)
		}
	}
	return out
}

// imageNeeds is what a new host's image must carry on a stack that
// pulls, and why: the agent when delivery.pull.agent gives no url to
// download it from, the public key when delivery.pull gives no
// public_key to render; "" when the stack provides both (or does not pull).
func imageNeeds(s *schema.Stack) template.HTML {
	if !s.PullEnabled() {
		return ""
	}
	p := s.Delivery.Pull
	agent, key := p.Agent.URL == "", p.PublicKey == ""
	switch {
	case agent && key:
		return hf("the hacompile agent at %s and the publishers' public key at %s. The hosts pull (%s) and the stack sets neither %s nor %s, so cloud-init neither downloads the agent nor writes the key: without the agent the first boot stops before any service starts, and without the key no apply verifies.",
			code(p.Agent.Path), code(p.PublicKeyPath), code("delivery.pull"), code("agent.url"), code("public_key"))
	case agent:
		return hf("the hacompile agent at %s. The hosts pull (%s) and the stack sets no %s, so cloud-init does not download it: without it the first boot stops before any service starts (the public key is rendered from %s).",
			code(p.Agent.Path), code("delivery.pull"), code("agent.url"), code("public_key"))
	case key:
		return hf("the publishers' public key at %s. The hosts pull (%s) and the stack sets no %s, so nothing writes it (cloud-init downloads the agent from %s): without it no apply verifies.",
			code(p.PublicKeyPath), code("delivery.pull"), code("public_key"), code("agent.url"))
	}
	return ""
}

// imageCheck is the command that checks a new host's image carries
// what imageNeeds says.
func imageCheck(s *schema.Stack, h *schema.Host) string {
	p := s.Delivery.Pull
	var paths []string
	if p.Agent.URL == "" {
		paths = append(paths, p.Agent.Path)
	}
	if p.PublicKey == "" {
		paths = append(paths, p.PublicKeyPath)
	}
	return "ssh root@" + h.Address + " ls -l " + strings.Join(paths, " ")
}

// hostDelivery is what a host's page says delivers a change to it
// (procs: the procedures page, from the host's page).
func hostDelivery(sc *stackCtx, name, procs string) template.HTML {
	s := sc.s
	if t := s.ScalingTemplateHost(); t != nil && t.Name == name {
		group, tmpl := asgNames(sc)
		return hf("No machine has this host's address (%s): each instance of the Auto Scaling group %s boots as this host from the launch template %s, whose user data is its cloud-init, and gets its own private address at launch. A change reaches the instances as a new launch template version and an instance refresh, not a push; the <a href=\"%s\">procedures</a> say how.",
			code(t.Address), code(group), code(tmpl), procs+"#deploy")
	}
	if !s.PullEnabled() {
		return hf("Push this host alone with %s; the <a href=\"%s\">procedures</a> say when.", code("hacompile push "+s.Name+" --hosts "+name), procs)
	}
	p := s.Delivery.Pull
	dl := deliveryOf(s)
	cmds := []string{publishOCI(s, pull.Channel(s, name))}
	if pull.Channel(s, name) == "stable" && len(p.CanaryHosts) > 0 {
		cmds = dl.cmds
	}
	var publish []string
	for _, c := range cmds {
		publish = append(publish, string(code(c)))
	}
	return hf("This host pulls (%s): every %s it applies its signed artifact, the tag %s of %s. A change reaches it when it is published with %s (the <a href=\"%s\">procedures</a> say when); a push to it would be undone by its next apply. Its last apply, on the host: %s.",
		code("delivery.pull"), minutesText(p.IntervalMinutes, p.RandomizedDelayMinutes), code(hostTag(s, name)), code(p.Registry+"/"+p.Repository),
		template.HTML(strings.Join(publish, ", then ")), procs, code("journalctl -u "+pull.Unit(s)+".service -n 20"))
}

func rollback(d *doc, sc *stackCtx, from string) {
	s := sc.s
	if s.Scaling != nil {
		asgRollback(d, sc)
		return
	}
	if s.PullEnabled() {
		// The hosts apply what is published: a rollback on the hosts
		// alone would be undone by their next apply.
		p := s.Delivery.Pull
		channels := []string{p.Channel}
		if len(p.CanaryHosts) > 0 {
			channels = []string{"canary", "stable"}
		}
		var publish []string
		for _, c := range channels {
			publish = append(publish, publishOCI(s, c))
		}
		d.p(hf("The hosts pull (%s): rolling back is publishing the files before the change. Each host applies them on its next run as it applies any change (validate, the old files back if one fails, reload, health check, and its own automatic revert if the health check fails).", code("delivery.pull")))
		d.step(hf("Revert the change in git and render the files before it."), "git revert <commit>", "hacompile build", "hacompile build --check")
		d.step(hf("Publish them, signed, to every channel the hosts follow; they apply them within %s.", plural(p.IntervalMinutes+p.RandomizedDelayMinutes, "minute", "minutes")),
			publish...)
		d.step("Check the site.", "curl -fsS -o /dev/null -w '%{http_code}\\n' "+healthURL(s))
		d.note("A rollback restores files, not data: a database migration that ran with the change is not undone.")
		return
	}
	d.p("A push keeps a backup of every file it replaces. Rolling back puts the previous generation back on every host byte for byte, with its modes and owners, and runs the same validate and reload actions as a push.")
	d.step("Restore the previous generation on the hosts.", "hacompile rollback "+s.Name)
	d.step("Check the site.", "curl -fsS -o /dev/null -w '%{http_code}\\n' "+healthURL(s))
	d.step(hf("Bring git back in line, or the next push re-applies the change: revert the commit, rebuild and commit %s.", code("out/")),
		"git revert <commit>", "hacompile build", "hacompile build --check", "git push")
	d.note("A rollback restores files, not data: a database migration that ran with the change is not undone.")
}

func hostLiteral(h *schema.Host) string {
	roles := make([]string, len(h.Roles))
	for i, r := range h.Roles {
		roles[i] = strconv.Quote(r)
	}
	size := ""
	if h.Size != "" {
		size = fmt.Sprintf(", size: %q", h.Size)
	} else {
		size = fmt.Sprintf(", cores: %d, memory_mb: %d", h.Cores, h.MemoryMB)
	}
	return fmt.Sprintf("%s: {address: %q, roles: [%s]%s}", h.Name, h.Address, strings.Join(roles, ", "), size)
}

// previewTable shows a preview's changes and findings.
func previewTable(d *doc, sc *stackCtx, from string, p preview) {
	if p.Err != "" {
		d.note(hf("The change does not render: %s", p.Err))
		return
	}
	// The hosts whose files change alike (the same paths, the same way,
	// the same actions) share a row, in the order of its first host.
	type row struct {
		g     changeGroup
		hosts []string // of the stack as it is
	}
	var rs []*row
	alike := map[string]*row{}
	for _, g := range groupChanges(p.Changes) {
		if g.Host == "" || sc.s.Hosts[g.Host] == nil {
			rs = append(rs, &row{g: g})
			continue
		}
		var k strings.Builder
		for _, f := range g.Files {
			k.WriteString(f.Path + "\x00" + f.Change + "\x00")
		}
		k.WriteString("\x00" + strings.Join(g.Actions, "\x00"))
		if r := alike[k.String()]; r != nil {
			r.hosts = append(r.hosts, g.Host)
			continue
		}
		r := &row{g: g, hosts: []string{g.Host}}
		alike[k.String()] = r
		rs = append(rs, r)
	}
	var rows [][]template.HTML
	for _, r := range rs {
		g := r.g
		where := template.HTML("stack files (" + template.HTMLEscapeString("out/"+sc.s.Name+"/") + ")")
		switch {
		case r.hosts != nil:
			where = hostLinksNames(sc.s, from, r.hosts)
		case g.Host != "":
			where = hf("%s (new)", g.Host)
		}
		var files []string
		for _, f := range g.Files {
			files = append(files, string(hf("%s <span class=\"change %s\">%s</span>", code(f.Path), f.Change, f.Change)))
		}
		fileCell := template.HTML(strings.Join(files, "<br>"))
		if len(files) > 6 {
			fileCell = hf("<details><summary>%s</summary>%s</details>", g.Summary, fileCell)
		}
		rows = append(rows, []template.HTML{where, fileCell, codes(g.Actions)})
	}
	d.table([]string{"Where", "Files", "Validate and reload"}, rows)
	if len(rows) > 0 {
		d.p(hf("Each host listed also gets a new cloud-init document (%s) carrying its changed files.", code("out/"+sc.s.Name+"/cloud-init/<host>.yaml")))
	}
	for _, f := range p.Findings {
		cls := "warning"
		if f.Severity == "error" {
			cls = "error"
		}
		d.raw(hf("<p class=\"finding %s\"><strong>%s %s</strong>: %s</p>\n", cls, f.Severity, f.Rule, f.Message))
	}
}

func addAppHost(d *doc, sc *stackCtx, from string) {
	s := sc.s
	if s.Scaling != nil {
		asgScale(d, sc, 1)
		return
	}
	if s.RoleCount("app") == 0 {
		d.p("The stack has no app host to copy.")
		return
	}
	h := s.NextHost("app")
	hs := s.HostsWithRole("app")
	like := hs[len(hs)-1]
	// With several apps listing their hosts, the new host is added to
	// the lists the host it copies is in (the step below says so), and
	// the preview renders both edits.
	p := previewChange(sc, []string{h.Name}, appsListing(s), func(c *schema.Stack) {
		c.Hosts[h.Name] = h
		c.RunLike(h.Name, like.Name)
	})
	d.p(hf("Shown for a new host %s at %s, sized like the last app host; use the real name and address.", code(h.Name), code(h.Address)))
	pkgs := []string{}
	if p.stack != nil {
		var own []artifact.File
		for _, f := range p.files {
			if f.Host == h.Name {
				own = append(own, f)
			}
		}
		pkgs = cloudinit.Packages(p.stack, h, own, sc.r.Set.Generators)
	}
	dl := deliveryOf(s)
	needs := imageNeeds(s)
	switch s.Provider {
	case "digitalocean":
		stock := osrelease.MustLookup(s.OS).DigitalOceanImage
		if needs == "" {
			d.step(hf("Create the Droplet in the stack's VPC. DigitalOcean assigns its private address, so read it before writing the stack."),
				fmt.Sprintf("doctl compute droplet create %s --region %s --size %s --image %s --vpc-uuid <vpc-uuid> --ssh-keys <key-id> --wait", h.Name, cmpOr(s.Region, "<region>"), cmpOr(h.Size, "<size>"), stock),
				fmt.Sprintf("doctl compute droplet get %s --format PrivateIPv4 --no-header", h.Name))
		} else {
			// The stack's own image (a snapshot or custom image), which
			// carries what cloud-init does not install: a stock one
			// stops the first boot or every apply.
			d.step(hf("Create the Droplet in the stack's VPC from the image the stack's droplets boot from (one of your snapshots or custom images, listed by the first command), not the stock %s: that image carries %s DigitalOcean assigns its private address, so read it before writing the stack.", code(stock), needs),
				"doctl compute image list-user --format ID,Name,Type,Distribution",
				fmt.Sprintf("doctl compute droplet create %s --region %s --size %s --image <image-id> --vpc-uuid <vpc-uuid> --ssh-keys <key-id> --wait", h.Name, cmpOr(s.Region, "<region>"), cmpOr(h.Size, "<size>")),
				fmt.Sprintf("doctl compute droplet get %s --format PrivateIPv4 --no-header", h.Name))
		}
		d.stepListing(hf("Add it to %s under %s with that address:", code(stackFileArg(s)), code("hosts")), "cue", hostLiteral(h))
	default:
		d.stepListing(hf("Add it to %s under %s:", code(stackFileArg(s)), code("hosts")), "cue", hostLiteral(h))
	}
	if s.MultiApp() {
		// The apps list their hosts: the new one runs what the host it
		// copies runs.
		var names []string
		for _, a := range s.AppsOn(like) {
			if len(a.Hosts) > 0 {
				names = append(names, string(code(a.Field+".hosts")))
			}
		}
		if len(names) > 0 {
			d.step(hf("Add %s to %s, so that it runs what %s runs.", code(h.Name), template.HTML(strings.Join(names, ", ")), hostLink(s, from, like.Name)))
		}
	}
	d.step("Check and render it; the table below is what the build changes.", "hacompile vet "+stackFileArg(s), "hacompile build", "git diff --stat -- out/"+s.Name+"/")
	previewBlocks(d, p)
	switch s.Provider {
	case "digitalocean":
		ud := "out/" + s.Name + "/cloud-init/" + h.Name + ".yaml"
		if needs != "" {
			d.step(hf("Check that its image carries what its cloud-init does not install (a missing file is named):"), imageCheck(s, h))
		}
		d.step(hf("Provision it from its cloud-init, as a new machine boots: its user data becomes system configuration (%s), the SSH host key you accepted is kept, and cloud-init runs every stage again. It installs %s, writes its files and starts its services.", code(cloudinit.ConfigDropIn), code(strings.Join(pkgs, " "))),
			"scp "+ud+" root@"+h.Address+":"+cloudinit.ConfigDropIn,
			fmt.Sprintf("ssh root@%s \"printf '%s' > %s && %s\"", h.Address, strings.TrimSuffix(cloudinit.KeepHostKeys, "\n")+"\\n", cloudinit.KeepHostKeysDropIn, cloudinit.Rerun))
		deployCode(d, s, h)
		if dl.pulls {
			// Nothing is published for it until the commit below: its
			// timer retries its first apply until then.
			d.step(hf("Provision its secrets (see <a href=\"#secrets\">Provision secrets</a>), then check it answers before the balancers send it traffic. Its timer retries its first apply every %s until the publish below creates its tag (%s); that apply finds the files cloud-init wrote and records them.", minutesText(s.Delivery.Pull.IntervalMinutes, s.Delivery.Pull.RandomizedDelayMinutes), code(hostTag(s, h.Name))),
				healthCurls(s, h)...)
		} else {
			d.step(hf("Provision its secrets (see <a href=\"#secrets\">Provision secrets</a>), then check it answers before the balancers send it traffic, and record its files as pushed (push finds nothing to change)."),
				append(healthCurls(s, h), "hacompile push "+s.Name+" --hosts "+h.Name)...)
		}
	default:
		create := hf("Create the machine with that address and %s as its user data: it installs the packages and files and starts the services.", code("out/"+s.Name+"/cloud-init/"+h.Name+".yaml"))
		if needs != "" {
			create += hf(" Boot it from the image the stack's hosts boot from, not a stock one: it carries %s", needs)
		}
		d.step(create)
		if needs != "" {
			d.step(hf("Check that its image carries what its cloud-init does not install (a missing file is named):"), imageCheck(s, h))
		}
		deployCode(d, s, h)
		d.step(hf("Provision its secrets (see <a href=\"#secrets\">Provision secrets</a>), then check it answers."),
			healthCurls(s, h)...)
	}
	// The hosts the change reaches, which apply it on a stack that
	// pulls; the new one is published with them.
	reached := changedHosts(s, p, s.HostsWithRole("lb"))
	added := []*schema.Host{h}
	switch {
	case s.Balancer.Kind == "cloud" && s.Provider == "digitalocean":
		if do := s.Balancer.DigitalOcean; do != nil && do.DropletTag != "" {
			dl.deliver(d, from, hf("Tag the Droplet %s: the load balancer sends traffic to every Droplet with that tag once its health check passes. Then commit and %s the rest.", code(do.DropletTag), dl.verb), reached, added,
				"doctl compute droplet tag "+h.Name+" --tag-name "+do.DropletTag)
		} else {
			dl.deliver(d, from, hf("Add the Droplet to the load balancer, then commit and %s the rest.", dl.verb), reached, added,
				"doctl compute load-balancer add-droplets <lb-id> --droplet-ids $(doctl compute droplet get "+h.Name+" --format ID --no-header)")
		}
	case s.Balancer.Kind == "cloud":
		dl.deliver(d, from, hf("Register the machine with the cloud balancer's target group, then commit and %s the rest.", dl.verb), reached, added)
	default:
		pace := ", one at a time"
		if dl.pulls {
			pace = ""
		}
		dl.deliver(d, from, hf("Commit and %s: the balancers (%s) get the new backend%s.", dl.verb, hostLinks(s, from, s.HostsWithRole("lb")), pace), reached, added)
	}
	d.p(hf("What the build changes, from a render of the stack with %s added:", code(h.Name)))
	previewTable(d, sc, from, p)
}

// appsListing is the settings a host's addition or removal changes
// besides the hosts: the apps, when some app lists its hosts.
func appsListing(s *schema.Stack) []string {
	for _, a := range s.Apps {
		if len(a.Hosts) > 0 {
			return []string{"apps"}
		}
	}
	return nil
}

// appListsOf is the apps' host lists that name host, as the stack file
// spells them (apps.<name>.hosts), in code.
func appListsOf(s *schema.Stack, host string) []string {
	var out []string
	for _, a := range s.Apps {
		if slices.Contains(a.Hosts, host) {
			out = append(out, string(code(a.Field+".hosts")))
		}
	}
	return out
}

// previewBlocks says, when the preview of a procedure's change found
// errors, that vet fails on them and nothing goes out until the stack
// is changed as they say: the steps after assume it passes.
func previewBlocks(d *doc, p preview) {
	var errs []string
	if p.Err != "" {
		errs = append(errs, p.Err)
	}
	for _, f := range p.Findings {
		if f.Severity == "error" {
			errs = append(errs, f.Rule+": "+f.Message)
		}
	}
	if len(errs) == 0 {
		return
	}
	d.step(hf("Here vet fails: the render of this change (below) finds %s. Change the stack as it says, and check and render again, before going on; nothing is committed or delivered until vet passes.", plural(len(errs), "error", "errors")))
	d.ul(func() []template.HTML {
		var out []template.HTML
		for _, e := range errs {
			out = append(out, template.HTML(template.HTMLEscapeString(e)))
		}
		return out
	}()...)
}

// deployCode is the step that puts the app's code on a new host:
// hacompile renders configuration, not the application, and nothing
// starts (nor passes push's check, which imports the app) without it.
func deployCode(d *doc, s *schema.Stack, h *schema.Host) {
	if s.MultiApp() {
		// Each app the host runs, from its own view of the stack. h
		// itself: a host being added is not among the stack's hosts.
		for _, a := range s.AppsOn(h) {
			deployCode(d, s.ForApp(a), h)
		}
		return
	}
	a := &s.App
	paths := []string{a.WorkingDir}
	what := code(a.WorkingDir)
	switch {
	case a.Runtime == "perl" && a.PSGI != "":
		paths = append(paths, a.PSGI)
	case a.Virtualenv != "":
		paths = append(paths, a.Virtualenv+"/bin/gunicorn")
		what = hf("%s, with its virtualenv at %s (built on %s, where it runs)", code(a.WorkingDir), code(a.Virtualenv), s.OS)
	}
	fails := ""
	if a.Server == "gunicorn" {
		fails = ", and push's check of gunicorn.conf.py (gunicorn --check-config loads the app) fails"
	}
	name := "the app's"
	if a.Field != "app" && a.Field != "" {
		name = "app " + a.Name + "'s"
	}
	d.step(hf("Deploy "+name+" code to %s as your release process does, owned by root and readable by %s. hacompile renders the configuration, not the application: until the code is there the app does not start%s. Check it is in place:", what, code(a.User), fails),
		"ssh root@"+h.Address+" ls -d "+strings.Join(paths, " "))
}

func removeAppHost(d *doc, sc *stackCtx, from string) {
	s := sc.s
	if s.Scaling != nil {
		asgScale(d, sc, -1)
		return
	}
	apps := s.HostsWithRole("app")
	if len(apps) < 2 {
		d.p(hf("The stack has %s: removing it would leave no app host. Add one first.", plural(len(apps), "app host", "app hosts")))
		return
	}
	h := apps[len(apps)-1]
	p := previewChange(sc, []string{h.Name}, appsListing(s), func(c *schema.Stack) {
		delete(c.Hosts, h.Name)
		for _, a := range c.Apps {
			a.Hosts = slices.DeleteFunc(slices.Clone(a.Hosts), func(n string) bool { return n == h.Name })
		}
	})
	d.p(hf("Shown for %s, the last app host.", hostLink(s, from, h.Name)))
	d.step(hf("Drain it first (see <a href=\"#drain\">Drain a host</a>) so no request is cut off."))
	if lists := appListsOf(s, h.Name); len(lists) > 0 {
		d.step(hf("Delete %s from %s, and %s from %s; check and render.", code(h.Name+": {…}"), code(stackFileArg(s)), code(h.Name), template.HTML(strings.Join(lists, ", "))), "hacompile vet "+stackFileArg(s), "hacompile build")
	} else {
		d.step(hf("Delete %s from %s, check and render.", code(h.Name+": {…}"), code(stackFileArg(s))), "hacompile vet "+stackFileArg(s), "hacompile build")
	}
	previewBlocks(d, p)
	dl := deliveryOf(s)
	dl.deliver(d, from, hf("Commit and %s: the balancers and the other hosts drop it.", dl.verb), changedHosts(s, p, s.HostsWithRole("lb")), nil)
	switch {
	case s.Balancer.Kind == "cloud" && s.Provider == "digitalocean":
		if do := s.Balancer.DigitalOcean; do != nil && do.DropletTag != "" {
			d.step(hf("Untag it (the load balancer stops sending it traffic) and destroy it."),
				"doctl compute droplet untag "+h.Name+" --tag-name "+do.DropletTag,
				"doctl compute droplet delete "+h.Name)
		} else {
			d.step("Take it out of the load balancer and destroy it.",
				"doctl compute load-balancer remove-droplets <lb-id> --droplet-ids $(doctl compute droplet get "+h.Name+" --format ID --no-header)",
				"doctl compute droplet delete "+h.Name)
		}
	case s.Provider == "digitalocean":
		d.step("Destroy the Droplet.", "doctl compute droplet delete "+h.Name)
	default:
		d.step("Destroy the machine at the provider.")
	}
	d.p(hf("What the build changes, from a render of the stack without %s:", code(h.Name)))
	previewTable(d, sc, from, p)
}

func drain(d *doc, sc *stackCtx, from string) {
	s := sc.s
	apps := s.HostsWithRole("app")
	if len(apps) == 0 {
		d.p("The stack has no app host.")
		return
	}
	if s.Scaling != nil {
		asgDrain(d, sc)
		return
	}
	h := apps[0]
	target := fmt.Sprintf("%s:%d", h.Address, s.App.HTTPPort)
	if s.MultiApp() {
		var ps []string
		for _, a := range s.AppsOn(h) {
			ps = append(ps, fmt.Sprintf("%s:%d (%s)", h.Address, a.HTTPPort, a.Name))
		}
		target = strings.Join(ps, ", ")
	}
	lbs := s.HostsWithRole("lb")
	d.p(hf("Take an app host out of the balancer's rotation without cutting requests off, for maintenance or before removing it. Shown for %s (%s).", hostLink(s, from, h.Name), code(target)))
	switch s.Balancer.Kind {
	case "haproxy", "nginx":
		what := "HAProxy gives it weight 0 (no new connections; its health checks go on)"
		if s.Balancer.Kind == "nginx" {
			what = "nginx marks it " + "<code>down</code>" + " in the upstream"
		}
		d.step(hf("Mark the host draining in the stack: %s in %s. Every balancer renders it out of rotation: %s.", code("drain: true"), code("hosts."+h.Name), template.HTML(what)),
			"hacompile vet "+stackFileArg(s), "hacompile build", "git diff -- out/"+s.Name+"/")
		dl := deliveryOf(s)
		if dl.pulls {
			dl.deliver(d, from, hf("Commit and publish. The balancers (%s) reload when they apply it, never restart: requests already running finish on the old processes, new ones go to the other app hosts.", hostLinks(s, from, lbs)), schema.HostNamesOf(lbs), nil)
		} else {
			dl.deliver(d, from, hf("Commit and push. Push applies the balancers (%s) one at a time and reloads them, never restarts: requests already running finish on the old processes, new ones go to the other app hosts.", hostLinks(s, from, lbs)), nil, nil)
		}
		if s.Balancer.Kind == "haproxy" {
			// Its server in each backend it is in (one per app it
			// runs), as the rendered haproxy.cfg names them.
			var servers []string
			for _, a := range s.AppsOn(h) {
				addr := fmt.Sprintf("%s:%d", h.Address, a.HTTPPort)
				name := haproxy.Backend(s, a) + "/" + h.Name
				for _, f := range sc.find(lbs[0].Name, haproxyCfgRE) {
					if n, ok := haproxy.Servers(f.Content)[addr]; ok {
						name = n
					}
				}
				servers = append(servers, name)
			}
			var cmds []string
			for _, n := range servers {
				backend, server, _ := strings.Cut(n, "/")
				cmds = append(cmds, fmt.Sprintf(`echo "show stat" | socat stdio %s | cut -d, -f1,2,5,18 | grep '^%s,%s,'`, haproxy.AdminSocket, backend, server))
			}
			what := template.HTML("Watch its current sessions (5th column) fall to 0; the 18th column is its health, still checked.")
			if len(servers) > 1 {
				var bs []string
				for _, n := range servers {
					b, _, _ := strings.Cut(n, "/")
					bs = append(bs, string(code(b)))
				}
				what = hf("Watch its current sessions (5th column) fall to 0 in each backend it is in (%s), one line each; the 18th column is its health, still checked.", template.HTML(strings.Join(bs, ", ")))
			}
			d.step(what, cmds...)
		}
		d.step(hf("Return it to rotation the same way: remove %s (or set it false), build, commit and %s.", code("drain"), dl.verb))
		drift := "push reports a hand-edited file as drift"
		if dl.pulls {
			drift = "an apply refuses to write over a hand-edited file (drift)"
		}
		d.note(hf("Do not edit the rendered balancer files on the hosts or change server states on the admin socket: %s, and a state set on the socket does not survive the next reload.", drift))
	default:
		switch s.Provider {
		case "digitalocean":
			if do := s.Balancer.DigitalOcean; do != nil && do.DropletTag != "" {
				d.step(hf("Remove the tag %s from the Droplet; the load balancer stops sending it new requests.", code(do.DropletTag)),
					"doctl compute droplet untag "+h.Name+" --tag-name "+do.DropletTag)
				d.step("Tag it again afterwards.", "doctl compute droplet tag "+h.Name+" --tag-name "+do.DropletTag)
				break
			}
			d.step("Take the Droplet out of the load balancer; the balancer stops sending it new requests.",
				"doctl compute load-balancer remove-droplets <lb-id> --droplet-ids $(doctl compute droplet get "+h.Name+" --format ID --no-header)")
			d.step("Put it back afterwards.",
				"doctl compute load-balancer add-droplets <lb-id> --droplet-ids $(doctl compute droplet get "+h.Name+" --format ID --no-header)")
		case "aws":
			d.step("Deregister the instance from the target group; the ALB drains it for the group's deregistration delay.",
				"aws elbv2 deregister-targets --target-group-arn <target-group-arn> --targets Id=<instance-id>")
		default:
			d.step("Take the host out of the cloud balancer's pool in the provider's console or API.")
		}
	}
	ports := fmt.Sprintf("sport = :%d", s.App.HTTPPort)
	if s.TLS.Enabled() && s.TLS.Terminate == "app" {
		ports += " or sport = :443"
	}
	if s.MultiApp() {
		// Every app on the host: each its own port and unit.
		var ps, units []string
		grace := 0
		for _, a := range s.AppsOn(h) {
			ps = append(ps, fmt.Sprintf("sport = :%d", a.HTTPPort))
			units = append(units, a.Name)
			grace = max(grace, a.GracefulTimeout)
		}
		d.step(hf("On %s, wait until no client connection is left, then stop its apps (%s) if the maintenance needs it (workers get their graceful_timeout, at most %d s, to finish).", hostLink(s, from, h.Name), template.HTMLEscapeString(strings.Join(units, ", ")), grace),
			fmt.Sprintf("ss -Htn state established '( %s )' | wc -l", strings.Join(ps, " or ")),
			"systemctl stop "+strings.Join(units, " "))
		return
	}
	d.step(hf("On %s, wait until no client connection is left, then stop the app if the maintenance needs it (workers get app.graceful_timeout, %d s, to finish).", hostLink(s, from, h.Name), s.App.GracefulTimeout),
		fmt.Sprintf("ss -Htn state established '( %s )' | wc -l", ports),
		"systemctl stop "+s.App.Name)
}

func failoverBalancer(d *doc, sc *stackCtx, from string) {
	s := sc.s
	lbs := s.HostsWithRole("lb")
	if s.Balancer.Kind == "cloud" {
		d.p(hf("The %s is the provider's managed, redundant service: there is no host of this stack to fail over. When it misbehaves, check the provider's status page and the balancer's health view of the app hosts.", balancerName(s.Balancer, s.Provider)))
		switch s.Provider {
		case "digitalocean":
			d.cmd("doctl compute load-balancer list --format ID,Name,IP,Status", "doctl compute load-balancer get <lb-id>")
		case "aws":
			d.cmd("aws elbv2 describe-target-health --target-group-arn <target-group-arn>")
		}
		return
	}
	names := schema.HostNamesOf(lbs)
	check := func(h *schema.Host) string {
		if !s.TLS.Enabled() {
			return fmt.Sprintf("%s -o /dev/null -w '%%{http_code}\\n' -H 'Host: %s' http://%s%s", curlHost(s), s.Domain, h.Address, s.Balancer.Health.Path)
		}
		return fmt.Sprintf("%s -o /dev/null -w '%%{http_code}\\n' --resolve %s:443:%s %s", curlHost(s), s.Domain, h.Address, healthURL(s))
	}
	if len(lbs) > 1 {
		d.step(hf("Check that the balancer taking over answers for the site (from a host in the private network)."), check(lbs[1]))
	}
	if v := s.Balancer.VRRP; v != nil && len(sc.findAll(regexp.MustCompile(`^`+regexp.QuoteMeta(keepalived.ConfigPath)+`$`))) > 0 {
		failoverKeepalived(d, sc, from)
		return
	}
	switch s.Balancer.Failover {
	case "reserved-ip":
		switch s.Provider {
		case "digitalocean":
			d.step(hf("Move the reserved IP from %s to %s. It is free while assigned; the move takes effect within seconds.", names[0], strings.Join(names[1:], ", ")),
				"doctl compute reserved-ip list",
				"doctl compute reserved-ip-action assign <reserved-ip> $(doctl compute droplet get "+cmpOr(strings.Join(names[1:2], ""), names[0])+" --format ID --no-header)")
		case "aws":
			d.step(hf("Move the Elastic IP from %s to %s.", names[0], strings.Join(names[1:], ", ")),
				"aws ec2 associate-address --allocation-id <eipalloc-id> --instance-id <instance-id of "+cmpOr(strings.Join(names[1:2], ""), names[0])+"> --allow-reassociation")
		default:
			d.step(hf("Move the floating address from %s to %s with the provider's API.", names[0], strings.Join(names[1:], ", ")))
		}
	case "keepalived":
		d.step(hf("keepalived moves the virtual address by itself when the holder stops answering. To move it on purpose, stop keepalived on the holder and check the address arrived on the other balancer."),
			"systemctl stop keepalived", "ip -brief address show")
		if len(sc.findAll(regexp.MustCompile(`keepalived`))) == 0 {
			d.note("No keepalived configuration is among the rendered files of this stack: it is managed outside hacompile.")
		}
	case "dns":
		d.step(hf("Remove the failed balancer's address from the A records of %s and wait out the records' TTL; put it back once it is healthy.", strings.Join(append([]string{s.Domain}, s.Aliases...), ", ")))
	default:
		if deliveryOf(s).pulls {
			// It applies what is published: nothing to push.
			text := hf("No failover is stated (balancer.failover: none), so there is no standby: replace the balancer. Create a machine with the same address and %s as its user data, or restore the host: either applies its published files by its timer (start it now on the host).", code("out/"+s.Name+"/cloud-init/"+names[0]+".yaml"))
			if needs := imageNeeds(s); needs != "" {
				text += hf(" A new machine boots from the image the stack's hosts boot from, not a stock one: it carries %s", needs)
			}
			d.step(text, "systemctl start "+pull.Unit(s)+".service", "journalctl -u "+pull.Unit(s)+".service -n 20")
			break
		}
		d.step(hf("No failover is stated (balancer.failover: none), so there is no standby: replace the balancer. Create a machine with the same address and %s as its user data, or restore the host and push.", code("out/"+s.Name+"/cloud-init/"+names[0]+".yaml")),
			"hacompile push "+s.Name+" --hosts "+names[0])
	}
	switch s.Balancer.Kind {
	case "haproxy":
		d.step("On the balancer that failed, find out why before it takes traffic again.",
			"systemctl status haproxy", "haproxy -c -f /"+haproxy.ConfigPath, `echo "show info" | socat stdio `+haproxy.AdminSocket, "journalctl -u haproxy --since -1h")
	case "nginx":
		d.step("On the balancer that failed, find out why before it takes traffic again.",
			"systemctl status nginx", "nginx -t", "tail -n 50 /var/log/nginx/error.log", "journalctl -u nginx --since -1h")
	}
	if len(lbs) > 0 {
		var cmds []string
		for _, h := range lbs {
			cmds = append(cmds, check(h))
		}
		d.step("Every balancer serves the site on its own address, with its own certificate:", cmds...)
	}
}

// failoverKeepalived describes the rendered keepalived failover.
func failoverKeepalived(d *doc, sc *stackCtx, from string) {
	s := sc.s
	v := s.Balancer.VRRP
	lbs := s.HostsWithRole("lb")
	var prios []string
	for _, h := range lbs {
		prios = append(prios, fmt.Sprintf("%s %d", h.Name, s.VRRPPriority(h.Name)))
	}
	daemon := s.Balancer.Kind
	d.p(hf("keepalived runs on %s (VRRP router id %d, unicast over %s, priorities %s; see %s). The first election, and the choice among backups, go to the highest priority; a balancer that holds the address keeps it. A backup takes over about 1.5 s after the master's last advertisement (one every %s s), and at once when the master's %s stops: keepalived checks it every second and gives the address up after two failed checks. A balancer that comes back does not take the address back (nopreempt).",
		strings.Join(schema.HostNamesOf(lbs), ", "), v.RouterID, v.Interface, strings.Join(prios, ", "), code("/"+keepalived.ConfigPath), keepalived.AdvertInterval, daemon))
	iface := v.Interface
	aws := s.Balancer.Failover == "reserved-ip" && s.Provider == "aws"
	if aws {
		eip := ""
		if v.ElasticIPAllocation != "" {
			eip = fmt.Sprintf(", and associates the Elastic IP %s with it", code(v.ElasticIPAllocation))
		}
		d.p(hf("The address is the secondary private address %s on %s. The master adds it to its interface and runs %s (notify_master), which moves it to its own network interface through the EC2 API%s, with the instance profile's role (or the credentials in %s): each call times out after 10 s, up to five attempts with a growing pause between them, every step logged.",
			code(fmt.Sprintf("%s/%d", v.VirtualAddress, v.Prefix)), code(v.Interface), code("/"+keepalived.NotifyPath), eip, code(keepalived.AWSCredentialsFile)))
	} else if s.Balancer.Failover == "reserved-ip" {
		iface = "lo"
		d.p(hf("The address is the DigitalOcean reserved IP %s. DigitalOcean routes it to one droplet, so the new master runs %s (notify_master), which assigns the reserved IP to its own droplet through the DigitalOcean API with the token in %s: each attempt times out after 10 s, up to five attempts with a growing pause between them, and every step is logged. Expect a few seconds for the API to move it.",
			code(v.VirtualAddress), code("/"+keepalived.NotifyPath), code(keepalived.TokenFile)))
		d.step(hf("Before the first failover, provision the token on every balancer (see <a href=\"#secret-files\">Password files</a>); without it the move fails and says so in the journal."),
			"install -m 600 -o root -g root /dev/stdin "+keepalived.TokenFile)
	} else {
		d.p(hf("The address is %s on %s; the master adds it and announces it by gratuitous ARP.", code(fmt.Sprintf("%s/%d", v.VirtualAddress, v.Prefix)), code(v.Interface)))
	}
	d.step(hf("Find the master: it holds the address, and its journal says when it became master."),
		"ip -brief address show dev "+iface,
		`journalctl -u keepalived --since -1h | grep -E "Entering (MASTER|BACKUP|FAULT) STATE"`)
	if keepalived.Monitored(s) {
		d.step(hf("What each balancer publishes for the alerts (KeepalivedNoMaster, KeepalivedSplitBrain, KeepalivedFault, KeepalivedAddressHolderMismatch): its VRRP state and whether it holds the address, written on every transition and every 30 s by %s. In Prometheus: %s and %s.",
			code("/"+keepalived.StatePath), code(keepalived.StateMetric+`{state="MASTER"} == 1`), code(keepalived.HeldMetric)),
			"cat /"+nodeexporter.TextfileDir+"/"+keepalived.PromFile, "systemctl list-timers "+keepalived.StateTimer)
	}
	if aws {
		d.step(hf("See what the notify script did, and where the address is assigned now."),
			"journalctl -t hacompile-reserved-ip --since -1h",
			"aws ec2 describe-network-interfaces --filters Name=addresses.private-ip-address,Values="+v.VirtualAddress+" --query 'NetworkInterfaces[].Attachment.InstanceId'")
	} else if s.Balancer.Failover == "reserved-ip" {
		d.step(hf("See what the notify script did, and where the reserved IP points now."),
			"journalctl -t hacompile-reserved-ip --since -1h",
			"doctl compute reserved-ip get "+v.VirtualAddress)
	}
	d.step(hf("To move the address on purpose (maintenance of the master), restart keepalived on the master; another balancer takes over and keeps the address when this one returns."),
		"systemctl restart keepalived")
	if aws {
		d.step(hf("If the API cannot be reached from the balancers, move the address by hand to the balancer keepalived made master."),
			"aws ec2 assign-private-ip-addresses --network-interface-id <eni-id of the master> --private-ip-addresses "+v.VirtualAddress+" --allow-reassignment")
	} else if s.Balancer.Failover == "reserved-ip" {
		d.step(hf("If the API cannot be reached from the balancers, move the reserved IP by hand to the balancer keepalived made master."),
			"doctl compute reserved-ip-action assign "+v.VirtualAddress+" $(doctl compute droplet get <master> --format ID --no-header)")
	}
	d.step("On the balancer that failed, find out why before it takes traffic again.",
		"systemctl status "+daemon+" keepalived", "journalctl -u "+daemon+" -u keepalived --since -1h")
}

// findAll returns every file of the stack whose path matches re.
func (sc *stackCtx) findAll(re *regexp.Regexp) []artifact.File {
	var out []artifact.File
	for _, f := range sc.r.Files {
		if re.MatchString(f.Path) {
			out = append(out, f)
		}
	}
	return out
}

func failoverDatabase(d *doc, sc *stackCtx, from string) {
	s := sc.s
	db := s.Database
	if db == nil {
		d.p("The stack declares no database.")
		return
	}
	ready := fmt.Sprintf("pg_isready -h %s -p %d -d %s", db.Host, db.Port, db.Name)
	if db.Engine == "mysql" {
		ready = fmt.Sprintf("mysqladmin -h %s -P %d ping", db.Host, db.Port)
	}
	switch {
	case db.Managed && s.Provider == "digitalocean":
		d.p(hf("%s is a DigitalOcean managed cluster. With a standby node, DigitalOcean fails over by itself and %s keeps its name: the apps reconnect. Read replicas are separate clusters with their own names; promoting one makes it a new primary.", code(db.Host), code(db.Host)))
		d.step("Check the cluster and its replicas.", "doctl databases list", "doctl databases replica list <cluster-id>")
	case db.Managed && s.Provider == "aws":
		d.p("An Aurora cluster fails over to a replica by itself; the cluster endpoint follows the new writer.")
		d.step("Force a failover (for a test, or when the writer is degraded).", "aws rds failover-db-cluster --db-cluster-identifier <cluster-id>")
	case db.Managed:
		d.p("The database is managed by the provider: fail it over with the provider's tools.")
	}
	if len(db.Replicas) == 0 {
		if !db.Managed {
			d.p(hf("The stack declares no replica of %s: there is nothing to fail over to. Restore from backup to a new server and change database.host.", code(db.Host)))
		}
		return
	}
	r := db.Replicas[0]
	d.sub("promote-replica", "Promote "+r)
	switch {
	case db.Managed && s.Provider == "digitalocean":
		d.step("Promote the replica to a standalone primary.", "doctl databases replica promote <cluster-id> <replica-name>")
	case db.Engine == "postgresql":
		d.step(hf("Stop the old primary if it still runs (two primaries split the data), then promote the replica on %s.", code(r)),
			"systemctl stop postgresql", `sudo -u postgres psql -c 'SELECT pg_promote();'`)
	case db.Engine == "mysql":
		d.step(hf("Stop the old primary if it still runs, then make %s writable.", code(r)),
			`mysql -e 'STOP REPLICA; RESET REPLICA ALL; SET GLOBAL read_only = OFF;'`)
	}
	last := len(db.Replicas) == 1
	p := previewSettings(sc, []string{"database"}, func(c *schema.Stack) {
		c.Database.Host = r
		c.Database.Replicas = c.Database.Replicas[1:]
		if last {
			// No replica is left to pool reads for (db-option).
			c.Database.ReplicaPoolSize, c.Database.ReplicaMaxOverflow, c.Database.ReplicaMaxConnections = 0, 0, 0
			c.Positions = maps.Clone(c.Positions)
			for p := range c.Positions {
				if strings.HasPrefix(p, "database.replica_") {
					delete(c.Positions, p)
				}
			}
		}
	})
	var also template.HTML
	if last {
		var wrote []string
		for _, f := range []string{"database.replica_pool_size", "database.replica_max_overflow", "database.replica_max_connections"} {
			if s.Wrote(f) {
				wrote = append(wrote, f)
			}
		}
		if len(wrote) > 0 {
			var cs []string
			for _, f := range wrote {
				cs = append(cs, string(code(f)))
			}
			also = template.HTML(" With no replica left, also remove " + joinAnd(cs) + ".")
		}
	}
	// The address is in the rendered settings.env, which push (or each
	// host's apply) delivers with a restart of every process that reads
	// it: a process reads its environment only at start (a reload keeps
	// the old one).
	var checks []string
	var who []string
	for _, n := range s.HostNames() {
		h := s.Hosts[n]
		units := restartedBySettings(sc, h)
		if len(units) == 0 {
			continue
		}
		who = append(who, n)
		checks = append(checks, "ssh "+h.SSH.User+"@"+h.Address+" systemctl is-active "+strings.Join(units, " "))
	}
	dl := deliveryOf(s)
	dl.deliver(d, from, hf("In %s, make it the primary: set %s to %s and take it out of %s.%s Build, commit and %s.", code(stackFileArg(s)), code("database.host"), code(r), code("database.replicas"), also, dl.verb),
		changedHosts(s, p, nil), nil, "hacompile build")
	if len(checks) > 0 {
		how := "The push delivers the new address in %s to %s and restarts the processes that read it there (the app, and Celery on worker hosts: a process reads its environment only when it starts, so a reload would keep the old primary), app hosts in batches. Check each is running again:"
		if dl.pulls {
			how = "The applies deliver the new address in %s to %s and restart the processes that read it there (the app, and Celery on worker hosts: a process reads its environment only when it starts, so a reload would keep the old primary), each host on its own timer, not in batches. Check each is running again:"
		}
		d.step(hf(how, code("/"+settingsPaths(s)), hostLinksNames(s, from, who)), checks...)
	}
	d.step("Check the new primary accepts connections and is not in recovery.",
		strings.Replace(ready, db.Host, r, 1))
	d.p(hf("What the build changes, from a render with %s as the primary:", code(r)))
	previewTable(d, sc, from, p)
}

// restartedBySettings are the units the push of h's settings.env
// restarts, read off its rendered reload action.
func restartedBySettings(sc *stackCtx, h *schema.Host) []string {
	// Each app's settings.env on the host (one, but with several apps).
	var units []string
	for _, f := range sc.byHost[h.Name] {
		if !slices.ContainsFunc(sc.s.Apps, func(a *schema.App) bool { return f.Path == appenv.Path(a) }) {
			continue
		}
		for _, o := range f.Reload.Ops() {
			if a := o.Args(); len(a) > 2 && a[0] == "systemctl" && a[1] == "restart" {
				units = append(units, a[2:]...)
			}
		}
	}
	return units
}

// certbotRE finds certbot in a first-boot command; an app host's runs
// in a subshell beside the first certificate's nginx, whose closing
// parenthesis is not certbot's.
var certbotRE = regexp.MustCompile(`certbot certonly [^)]*`)

func certificates(d *doc, sc *stackCtx, from string) {
	s := sc.s
	if !s.TLS.Enabled() {
		d.p("tls.mode is none: the stack serves plain HTTP and has no certificate.")
		return
	}
	if s.TLS.Mode == "cloud" {
		d.p(hf("tls.mode is cloud: the %s terminates TLS with a certificate the provider holds; no host of the stack has a certificate or key.", balancerName(s.Balancer, s.Provider)))
		switch s.Provider {
		case "aws":
			d.step("ACM renews the certificates it issued (DNS-validated) by itself. Check its status and expiry.",
				"aws acm list-certificates --certificate-statuses ISSUED", "aws acm describe-certificate --certificate-arn <certificate-arn> --query 'Certificate.[Status,NotAfter,RenewalSummary]'")
		case "digitalocean":
			d.step("DigitalOcean renews Let's Encrypt certificates it manages; a custom certificate is replaced by uploading a new one and pointing the load balancer at it.",
				"doctl compute certificate list", "doctl compute certificate create --type custom --name "+s.Name+"-<date> --leaf-certificate-path fullchain.pem --private-key-path privkey.pem")
		}
		d.step(hf("Check the expiry as clients see it."), fmt.Sprintf("echo | openssl s_client -connect %s:443 -servername %s 2>/dev/null | openssl x509 -noout -enddate -subject", s.Domain, s.Domain))
		return
	}
	var term []*schema.Host
	if s.TLS.Terminate == "balancer" {
		term = s.HostsWithRole("lb")
	} else {
		term = s.HostsWithRole("app")
	}
	where := "the cloud balancer"
	if len(term) > 0 {
		where = string(hostLinks(s, from, term))
	}
	d.p(hf("TLS terminates on %s (Mozilla %s profile). Certificate %s, key %s.", template.HTML(where), s.TLS.Profile, code(s.TLS.Certificate), code(s.TLS.Key)))
	// The files that read the certificate, and what reloads them.
	var refs []template.HTML
	type mentions struct{ cert, haproxyCerts bool }
	seen := map[[sha256.Size]byte]mentions{}
	for i, f := range sc.r.Files {
		if f.Host == "" {
			continue
		}
		m := byContent(sc, seen, i, func() mentions {
			return mentions{
				cert:         s.TLS.Certificate != "" && bytes.Contains(f.Content, []byte(s.TLS.Certificate)),
				haproxyCerts: bytes.Contains(f.Content, []byte("/etc/haproxy/certs/")),
			}
		})
		if m.cert || m.haproxyCerts && f.Kind == (haproxy.Gen{}).Kind() && strings.HasSuffix(f.Path, ".cfg") {
			refs = append(refs, hf(`<a href="%s">%s</a> on %s (validate %s, reload %s)`, rel(from, sc.fileHref(f)), hostPath(f), f.Host, code(cmpOr(f.Validate.String(), "—")), code(cmpOr(f.Reload.String(), "—"))))
		}
	}
	if s.TLS.Mode == "files" {
		d.p("tls.mode is files: the certificate and key are provisioned on each host, never rendered.")
		var cmds []string
		for _, h := range term {
			cmds = append(cmds,
				fmt.Sprintf("scp fullchain.pem %s@%s:%s", h.SSH.User, h.Address, s.TLS.Certificate),
				fmt.Sprintf("scp privkey.pem %s@%s:%s", h.SSH.User, h.Address, s.TLS.Key),
				fmt.Sprintf("ssh %s@%s 'chown root:root %s %s && chmod 0644 %s && chmod 0600 %s'", h.SSH.User, h.Address, s.TLS.Certificate, s.TLS.Key, s.TLS.Certificate, s.TLS.Key))
		}
		d.step("Copy the new chain and key to every terminating host: the key 0600 root:root.", cmds...)
		d.step("Then validate and reload what reads them:")
		d.ul(refs...)
		return
	}
	// certbot: quote the issuance command each host's cloud-init runs.
	webroot := false
	d.p(hf("tls.mode is certbot: each terminating host gets its own Let's Encrypt certificate; Debian's %s runs %s twice a day and renews within 30 days of expiry.", code("certbot.timer"), code("certbot renew")))
	for _, h := range term {
		if _, ok := sc.stackFile("cloud-init/" + h.Name + ".yaml"); !ok {
			continue
		}
		for _, c := range cloudinit.RunCmd(s, h, sc.byHost[h.Name], sc.r.Set.Generators) {
			if m := certbotRE.FindString(c); m != "" {
				d.step(hf("First issuance on %s, as its cloud-init runs it (certbot stores the hooks for renewals):", hostLink(s, from, h.Name)), m)
				if strings.Contains(c, "nginx -c /"+nginx.ACMEConfPath) {
					webroot = true
				}
			}
		}
	}
	if webroot {
		d.p(hf("On the app hosts nginx.conf cannot start before the certificate exists, so cloud-init first starts %s, which serves the ACME webroot %s on port %d (and relays the tokens it lacks to the other app hosts), runs certbot with %s, then stops it and starts nginx. Renewals use the same webroot through nginx's own port-%d server, with nginx running; the deploy hook reloads it.",
			code("nginx -c /"+nginx.ACMEConfPath), code(s.TLS.ACMERoot), s.App.HTTPPort, code("--webroot"), s.App.HTTPPort))
		// A host provisioned before, with certbot --standalone, renews
		// the way its renewal configuration says: standalone, with
		// nginx stopped. One command switches it to the webroot.
		switchCmd := fmt.Sprintf("certbot reconfigure --cert-name %s --webroot -w %s --deploy-hook 'systemctl try-reload-or-restart nginx'", artifact.ShellQuote(s.Domain), artifact.ShellQuote(s.TLS.ACMERoot))
		if osrelease.MustLookup(s.OS).Name == "debian-12" {
			// Debian 12's certbot (2.1) has no reconfigure: a renewal
			// by the webroot stores it.
			switchCmd = fmt.Sprintf("certbot certonly --webroot -w %s --cert-name %s --force-renewal --deploy-hook 'systemctl try-reload-or-restart nginx'", artifact.ShellQuote(s.TLS.ACMERoot), artifact.ShellQuote(s.Domain))
			for _, dn := range append([]string{s.Domain}, s.Aliases...) {
				switchCmd += " -d " + artifact.ShellQuote(dn)
			}
		}
		d.step(hf("An app host that got its certificate with %s (provisioned before this configuration) renews that way, stopping nginx, and behind a balancer that sends the PROXY protocol it fails. Switch it to the webroot once, with nginx running, and check that %s says webroot:", code("certbot certonly --standalone"), code("/etc/letsencrypt/renewal/"+s.Domain+".conf")),
			switchCmd, "grep -E '^(authenticator|webroot_path)' /etc/letsencrypt/renewal/"+s.Domain+".conf", "certbot renew --dry-run --cert-name "+s.Domain)
	}
	var hooks []template.HTML
	for _, f := range sc.r.Files {
		if strings.Contains(f.Path, "letsencrypt/renewal-hooks/") && f.Host != "" {
			hooks = append(hooks, hf(`<a href="%s">%s</a> on %s`, rel(from, sc.fileHref(f)), hostPath(f), f.Host))
		}
	}
	if len(hooks) > 0 {
		d.p("After every renewal certbot runs the rendered deploy hook, which builds HAProxy's PEM (chain + key), checks the key matches, and reloads HAProxy:")
		d.ul(hooks...)
	}
	d.step("Test renewal without touching the live certificate.", "certbot renew --dry-run")
	d.step(hf("Check the expiry, on the host and as clients see it."),
		"openssl x509 -noout -enddate -in "+s.TLS.Certificate,
		fmt.Sprintf("echo | openssl s_client -connect %s:443 -servername %s 2>/dev/null | openssl x509 -noout -enddate -subject", s.Domain, s.Domain))
	d.step("Rotate now (a key compromise, a changed name): renew by force on each terminating host, one at a time.",
		"certbot renew --cert-name "+s.Domain+" --force-renewal")
	if hasACMERelay(sc) {
		what := "balancer"
		if webroot {
			what = "app host"
		}
		d.note(template.HTML("An ACME challenge may reach any " + what + ": the rendered configs pass a challenge a host cannot answer to the others, so each host's certbot succeeds whichever host the validation request reaches."))
	}
	if len(refs) > 0 {
		d.p("Files that read the certificate:")
		d.ul(refs...)
	}
}

func hasACMERelay(sc *stackCtx) bool {
	return artifact.FactsOf(sc.r.Set.Generators, sc.s, sc.r.Files).RelaysACME
}

// byContent is compute's result for r.Files[i], computed once per distinct content
// (by the manifest's sha256) and kept in memo: the scans over every
// host's files look once at a file the whole fleet carries.
func byContent[T any](sc *stackCtx, memo map[[sha256.Size]byte]T, i int, compute func() T) T {
	sum, _ := sc.files.Sum(i)
	v, ok := memo[sum]
	if !ok {
		v = compute()
		memo[sum] = v
	}
	return v
}

// appendOnce appends host to hosts unless it is already the last: the
// procedures visit hosts in order, each host's files together.
func appendOnce(hosts []string, host string) []string {
	if len(hosts) > 0 && hosts[len(hosts)-1] == host {
		return hosts
	}
	return append(hosts, host)
}

var envFileRE = regexp.MustCompile(`^EnvironmentFile=-?(\S+)`)

func secrets(d *doc, sc *stackCtx, from string) {
	s := sc.s
	d.p("Secrets never go into the stack or out/ (the secret-inline rule fails the build). Rendered units read them from environment files provisioned on each host, mode 0600 root:root: systemd reads them as root before it starts the service.")
	// An Auto Scaling group's instances fetch theirs at boot: nothing
	// is provisioned on them by hand.
	skip := ""
	if t := s.ScalingTemplateHost(); t != nil {
		skip = t.Name
		instanceSecrets(d, sc, from)
	}
	type env struct {
		path      string
		hosts     []string
		refs      []template.HTML
		units     []string
		unitHosts map[string][]string
		vars      string
	}
	var envs []*env
	get := func(p string) *env {
		for _, e := range envs {
			if e.path == p {
				return e
			}
		}
		e := &env{path: p, unitHosts: map[string][]string{}}
		envs = append(envs, e)
		return e
	}
	envFiles := map[[sha256.Size]byte][]string{} // EnvironmentFile paths
	for _, n := range s.HostNames() {
		if n == skip {
			continue
		}
		for j, f := range sc.byHost[n] {
			if f.Kind != (systemd.Gen{}).Kind() && !strings.Contains(f.Path, "systemd/") {
				continue
			}
			paths := byContent(sc, envFiles, sc.fileIdx[n][j], func() (paths []string) {
				for _, l := range directives(f.Content, envFileRE) {
					paths = append(paths, envFileRE.FindStringSubmatch(l)[1])
				}
				return paths
			})
			for _, p := range paths {
				if _, ok := sc.anchors[n][strings.TrimPrefix(p, "/")]; ok {
					continue // settings hacompile renders, not secrets
				}
				e := get(p)
				e.hosts = appendOnce(e.hosts, n)
				unit := unitOf(f.Path)
				if !slices.Contains(e.units, unit) {
					e.units = append(e.units, unit)
					e.refs = append(e.refs, hf(`<a href="%s">%s</a>`, rel(from, sc.fileHref(f)), hostPath(f)))
				}
				e.unitHosts[unit] = appendOnce(e.unitHosts[unit], n)
			}
		}
	}
	for _, e := range envs {
		switch e.path {
		case s.App.EnvironmentFile:
			e.vars = "the secrets the app reads from its environment (API keys, session keys, any credential the rendered settings do not name a password file for)"
		case s.Balancer.EnvironmentFile:
			e.vars = "HAPROXY_STATS_PASSWORD (the stats page's password; with it unset the page refuses every request)"
		default:
			e.vars = "see the unit"
		}
	}
	var rows [][]template.HTML
	for _, e := range envs {
		rows = append(rows, []template.HTML{code(e.path), hostLinksNames(s, from, e.hosts), code("0600 root:root"), text(e.vars), template.HTML(strings.Join(toStrings(e.refs), ", "))})
	}
	if len(rows) > 0 {
		d.table([]string{"File", "Hosts", "Mode", "Holds", "Read by"}, rows)
	}
	for _, e := range envs {
		d.sub(anchor("secret-", e.path), e.path)
		dir := e.path[:strings.LastIndex(e.path, "/")]
		if e.path == s.Balancer.EnvironmentFile {
			d.step(hf("On each of %s, write a new random password into the file, readable by root only.", hostLinksNames(s, from, e.hosts)),
				"install -d -m 0755 -o root -g root "+dir,
				fmt.Sprintf("umask 077; printf 'HAPROXY_STATS_PASSWORD=%%s\\n' \"$(openssl rand -base64 24)\" > %s", e.path),
				"chown root:root "+e.path+" && chmod 0600 "+e.path)
		} else {
			d.step(hf("On each of %s, create the file readable by root only, then write the variables into it (NAME=value lines).", hostLinksNames(s, from, e.hosts)),
				"install -d -m 0755 -o root -g root "+dir,
				"install -m 0600 -o root -g root /dev/null "+e.path,
				"${EDITOR:-vi} "+e.path)
		}
		d.step("Check the mode and owner.", "stat -c '%a %U:%G %n' "+e.path)
		for _, u := range e.units {
			d.step(hf("A service reads its environment when it starts, not on reload: restart %s on %s, one host at a time.", code(u), hostLinksNames(s, from, e.unitHosts[u])), "systemctl restart "+u)
		}
	}
	secretFiles(d, sc, from, skip)
	if s.TLS.Mode == "files" {
		d.p(hf("The TLS key %s is a secret too: see <a href=\"#certificates\">Certificates</a>.", code(s.TLS.Key)))
	}
}

// instanceSecrets is how the secrets reach an Auto Scaling group's
// instances: SSM parameters each instance reads at boot
// (scaling.secrets), which the operator creates and rotates.
func instanceSecrets(d *doc, sc *stackCtx, from string) {
	s := sc.s
	sc2 := s.Scaling
	t := s.ScalingTemplateHost()
	need, err := instance.Needed(s)
	if err != nil || len(sc2.Secrets) == 0 {
		return
	}
	d.sub("secret-instances", "Instances of the Auto Scaling group")
	d.p(hf("Nobody provisions an instance the group launched: at every boot %s reads each file below from its Systems Manager parameter (a SecureString, with the instance profile%s) before %s starts. A missing or unreadable parameter keeps the app from starting, and the group's health check replaces the instance.",
		code(instance.Unit(&s.App)), profileNote(sc2.InstanceProfile), code(s.App.Name+".service")))
	var rows [][]template.HTML
	for _, p := range slices.Sorted(maps.Keys(sc2.Secrets)) {
		rows = append(rows, []template.HTML{code(p), code(sc2.Secrets[p]), code("0600 " + need[p] + ":root")})
	}
	d.table([]string{"File on " + t.Name, "SSM parameter", "Mode"}, rows)
	var puts []string
	for _, p := range slices.Sorted(maps.Keys(sc2.Secrets)) {
		puts = append(puts, fmt.Sprintf("aws ssm put-parameter --region %s --type SecureString --overwrite --name %s --value \"$(cat)\"", s.Region, sc2.Secrets[p]))
	}
	d.step("Create or change each parameter from a machine with the rights to (paste the value, then Ctrl-D; an environment file's value is its NAME=value lines):", puts...)
	var names []string
	for _, p := range slices.Sorted(maps.Keys(sc2.Secrets)) {
		names = append(names, sc2.Secrets[p])
	}
	d.step(hf("The instance profile%s needs ssm:GetParameter on these parameters (and kms:Decrypt on their key), nothing more. Check that one is there:", profileNote(sc2.InstanceProfile)),
		fmt.Sprintf("aws ssm get-parameter --region %s --with-decryption --name %s --query Parameter.Version", s.Region, names[0]))
	d.step("An instance reads the parameters when it boots: after a change, replace the instances, keeping most in service.",
		fmt.Sprintf("aws autoscaling start-instance-refresh --auto-scaling-group-name %s --preferences '{\"MinHealthyPercentage\": 90}'", s.Name))
}

func profileNote(p string) string {
	if p == "" {
		return ""
	}
	return " " + p
}

var stdinInstallRE = regexp.MustCompile(`install\s.*/dev/stdin\s+(/\S+)`)

// secretFiles quotes the provisioning commands that rendered files
// give in their comments for the password files they name.
func secretFiles(d *doc, sc *stackCtx, from, skip string) {
	s := sc.s
	type secret struct {
		cmd, why string
		hosts    []string
		file     artifact.File
	}
	var list []*secret
	cmds := map[[sha256.Size]byte][]provision{} // commands quoted in comments
	for _, n := range s.HostNames() {
		if n == skip {
			continue
		}
		for j, f := range sc.byHost[n] {
			found := byContent(sc, cmds, sc.fileIdx[n][j], func() []provision { return provisionCommands(f.Content) })
			for _, m := range found {
				i := slices.IndexFunc(list, func(x *secret) bool { return x.cmd == m.cmd })
				if i < 0 {
					list = append(list, &secret{cmd: m.cmd, why: m.why, file: f})
					i = len(list) - 1
				}
				list[i].hosts = appendOnce(list[i].hosts, n)
			}
		}
	}
	if len(list) == 0 {
		return
	}
	d.sub("secret-files", "Password files")
	d.p("The rendered settings name each password by a file on the host, which the service reads; the files' own comments give the command that provisions one, quoted here with what they say about it (where the command reads the terminal, paste the secret, then Ctrl-D):")
	for _, x := range list {
		why := ""
		if x.why != "" {
			why = " " + x.why
		}
		cmds := []string{x.cmd}
		if strings.Contains(x.cmd, `"$PASSWORD"`) {
			// The command reads the password from a variable: read it
			// from the terminal first, echoing nothing.
			cmds = []string{"read -rs PASSWORD", x.cmd, "unset PASSWORD"}
		}
		d.step(hf("On %s, as %s says:%s", hostLinksNames(s, from, x.hosts), template.HTML(fmt.Sprintf(`<a href="%s">%s</a>`, template.HTMLEscapeString(rel(from, sc.fileHref(x.file))), template.HTMLEscapeString(hostPath(x.file)))), why), cmds...)
	}
}

// provision is a command a rendered file's comment gives for writing a
// secret file, with the comment's words before it.
type provision struct{ cmd, why string }

// provisionCommands finds the commands in a file's comments that write
// a file from standard input (… install … /dev/stdin FILE), each whole:
// a command continued over comment lines ending in \ is joined, and one
// that builds the file from others (… | install …) is quoted with its
// first part. The comment's sentences just before it say what to give it.
func provisionCommands(content []byte) []provision {
	// Every command quoted names /dev/stdin (stdinInstallRE): a file
	// without it has none, as most of a fleet's files do.
	if !bytes.Contains(content, []byte("/dev/stdin")) {
		return nil
	}
	var out []provision
	var para []string // the comment paragraph so far
	var cont string   // a command continued from the lines before
	for l := range bytes.Lines(content) {
		// Only a comment line is made a string.
		lt := bytes.TrimSpace(l)
		if len(lt) == 0 || lt[0] != '#' {
			para, cont = nil, ""
			continue
		}
		t := strings.TrimSpace(string(lt[1:]))
		if t == "" {
			para, cont = nil, ""
			continue
		}
		if cont != "" {
			t = cont + " " + t
			cont = ""
		}
		if rest, ok := strings.CutSuffix(t, "\\"); ok && (strings.HasPrefix(t, "printf ") || strings.Contains(t, "install ") || strings.Contains(t, "|")) {
			cont = strings.TrimSpace(rest)
			continue
		}
		m := stdinInstallRE.FindString(t)
		if m == "" {
			para = append(para, t)
			continue
		}
		if i := strings.Index(t, "| install "); i >= 0 {
			m = t
		}
		m = strings.TrimSpace(strings.TrimLeft(m, "| "))
		why := strings.Join(para, " ")
		// The sentence that introduces the command, not the file's
		// whole story.
		if i := strings.LastIndex(strings.TrimSuffix(why, "."), ". "); i >= 0 {
			why = why[i+2:]
		}
		out = append(out, provision{cmd: m, why: why})
		para = nil
	}
	return out
}

// unitOf is the systemd unit a unit file or drop-in belongs to.
func unitOf(p string) string {
	dir, base := path.Split(p)
	if d := strings.TrimSuffix(dir, "/"); strings.HasSuffix(d, ".d") {
		return strings.TrimSuffix(path.Base(d), ".d")
	}
	return base
}

func toStrings(hs []template.HTML) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = string(h)
	}
	return out
}

func hostLinksNames(s *schema.Stack, from string, names []string) template.HTML {
	var b strings.Builder
	for i, r := range artifact.CompactRuns(names) {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(hostLink(s, from, r.First)))
		if r.Last != r.First {
			b.WriteString("…" + string(hostLink(s, from, r.Last)))
		}
	}
	return template.HTML(b.String())
}

// monitoringAlerts returns the stack's rendered alerting rules.
func monitoringAlerts(sc *stackCtx) (artifact.File, bool) {
	return sc.stackFile(monitoring.AlertsPath)
}

// healthCurls checks a new app host answers the health path: through
// its nginx on the app's port, for each app it runs.
func healthCurls(s *schema.Stack, h *schema.Host) []string {
	if !s.MultiApp() {
		return []string{fmt.Sprintf("%s -H 'Host: %s' http://%s:%d%s", curlHost(s), s.Domain, h.Address, s.App.HTTPPort, s.Balancer.Health.Path)}
	}
	var out []string
	for _, a := range s.AppsOn(h) {
		out = append(out, fmt.Sprintf("%s -H 'Host: %s' http://%s:%d%s", curlHost(s), s.AppDomains(a)[0], h.Address, a.HTTPPort, s.Balancer.Health.Path))
	}
	return out
}

// settingsPaths names the settings file, or with several apps each
// app's.
func settingsPaths(s *schema.Stack) string {
	var ps []string
	for _, a := range s.Apps {
		ps = append(ps, appenv.Path(a))
	}
	return strings.Join(ps, ", /")
}
