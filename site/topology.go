package site

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// The topology diagram: clients → balancer → app hosts and workers →
// database, replicas, cache and queue, laid out in four columns as an
// inline SVG computed here, so it needs no script and prints.

type tnode struct {
	id      string
	col     int
	lines   []string
	href    string // site path, or "" for no link
	title   string // data nodes: what it is, its address and a note
	addr    string
	note    string
	class   string
	standby bool
	x, y, h int
}

type tedge struct {
	from, to string
	label    string // near the target end
	dashed   bool
	bus      bool // app tier → data, drawn through the shared bus
}

// topoEdge is an edge as the text alternative lists it.
type topoEdge struct {
	From, To, Via, Note string
}

// The columns' left edges and widths.
var (
	colX     = [4]int{20, 240, 530, 870}
	colW     = [4]int{130, 180, 230, 240}
	colTitle = [4]string{"Clients", "Balancer", "App tier", "Data"}
)

const (
	topoWidth  = 1130
	busX       = 800
	lineHeight = 16
	nodeGap    = 14
	topMargin  = 44
	maxShown   = 8 // hosts of one role drawn; the rest are summed up
	wrapChars  = 32
)

type topology struct {
	nodes []*tnode
	edges []tedge
}

func (t *topology) add(n *tnode) *tnode {
	n.h = 12 + lineHeight*len(n.lines)
	t.nodes = append(t.nodes, n)
	return n
}

func (t *topology) node(id string) *tnode {
	for _, n := range t.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

// buildTopology derives the diagram's nodes and edges from the stack.
func buildTopology(sc *stackCtx) *topology {
	s := sc.s
	t := &topology{}
	scheme := "HTTP :80"
	if s.TLS.Enabled() {
		scheme = "HTTPS :443"
		if s.TLS.Terminate == "app" {
			scheme = "TCP :443"
		}
	}
	clients := []string{"Clients", s.Domain}
	if v := s.Balancer.VRRP; v != nil {
		// The address the domain resolves to moves between balancers.
		what := "virtual IP"
		if s.Balancer.Failover == "reserved-ip" {
			what = "reserved IP"
		}
		clients = append(clients, "via "+what, v.VirtualAddress)
	}
	t.add(&tnode{id: "clients", col: 0, lines: clients, class: "client"})
	if m := s.Monitoring; m.Enabled {
		lines := []string{"Monitoring", "Prometheus,", "Alertmanager"}
		if m.Address != "" {
			lines = append(lines, m.Address)
		}
		t.add(&tnode{id: "monitoring", col: 0, lines: append(lines, "scrapes every", "host"), class: "monitor"})
	}

	// Balancer column.
	var lbs []string
	if s.Balancer.Kind == "cloud" {
		lines := wrapWords(balancerName(s.Balancer, s.Provider), 20)
		if s.TLS.Enabled() && s.TLS.Terminate == "app" {
			lines = append(lines, "TLS pass-through")
		}
		lines = append(lines, scheme)
		lines = append(lines, wrapWords("health "+s.Balancer.Health.Path+" every "+strconv.Itoa(s.Balancer.Health.Interval)+"s", 24)...)
		t.add(&tnode{id: "lb", col: 1, lines: lines, class: "lb"})
		lbs = []string{"lb"}
		t.edges = append(t.edges, tedge{from: "clients", to: "lb", label: scheme})
	} else {
		hs := s.HostsWithRole("lb")
		for i, h := range hs {
			standby := i > 0 && (s.Balancer.Failover == "reserved-ip" || s.Balancer.Failover == "keepalived")
			role := balancerName(s.Balancer, s.Provider)
			if standby {
				role += " (standby)"
			}
			n := t.add(&tnode{id: "host-" + h.Name, col: 1, lines: []string{h.Name, role, h.Address, scheme}, href: hostPage(s.Name, h.Name), class: "lb", standby: standby})
			lbs = append(lbs, n.id)
			t.edges = append(t.edges, tedge{from: "clients", to: n.id, label: scheme, dashed: standby})
		}
	}

	// App tier.
	per := appConcurrency(s.App)
	var tier []string
	apps := s.HostsWithRole("app")
	port := ":" + strconv.Itoa(s.App.HTTPPort)
	if s.Balancer.Kind == "cloud" && s.TLS.Enabled() && s.TLS.Terminate == "app" {
		port += ",443"
	}
	if sg := s.Scaling; sg != nil {
		tmpl := s.ScalingTemplateHost()
		lines := []string{"Auto Scaling group", fmt.Sprintf("%d–%d instances, desired %d", sg.Min, sg.Max, max(sg.Desired, sg.Min)), "instances" + port}
		lines = append(lines, wrap(strings.Join(sg.InstanceTypes, " "), wrapChars-6)...)
		n := &tnode{id: "asg", col: 2, lines: lines, class: "app"}
		if tmpl != nil {
			n.href = hostPage(s.Name, tmpl.Name)
			n.lines = append(n.lines, fmt.Sprintf("as %s: %d × %s", tmpl.Name, s.App.Workers.For(tmpl), per))
		}
		t.add(n)
		for _, lb := range lbs {
			t.edges = append(t.edges, tedge{from: lb, to: n.id, label: "instances" + port, dashed: t.node(lb).standby})
		}
		tier = append(tier, n.id)
		apps = nil
	}
	for i, h := range apps {
		if i == maxShown {
			n := t.add(&tnode{id: "apps-more", col: 2, lines: []string{fmt.Sprintf("+ %d more app hosts", len(apps)-maxShown), "each on " + port, "see the host inventory"}, class: "app"})
			for _, lb := range lbs {
				t.edges = append(t.edges, tedge{from: lb, to: n.id, label: port, dashed: t.node(lb).standby})
			}
			tier = append(tier, n.id)
			break
		}
		if s.MultiApp() {
			// Each app the host runs, on its own port.
			lines := []string{h.Name, h.Address}
			var ports []string
			for _, a := range s.AppsOn(h) {
				lines = append(lines, fmt.Sprintf("%s · %s :%d", a.Name, serverName(*a), a.HTTPPort), fmt.Sprintf("  %d workers × %s", a.Workers.For(h), appConcurrency(*a)))
				ports = append(ports, strconv.Itoa(a.HTTPPort))
			}
			n := t.add(&tnode{id: "host-" + h.Name, col: 2, lines: lines, href: hostPage(s.Name, h.Name), class: "app"})
			for _, lb := range lbs {
				t.edges = append(t.edges, tedge{from: lb, to: n.id, label: h.Address + ":" + strings.Join(ports, ","), dashed: t.node(lb).standby})
			}
			tier = append(tier, n.id)
			continue
		}
		n := t.add(&tnode{id: "host-" + h.Name, col: 2, lines: []string{h.Name + " · " + serverName(s.App), h.Address + port, fmt.Sprintf("%d workers × %s", s.App.Workers.For(h), per)}, href: hostPage(s.Name, h.Name), class: "app"})
		for _, lb := range lbs {
			t.edges = append(t.edges, tedge{from: lb, to: n.id, label: h.Address + port, dashed: t.node(lb).standby})
		}
		tier = append(tier, n.id)
	}
	workers := s.HostsWithRole("worker")
	for i, h := range workers {
		if h.Has("app") {
			continue
		}
		if i == maxShown {
			tier = append(tier, t.add(&tnode{id: "workers-more", col: 2, lines: []string{fmt.Sprintf("+ %d more workers", len(workers)-maxShown)}, class: "worker"}).id)
			break
		}
		what := "worker"
		if w := s.Workers; w != nil {
			what = fmt.Sprintf("celery %s × %d", w.Pool, w.Concurrency.For(h))
		}
		tier = append(tier, t.add(&tnode{id: "host-" + h.Name, col: 2, lines: []string{h.Name, h.Address, what}, href: hostPage(s.Name, h.Name), class: "worker"}).id)
	}

	// Data column.
	hostAt := func(addr string) *schema.Host {
		for _, n := range s.HostNames() {
			if h := s.Hosts[n]; h.Address == addr {
				return h
			}
		}
		return nil
	}
	data := func(id, class, title, addr, note, host string, port int) {
		n := &tnode{id: id, col: 3, class: class, title: title, addr: addr, note: note}
		n.lines = []string{title}
		if h := hostAt(host); h != nil {
			n.href = hostPage(s.Name, h.Name)
			n.lines = append(n.lines, h.Name)
		}
		n.lines = append(n.lines, wrap(addr, wrapChars)...)
		if note != "" {
			n.lines = append(n.lines, note)
		}
		t.add(n)
		for _, a := range tier {
			t.edges = append(t.edges, tedge{from: a, to: id, label: ":" + strconv.Itoa(port), bus: true})
		}
	}
	if db := s.Database; db != nil {
		managed := ""
		if db.Managed {
			managed = " (managed)"
		}
		data("db", "db", engineName(db.Engine)+" primary"+managed, fmt.Sprintf("%s:%d", db.Host, db.Port),
			fmt.Sprintf("pool %d + %d per process", db.PoolSize, db.MaxOverflow), db.Host, db.Port)
		for i, r := range db.Replicas {
			note := "no read pool: takes no reads"
			if db.ReplicaPoolSize > 0 {
				note = fmt.Sprintf("read pool %d + %d per process", db.ReplicaPoolSize, db.ReplicaMaxOverflow)
			}
			data(fmt.Sprintf("replica-%d", i), "replica", engineName(db.Engine)+" replica", fmt.Sprintf("%s:%d", r, db.Port), note, r, db.Port)
		}
	}
	if c := s.Cache; c != nil {
		title := engineName(c.Engine) + " cache"
		if c.Managed {
			title += " (managed)"
		}
		host := s.CacheEndpoint()
		data("cache", "cache", title, fmt.Sprintf("%s:%d", host, c.Port), "", host, c.Port)
	}
	if q := s.Queue; q != nil {
		data("queue", "queue", engineName(q.Engine)+" queue", fmt.Sprintf("%s:%d", s.QueueEndpoint(), queuePort(q)), "", s.QueueEndpoint(), queuePort(q))
	}
	for _, h := range s.HostsWithRole("cache") {
		if s.Cache != nil && s.CacheEndpoint() == h.Address {
			continue
		}
		t.add(&tnode{id: "host-" + h.Name, col: 3, lines: []string{h.Name, h.Address, "cache host"}, href: hostPage(s.Name, h.Name), class: "cache"})
	}
	return t
}

// appConcurrency is the per-worker concurrency as the diagram shows it.
func appConcurrency(a schema.App) string {
	switch {
	case a.Runtime == "perl":
		return "1"
	case a.WorkerClass == "gthread":
		return strconv.Itoa(a.Threads) + " threads"
	case a.WorkerClass == "gevent" || a.WorkerClass == "uvicorn":
		return strconv.Itoa(a.WorkerConnections) + " conns"
	}
	return "1"
}

// wrap breaks a long name after dots or dashes so it fits a box.
func wrap(s string, max int) []string {
	var out []string
	for len(s) > max {
		cut := strings.LastIndexAny(s[:max], ".-:")
		if cut <= 0 {
			cut = max - 1
		}
		out = append(out, s[:cut+1])
		s = s[cut+1:]
	}
	return append(out, s)
}

// wrapWords breaks text between words into lines of at most max.
func wrapWords(s string, max int) []string {
	var out []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > max {
			out = append(out, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(out, line)
}

// layout places the nodes column by column, each column centred.
func (t *topology) layout() (height int) {
	var colH [4]int
	for _, n := range t.nodes {
		if colH[n.col] > 0 {
			colH[n.col] += nodeGap
		}
		colH[n.col] += n.h
	}
	maxH := 0
	for _, h := range colH {
		maxH = max(maxH, h)
	}
	var y [4]int
	for i := range y {
		y[i] = topMargin + (maxH-colH[i])/2
	}
	for _, n := range t.nodes {
		n.x, n.y = colX[n.col], y[n.col]
		y[n.col] += n.h + nodeGap
	}
	return topMargin + maxH + 24
}

// svg draws the diagram. from is the page it is embedded in, for links.
func (t *topology) svg(from, title string) template.HTML {
	height := t.layout()
	var b strings.Builder
	e := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="topology" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-labelledby="topology-title">`, topoWidth, height, topoWidth, height)
	fmt.Fprintf(&b, `<title id="topology-title">%s</title>`, e(title))
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>`)
	for i, x := range colX {
		used := false
		for _, n := range t.nodes {
			used = used || n.col == i
		}
		if used {
			fmt.Fprintf(&b, `<text class="col-title" x="%d" y="20">%s</text>`, x, e(colTitle[i]))
		}
	}
	// Edges first, so boxes cover their ends.
	busTop, busBottom := 1<<30, -1
	labelled := map[string]bool{}
	for _, ed := range t.edges {
		a, z := t.node(ed.from), t.node(ed.to)
		if a == nil || z == nil {
			continue
		}
		x1, y1 := a.x+colW[a.col], a.y+a.h/2
		x2, y2 := z.x, z.y+z.h/2
		cls := "edge"
		if ed.dashed {
			cls += " standby"
		}
		if ed.bus {
			busTop, busBottom = min(busTop, y1, y2), max(busBottom, y1, y2)
			if !labelled["from:"+a.id] {
				fmt.Fprintf(&b, `<line class="%s" x1="%d" y1="%d" x2="%d" y2="%d"/>`, cls, x1, y1, busX, y1)
				labelled["from:"+a.id] = true
			}
			if !labelled[z.id] {
				fmt.Fprintf(&b, `<line class="%s" x1="%d" y1="%d" x2="%d" y2="%d" marker-end="url(#arrow)"/>`, cls, busX, y2, x2-2, y2)
				fmt.Fprintf(&b, `<text class="edge-label" x="%d" y="%d" text-anchor="middle">%s</text>`, (busX+x2)/2, y2-5, e(ed.label))
				labelled[z.id] = true
			}
			continue
		}
		// Lines from several balancers meet at a box: what they carry
		// is written in the box (its address and port, or the
		// scheme), where no line crosses it.
		fmt.Fprintf(&b, `<line class="%s" x1="%d" y1="%d" x2="%d" y2="%d" marker-end="url(#arrow)"/>`, cls, x1, y1, x2-2, y2)
	}
	if busBottom >= 0 {
		fmt.Fprintf(&b, `<line class="edge bus" x1="%d" y1="%d" x2="%d" y2="%d"/>`, busX, busTop, busX, busBottom)
	}
	for _, n := range t.nodes {
		cls := "node " + n.class
		if n.standby {
			cls += " standby"
		}
		if n.href != "" {
			fmt.Fprintf(&b, `<a href="%s">`, e(rel(from, n.href)))
		}
		fmt.Fprintf(&b, `<g class="%s"><rect x="%d" y="%d" width="%d" height="%d" rx="6"/>`, cls, n.x, n.y, colW[n.col], n.h)
		for i, l := range n.lines {
			c := "detail"
			if i == 0 {
				c = "name"
			}
			fmt.Fprintf(&b, `<text class="%s" x="%d" y="%d">%s</text>`, c, n.x+10, n.y+6+lineHeight*(i+1)-3, e(l))
		}
		b.WriteString(`</g>`)
		if n.href != "" {
			b.WriteString(`</a>`)
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// connections is the diagram as a table, for screen readers, print and
// search.
func (t *topology) connections(sc *stackCtx) []topoEdge {
	var out []topoEdge
	for _, ed := range t.edges {
		a, z := t.node(ed.from), t.node(ed.to)
		if a == nil || z == nil {
			continue
		}
		e := topoEdge{From: a.lines[0], To: z.lines[0], Via: ed.label, Note: z.note}
		if z.addr != "" {
			e.To = z.title + " " + z.addr
		}
		if ed.dashed {
			e.Note = "standby: takes traffic after a failover (" + sc.s.Balancer.Failover + ")"
		}
		out = append(out, e)
	}
	return out
}
