package site

import (
	"bytes"
	"cmp"
	"fmt"
	"github.com/hacompile/hacompile/generators/osrelease"
	"html/template"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/gunicorn"
	"github.com/hacompile/hacompile/generators/haproxy"
	"github.com/hacompile/hacompile/generators/nginx"
	"github.com/hacompile/hacompile/internal/rules"
	"github.com/hacompile/hacompile/schema"
)

// The stack overview: summary, topology, request path, inventory,
// capacity, cost and the HA review.

type fact struct {
	Label string
	Value template.HTML
}

// setting is one directive quoted from a rendered file.
type setting struct {
	Line     string
	File     string // the file's path on the host
	Host     string
	FileHref string
}

type hop struct {
	ID       string
	Title    string
	Where    template.HTML
	Text     []template.HTML
	Settings []setting
	Values   []fact // stack values, where no file carries them
}

type hostRow struct {
	Name, Href, Address, Size, SSH string
	Roles                          []string
	Cores, MemoryMB, Files         int
	Notes                          bool
}

type capRow struct {
	Host, Href       string
	Workers          int
	PerWorker        string
	Concurrency      int
	Cores            int
	WorkersPerCoreOK bool
}

type limitRow struct {
	What, Path                string
	Need, Limit, Headroom     int
	HeadroomPct               string
	OK                        bool
	Formula, LimitHref, Field string
}

type capacityView struct {
	Rows        []capRow
	Total       int
	Target      int
	TargetHref  string
	Margin      int
	FD          []limitRow
	Backlog     []limitRow
	DB          []limitRow
	Somaxconn   int
	SomaxconnOK bool // set in the stack (else the kernel default)
	Scaling     string
	// AppTargets: with several apps, each app's capacity against its
	// own target (apps.<name>.target_concurrency).
	AppTargets []limitRow
}

type overviewData struct {
	Name, Description string
	Notes             template.HTML
	Facts             []fact
	Topology          template.HTML
	Connections       []topoEdge
	Hops              []hop
	Budget            []template.HTML
	Hosts             []hostRow
	Capacity          capacityView
	Cost              costView
	Review            reviewView
}

func (g *gen) overview(sc *stackCtx) error {
	s := sc.s
	p := stackPage(s.Name, "index.html")
	d := overviewData{Name: s.Name, Description: s.Description, Notes: g.markdown(s.Notes)}
	d.Facts = stackFacts(sc, p)
	t := buildTopology(sc)
	d.Topology = t.svg(p, fmt.Sprintf("Topology of %s: clients, %s, app hosts and data services", s.Name, balancerName(s.Balancer, s.Provider)))
	d.Connections = t.connections(sc)
	d.Hops, d.Budget = requestPath(sc, p)
	tmpl := s.ScalingTemplateHost()
	for _, n := range s.HostNames() {
		h := s.Hosts[n]
		ssh := fmt.Sprintf("%s@%s:%d", h.SSH.User, h.Address, h.SSH.Port)
		if tmpl != nil && tmpl.Name == n {
			// The launch template's placeholder address reaches no
			// instance: its page says how to find one.
			ssh = fmt.Sprintf("%s@<an instance's private address>:%d", h.SSH.User, h.SSH.Port)
		}
		d.Hosts = append(d.Hosts, hostRow{
			Name: n, Href: rel(p, hostPage(s.Name, n)), Address: h.Address, Size: cmpOr(h.Size, "—"),
			SSH: ssh, Roles: h.Roles,
			Cores: h.Cores, MemoryMB: h.MemoryMB, Files: len(sc.byHost[n]), Notes: h.Notes != "",
		})
	}
	d.Capacity = capacityOf(sc, p)
	d.Cost = costOf(s)
	d.Review = reviewOf(sc, p)
	g.indexStack(sc, d)
	return g.write(page{
		Path: p, Title: s.Name, Crumbs: stackCrumbs(s, p)[:1], Tabs: stackTabs(s, p), Footer: footer(s, p),
	}, "overview", d)
}

func code(s string) template.HTML {
	return template.HTML("<code>" + template.HTMLEscapeString(s) + "</code>")
}

// osText names the release a stack targets and the versions that shape
// its rendered files.
func osText(name string) string {
	r, err := osrelease.Lookup(name)
	if err != nil {
		return name
	}
	return fmt.Sprintf("%s (os: %s): nginx %s, HAProxy %s, OpenSSL %s, systemd %s", r.Pretty, r.Name,
		r.Nginx, r.HAProxy, r.OpenSSL, r.Systemd)
}

func text(s string) template.HTML { return template.HTML(template.HTMLEscapeString(s)) }

func stackFacts(sc *stackCtx, from string) []fact {
	s := sc.s
	fs := []fact{
		{"Provider", text(s.Provider + regionSuffix(s.Region))},
		{"Operating system", text(osText(s.OS))},
		{"Domain", code(strings.Join(append([]string{s.Domain}, s.Aliases...), " "))},
	}
	tls := "none: plain HTTP"
	if s.TLS.Enabled() {
		tls = fmt.Sprintf("%s (Mozilla %s), terminated on the %s", s.TLS.Mode, s.TLS.Profile, map[string]string{"balancer": "balancer", "app": "app hosts"}[s.TLS.Terminate])
		if s.TLS.HSTS {
			tls += fmt.Sprintf(", HSTS max-age %d", s.TLS.HSTSMaxAge)
		}
	}
	fs = append(fs, fact{"TLS", text(tls)})
	b := balancerName(s.Balancer, s.Provider)
	if s.Balancer.Kind != "cloud" {
		b += fmt.Sprintf(", %s, failover %s", s.Balancer.Algorithm, s.Balancer.Failover)
	}
	fs = append(fs, fact{"Balancer", text(b)})
	if s.MultiApp() {
		for _, a := range s.Apps {
			var hs []string
			for _, h := range s.AppHosts(a) {
				hs = append(hs, h.Name)
			}
			fs = append(fs, fact{"App " + a.Name, text(fmt.Sprintf("%s on %s (%s), answering %s%s", serverName(*a), bindText(*a),
				strings.Join(hs, ", "), strings.Join(s.AppDomains(a), ", "), pathsText(a)))})
		}
	} else {
		app := fmt.Sprintf("%s (%s) on %s", s.App.Name, serverName(s.App), bindText(s.App))
		fs = append(fs, fact{"App", text(app)})
	}
	if db := s.Database; db != nil {
		fs = append(fs, fact{"Database", text(fmt.Sprintf("%s %s, %s", engineName(db.Engine), db.Name, plural(len(db.Replicas), "replica", "replicas")))})
	}
	if c := s.Cache; c != nil {
		fs = append(fs, fact{"Cache", text(engineName(c.Engine) + " " + c.Host)})
	}
	if q := s.Queue; q != nil {
		fs = append(fs, fact{"Queue", text(engineName(q.Engine) + " " + s.QueueEndpoint())})
	}
	fs = append(fs, fact{"Source", template.HTML(fmt.Sprintf(`<a href="%s">%s</a>`,
		template.HTMLEscapeString(rel(from, stackPage(s.Name, "source.html"))), template.HTMLEscapeString(s.Source)))})
	return fs
}

func regionSuffix(r string) string {
	if r == "" {
		return ""
	}
	return ", " + r
}

var (
	nginxTimeoutRE   = regexp.MustCompile(`^(proxy_(connect|read|send)_timeout|keepalive_timeout|client_(body|header)_timeout|send_timeout|proxy_next_upstream(_tries)?)\s`)
	haproxyTimeoutRE = regexp.MustCompile(`^(timeout\s|retries\s|option redispatch)`)
	gunicornRE       = regexp.MustCompile(`^(timeout|graceful_timeout|keepalive|backlog|workers|threads|worker_class|worker_connections|max_requests)\s*=`)
	starmanRE        = regexp.MustCompile(`^(ExecStart=|TimeoutStopSec=)`)
	lbConfRE         = regexp.MustCompile(`^etc/nginx/(nginx\.conf|conf\.d/.*\.conf)$`)
	haproxyCfgRE     = regexp.MustCompile(`^etc/haproxy/haproxy\.cfg$`)
	gunicornConfRE   = regexp.MustCompile(`gunicorn\.conf\.py$`)
	proxyReadRE      = regexp.MustCompile(`^proxy_read_timeout\s+(\d+)s;`)
)

var acmeRE = regexp.MustCompile(`acme`)

// settingsOf quotes the matching directives of files, with links.
func settingsOf(sc *stackCtx, from string, files []artifact.File, re *regexp.Regexp) []setting {
	var out []setting
	for _, f := range files {
		ls := directives(f.Content, re)
		switch f.Kind {
		case (nginx.Gen{}).Kind():
			ls = nginxDirectives(f.Content, re, acmeRE)
		case (haproxy.Gen{}).Kind():
			ls = haproxyDirectives(f.Content, re, acmeRE)
		}
		for _, l := range ls {
			out = append(out, setting{Line: l, File: hostPath(f), Host: f.Host, FileHref: rel(from, sc.fileHref(f))})
		}
	}
	return out
}

// appUnit returns the app's systemd unit on host.
func (sc *stackCtx) appUnit(host string) []artifact.File {
	return sc.find(host, regexp.MustCompile(`^etc/systemd/system/`+regexp.QuoteMeta(sc.s.App.Name)+`\.service$`))
}

// requestPath walks a request from the client to the data services,
// quoting the timeouts each hop is rendered with.
func requestPath(sc *stackCtx, from string) ([]hop, []template.HTML) {
	s := sc.s
	var hops []hop
	lbs := s.HostsWithRole("lb")
	apps := s.HostsWithRole("app")
	lbNames := schema.HostNamesOf(lbs)

	// 1. Name resolution and the entry address.
	entry := hop{ID: "hop-dns", Title: "Client → entry address"}
	names := code(strings.Join(append([]string{s.Domain}, s.Aliases...), ", "))
	switch {
	case s.Balancer.Kind == "cloud":
		entry.Text = append(entry.Text, template.HTML(fmt.Sprintf("%s resolve to the public address of the %s, which the provider keeps available.", names, template.HTMLEscapeString(balancerName(s.Balancer, s.Provider)))))
	case s.Balancer.Failover == "reserved-ip":
		entry.Text = append(entry.Text, template.HTML(fmt.Sprintf("%s resolve to a reserved (floating) IP assigned to %s; a failover moves it to %s.", names, template.HTMLEscapeString(lbNames[0]), template.HTMLEscapeString(strings.Join(lbNames[1:], ", ")))))
	case s.Balancer.Failover == "keepalived":
		entry.Text = append(entry.Text, template.HTML(fmt.Sprintf("%s resolve to the virtual address keepalived holds on one of %s.", names, template.HTMLEscapeString(strings.Join(lbNames, ", ")))))
	case s.Balancer.Failover == "dns":
		entry.Text = append(entry.Text, template.HTML(fmt.Sprintf("%s resolve to every balancer's public address (%s); clients retry another when one fails.", names, template.HTMLEscapeString(strings.Join(lbNames, ", ")))))
	default:
		entry.Text = append(entry.Text, template.HTML(fmt.Sprintf("%s resolve to the public address of %s.", names, template.HTMLEscapeString(strings.Join(lbNames, ", ")))))
	}
	hops = append(hops, entry)

	// 2. The balancer.
	bal := hop{ID: "hop-balancer", Title: "Balancer: " + balancerName(s.Balancer, s.Provider)}
	if len(lbs) > 0 {
		bal.Where = hostLinks(s, from, lbs)
	}
	switch {
	case !s.TLS.Enabled():
		bal.Text = append(bal.Text, "Plain HTTP on port 80.")
	case s.TLS.Mode == "cloud":
		bal.Text = append(bal.Text, "TLS terminates here, with a certificate the provider holds; the balancer's listeners are configured at the provider.")
	case s.TLS.Terminate == "balancer":
		bal.Text = append(bal.Text, template.HTML(fmt.Sprintf("TLS terminates here (Mozilla %s profile, certificate by %s). Port 80 redirects to HTTPS, except ACME challenges.", template.HTMLEscapeString(s.TLS.Profile), template.HTMLEscapeString(s.TLS.Mode))))
	default:
		bal.Text = append(bal.Text, "Port 443 is passed through as TCP: TLS terminates on the app hosts' nginx. Port 80 goes to the app hosts too (redirects and ACME challenges).")
	}
	h := s.Balancer.Health
	alg := s.Balancer.Algorithm
	if s.Balancer.Kind == "cloud" {
		alg = "the provider's algorithm"
	}
	if s.MultiApp() {
		var routes []string
		for _, a := range s.Apps {
			routes = append(routes, fmt.Sprintf("%s%s to %s (%s, port %d)", strings.Join(s.AppDomains(a), ", "), pathsText(a), a.Name, plural(len(s.AppHosts(a)), "host", "hosts"), a.HTTPPort))
		}
		bal.Text = append(bal.Text, template.HTML(template.HTMLEscapeString("Routes by host name and path, a backend per app: "+strings.Join(routes, "; ")+".")))
		bal.Text = append(bal.Text, template.HTML(fmt.Sprintf(
			"Spreads each app's requests with %s over its hosts.", template.HTMLEscapeString(alg))))
	} else {
		bal.Text = append(bal.Text, template.HTML(fmt.Sprintf(
			"Spreads requests with %s over %s on port %d.",
			template.HTMLEscapeString(alg), plural(len(apps), "app host", "app hosts"), s.App.HTTPPort)))
	}
	perApp := ""
	if s.MultiApp() {
		perApp = ", per app with its own host name"
	}
	switch s.Balancer.Kind {
	case "nginx":
		// nginx has no active checks: it judges a host by the answers
		// to live requests (max_fails within fail_timeout).
		bal.Text = append(bal.Text, template.HTML(fmt.Sprintf(
			"No active health check: nginx judges each host by its answers to live requests. A host failing %d times within %d s is skipped for %d s, then tried again with one request.",
			s.Balancer.MaxFails, s.Balancer.FailTimeout, s.Balancer.FailTimeout)))
	default:
		bal.Text = append(bal.Text, template.HTML(fmt.Sprintf(
			"Health check%s: GET %s every %d s, timeout %s; %d failures take a host out (about %d s), %d successes bring it back.",
			perApp, code(h.Path), h.Interval, h.Timeout, h.Fall, h.Fall*h.Interval, h.Rise)))
	}
	switch s.Balancer.Kind {
	case "nginx":
		if len(lbs) > 0 {
			bal.Settings = settingsOf(sc, from, sc.find(lbs[0].Name, lbConfRE), nginxTimeoutRE)
		}
	case "haproxy":
		if len(lbs) > 0 {
			bal.Settings = settingsOf(sc, from, sc.find(lbs[0].Name, haproxyCfgRE), haproxyTimeoutRE)
		}
	default:
		t := s.Balancer.Timeouts
		bal.Values = []fact{
			{"balancer.timeouts.connect", text(strconv.Itoa(t.Connect) + " s")},
			{"balancer.timeouts.read", text(strconv.Itoa(t.Read) + " s")},
			{"balancer.timeouts.send", text(strconv.Itoa(t.Send) + " s")},
		}
		bal.Text = append(bal.Text, "The cloud balancer is configured at the provider; its idle timeout should be at least balancer.timeouts.read.")
	}
	hops = append(hops, bal)

	// 3. nginx on the app host (each app's, with several).
	whole := s
	for _, app := range whole.Apps {
		s := whole.ForApp(app)
		apps := s.HostsWithRole("app")
		if len(apps) == 0 {
			continue
		}
		suffix, of := "", ""
		if whole.MultiApp() {
			suffix, of = "-"+app.Name, " ("+app.Name+")"
		}
		a := apps[0]
		ng := hop{ID: "hop-app-nginx" + suffix, Title: "App host: nginx" + of, Where: hostLinks(s, from, apps)}
		listen := fmt.Sprintf("%s:%d", a.Address, s.App.HTTPPort)
		if s.TLS.Enabled() && s.TLS.Terminate == "app" {
			listen += " and :443 (TLS)"
		}
		ng.Text = append(ng.Text, template.HTML(fmt.Sprintf("Listens on %s (shown for %s; the others differ only in their address).", code(listen), template.HTMLEscapeString(a.Name))))
		for _, st := range s.App.Static {
			ng.Text = append(ng.Text, template.HTML(fmt.Sprintf("Serves %s from %s itself (expires %s).", code(st.URL), code(st.Dir), template.HTMLEscapeString(st.Expires))))
		}
		ng.Text = append(ng.Text, template.HTML(fmt.Sprintf("Proxies everything else to the app server on %s.", code(bindText(s.App)))))
		ng.Settings = settingsOf(sc, from, sc.find(a.Name, regexp.MustCompile(`^etc/nginx/(nginx\.conf|conf\.d/`+regexp.QuoteMeta(s.App.Name)+`\.conf)$`)), nginxTimeoutRE)
		hops = append(hops, ng)

		// 4. The app server.
		per, perDesc := rules.PerWorker(s.App)
		srv := hop{ID: "hop-app-server" + suffix, Title: "App server: " + serverName(s.App) + of, Where: hostLinks(s, from, apps)}
		srv.Text = append(srv.Text, template.HTML(fmt.Sprintf("%d worker processes on %s, each serving %s at once: %d concurrent requests per host.",
			s.App.Workers.For(a), template.HTMLEscapeString(a.Name), template.HTMLEscapeString(perDesc), s.App.Workers.For(a)*per)))
		if s.App.Server == "starman" {
			srv.Text = append(srv.Text, "Starman has no worker timeout: the proxies' read timeouts bound a request.")
			srv.Settings = settingsOf(sc, from, sc.find(a.Name, regexp.MustCompile(`^etc/systemd/system/`+regexp.QuoteMeta(s.App.Name)+`\.service$`)), starmanRE)
		} else {
			srv.Text = append(srv.Text, template.HTML(fmt.Sprintf("A worker silent for %d s is killed and replaced; on reload or stop, workers get %d s to finish.", s.App.Timeout, s.App.GracefulTimeout)))
			srv.Settings = settingsOf(sc, from, sc.find(a.Name, regexp.MustCompile(`^`+regexp.QuoteMeta(gunicorn.ConfigPath(&s.App))+`$`)), gunicornRE)
		}
		hops = append(hops, srv)
	}

	// 5. Data services.
	if s.Database != nil || s.Cache != nil || s.Queue != nil {
		dh := hop{ID: "hop-data", Title: "Data services"}
		if db := s.Database; db != nil {
			dh.Text = append(dh.Text, template.HTML(fmt.Sprintf("%s primary %s: each app process holds a pool of %d connections and up to %d more.",
				engineName(db.Engine), code(fmt.Sprintf("%s:%d", db.Host, db.Port)), db.PoolSize, db.MaxOverflow)))
			if p := db.Pooler; p != nil {
				reads := ""
				if db.ReadPool() {
					reads = ", and as many to the replicas for the read pools"
				}
				if s.MultiApp() {
					dh.Text = append(dh.Text, template.HTML(fmt.Sprintf("The pools are client connections to the host's PgBouncer on %s, which keeps a pool per app on the host: at most default_pool_size %d (or the app's client connections there, if fewer) + reserve_pool_size %d server connections to the primary%s.",
						code(fmt.Sprintf("127.0.0.1:%d", p.Port)), p.DefaultPoolSize, p.ReservePoolSize, reads)))
				} else {
					dh.Text = append(dh.Text, template.HTML(fmt.Sprintf("The pools are client connections to the host's PgBouncer on %s, which opens at most %d server connections (default_pool_size %d + reserve_pool_size %d) to the primary%s.",
						code(fmt.Sprintf("127.0.0.1:%d", p.Port)), p.DefaultPoolSize+p.ReservePoolSize, p.DefaultPoolSize, p.ReservePoolSize, reads)))
				}
			}
			for _, r := range db.Replicas {
				switch {
				case db.ReplicaPoolSize > 0 && db.Pooler != nil:
					dh.Text = append(dh.Text, template.HTML(fmt.Sprintf("Replica %s takes reads through each host's PgBouncer, from its pool on the replicas: each process's read pool of %d (+%d) is client connections to that pool.", code(fmt.Sprintf("%s:%d", r, db.Port)), db.ReplicaPoolSize, db.ReplicaMaxOverflow)))
				case db.ReplicaPoolSize > 0:
					dh.Text = append(dh.Text, template.HTML(fmt.Sprintf("Replica %s takes reads: a pool of %d (+%d) per process.", code(fmt.Sprintf("%s:%d", r, db.Port)), db.ReplicaPoolSize, db.ReplicaMaxOverflow)))
				default:
					dh.Text = append(dh.Text, template.HTML(fmt.Sprintf("Replica %s has no read pool: it takes no reads.", code(fmt.Sprintf("%s:%d", r, db.Port)))))
				}
			}
			dh.Text = append(dh.Text, "Connection and statement timeouts are the database driver's, set by the app (in its environment file).")
		}
		if c := s.Cache; c != nil {
			dh.Text = append(dh.Text, template.HTML(fmt.Sprintf("%s cache %s.", engineName(c.Engine), code(fmt.Sprintf("%s:%d", s.CacheEndpoint(), c.Port)))))
		}
		if q := s.Queue; q != nil {
			dh.Text = append(dh.Text, template.HTML(fmt.Sprintf("%s broker %s.", engineName(q.Engine), code(fmt.Sprintf("%s:%d", s.QueueEndpoint(), queuePort(q))))))
		}
		hops = append(hops, dh)
	}
	return hops, budget(sc)
}

// budget says who gives up first on a slow request. With several apps
// each app has its own limits (apps.<name>.balancer_timeouts, its own
// nginx server block and app server): a paragraph per app.
func budget(sc *stackCtx) []template.HTML {
	s := sc.s
	if !s.MultiApp() {
		appRead := 0
		if apps := s.HostsWithRole("app"); len(apps) > 0 {
			appRead = proxyRead(sc.find(apps[0].Name, regexp.MustCompile(`^etc/nginx/conf\.d/`)))
		}
		return budgetOf(s, nil, appRead, "nginx on the app hosts", "the read timeouts above")
	}
	var out []template.HTML
	for _, a := range s.Apps {
		v := s.ForApp(a)
		appRead := 0
		hosts := s.AppHosts(a)
		if len(hosts) > 0 {
			appRead = proxyRead(sc.find(hosts[0].Name, regexp.MustCompile(`^etc/nginx/conf\.d/`+regexp.QuoteMeta(a.Name)+`\.conf$`)))
		}
		ps := budgetOf(v, a, appRead, "nginx on its hosts ("+artifact.CompactNames(schema.HostNamesOf(hosts))+")", "these read timeouts")
		var b strings.Builder
		b.WriteString("For " + template.HTMLEscapeString(a.Name) + ":")
		for _, p := range ps {
			b.WriteString(" " + string(p))
		}
		out = append(out, template.HTML(b.String()))
	}
	return out
}

// balancerWait is how long the balancer of s (a stack, or one app's
// view of it) waits for a response to start or continue, as its
// configuration renders it, with the fields that set it: HAProxy's
// "timeout server" is the longer of read and send, nginx's and the cloud
// balancer's is read. a is the app whose view s is, nil for the stack.
func balancerWait(s *schema.Stack, a *schema.App) (int, string) {
	t := s.Balancer.Timeouts
	read, send := "balancer.timeouts.read", "balancer.timeouts.send"
	if a != nil && a.BalancerTimeouts != nil {
		if a.BalancerTimeouts.Read > 0 {
			read = a.Field + ".balancer_timeouts.read"
		}
		if a.BalancerTimeouts.Send > 0 {
			send = a.Field + ".balancer_timeouts.send"
		}
	}
	if s.Balancer.Kind == "haproxy" && t.Send > t.Read {
		return t.Send, "the longer of " + read + " and " + send
	}
	return t.Read, read
}

// proxyRead is the longest proxy_read_timeout of rendered nginx files.
func proxyRead(files []artifact.File) int {
	n := 0
	for _, f := range files {
		for _, l := range directives(f.Content, proxyReadRE) {
			if m := proxyReadRE.FindStringSubmatch(l); m != nil {
				v, _ := strconv.Atoi(m[1])
				n = max(n, v)
			}
		}
	}
	return n
}

// budgetOf is the budget of one app (s is the stack, or the app's view of
// it, a the app as for balancerWait): its balancer's wait, its
// nginx's (appRead, on the hosts named by ngx) and its app server's own
// limit. timeouts is how the last sentences name the read timeouts.
func budgetOf(s *schema.Stack, a *schema.App, appRead int, ngx, timeouts string) []template.HTML {
	var out []template.HTML
	wait, waitField := balancerWait(s, a)
	timeouts = template.HTMLEscapeString(timeouts)
	capTimeouts := strings.ToUpper(timeouts[:1]) + timeouts[1:]
	out = append(out, template.HTML(fmt.Sprintf("The balancer waits up to %d s (%s) for a response to start or continue.", wait, template.HTMLEscapeString(waitField))))
	if appRead > 0 {
		out = append(out, template.HTML(fmt.Sprintf("%s waits up to %d s for the app server.", template.HTMLEscapeString(ngx), appRead)))
	}
	if s.App.Server == "starman" {
		out = append(out, template.HTML("Starman itself never gives up on a request: "+timeouts+" are the limit, and a request that outlives them keeps its worker busy until it ends."))
		return out
	}
	if wc := s.App.WorkerClass; wc != "sync" {
		out = append(out, template.HTML(fmt.Sprintf("gunicorn's timeout (%d s) does not end a slow request here: %s workers tell gunicorn they are alive from their own loop while a request runs, so it is a heartbeat limit (a worker whose loop is stuck is killed after it), not a request limit. %s are the limit, and a request that outlives them keeps running after the client got a 504.", s.App.Timeout, template.HTMLEscapeString(wc), capTimeouts)))
		return out
	}
	read := s.Balancer.Timeouts.Read
	if s.App.Timeout < read {
		out = append(out, template.HTML(fmt.Sprintf("%s's timeout (%d s) is shorter, so the app server gives up on a stuck worker first and the client gets a 502 from nginx rather than a 504 from a proxy (the app-timeout rule).", template.HTMLEscapeString(s.App.Server), s.App.Timeout)))
	} else {
		out = append(out, template.HTML(fmt.Sprintf("%s's timeout (%d s) is not below it: the proxy answers 504 while the request still runs (see the app-timeout finding).", template.HTMLEscapeString(s.App.Server), s.App.Timeout)))
	}
	return out
}

func hostLinks(s *schema.Stack, from string, hs []*schema.Host) template.HTML {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i] = h.Name
	}
	return hostLinksNames(s, from, names)
}

func pct(part, whole int) string {
	if whole == 0 {
		return "—"
	}
	return fmt.Sprintf("%d%%", part*100/whole)
}

func limitOf(what, path string, need, limit int, formula, limitHref, field string) limitRow {
	return limitRow{What: what, Path: path, Need: need, Limit: limit, Headroom: limit - need, HeadroomPct: pct(limit-need, limit),
		OK: need <= limit, Formula: formula, LimitHref: limitHref, Field: field}
}

func capacityOf(sc *stackCtx, from string) capacityView {
	s := sc.s
	per, _ := rules.PerWorker(s.App)
	var c capacityView
	for _, a := range s.Apps {
		per, perDesc := rules.PerWorker(*a)
		for _, h := range s.AppHosts(a) {
			w := a.Workers.For(h)
			host := h.Name
			if s.MultiApp() {
				host += " · " + a.Name
			}
			c.Rows = append(c.Rows, capRow{Host: host, Href: rel(from, hostPage(s.Name, h.Name)), Workers: w, PerWorker: perDesc, Concurrency: w * per, Cores: h.Cores})
		}
	}
	c.Total = rules.Capacity(s)
	if sg, h := s.Scaling, s.ScalingTemplateHost(); sg != nil && h != nil {
		each := s.App.Workers.For(h) * per
		c.Scaling = fmt.Sprintf("%s is the launch template's host: the Auto Scaling group runs %d to %d instances of it, %d concurrent requests each, so %d to %d in all (%d at the desired %d).",
			h.Name, sg.Min, sg.Max, each, sg.Min*each, sg.Max*each, max(sg.Desired, sg.Min)*each, max(sg.Desired, sg.Min))
	}
	if s.MultiApp() {
		for _, a := range s.Apps {
			if a.TargetConcurrency > 0 {
				p := a.Field + ".target_concurrency"
				c.AppTargets = append(c.AppTargets, limitOf("app "+a.Name, p, a.TargetConcurrency, rules.AppCapacity(s, a),
					"target against its hosts × workers × per-worker concurrency", rel(from, sc.sourceHref(p)), p))
			}
		}
	}
	c.Target = s.Capacity.TargetConcurrency
	c.TargetHref = rel(from, sc.sourceHref("capacity.target_concurrency"))
	c.Margin = c.Total - c.Target
	nofileHref := rel(from, sc.sourceHref("tuning.nofile"))
	n := s.Tuning.Nofile
	c.FD = append(c.FD, limitOf("nginx worker", "tuning.nginx_worker_connections", 2*s.Tuning.NginxWorkerConnections, n,
		fmt.Sprintf("2 × %d worker_connections (client and upstream)", s.Tuning.NginxWorkerConnections), nofileHref, "tuning.nofile"))
	for _, a := range s.Apps {
		if a.Runtime == "python" && (a.WorkerClass == "gevent" || a.WorkerClass == "uvicorn") {
			pool := s.Database.ProcessPool()
			what := a.WorkerClass + " worker"
			if s.MultiApp() {
				what = a.Name + " " + what
			}
			c.FD = append(c.FD, limitOf(what, schema.AppPath(a, "app.worker_connections"), a.WorkerConnections+pool+64, n,
				fmt.Sprintf("%d connections + %d database connections + 64 spare", a.WorkerConnections, pool), nofileHref, "tuning.nofile"))
		}
	}
	if s.Balancer.Kind == "haproxy" {
		c.FD = append(c.FD, limitOf("HAProxy", "balancer.maxconn", 2*s.Balancer.MaxConn+64, n,
			fmt.Sprintf("2 × %d maxconn + 64", s.Balancer.MaxConn), nofileHref, "tuning.nofile"))
	}
	max, set := somaxconn(s)
	c.Somaxconn, c.SomaxconnOK = max, set
	soHref := rel(from, sc.sourceHref(`tuning.sysctl."net.core.somaxconn"`))
	if s.MultiApp() {
		for _, a := range s.Apps {
			p := schema.AppPath(a, "app.backlog")
			c.Backlog = append(c.Backlog, limitOf(a.Name+" "+a.Server+" listen backlog", p, a.Backlog, max, p, soHref, "net.core.somaxconn"))
		}
	} else {
		c.Backlog = append(c.Backlog, limitOf(s.App.Server+" listen backlog", "app.backlog", s.App.Backlog, max, "app.backlog", soHref, "net.core.somaxconn"))
	}
	c.Backlog = append(c.Backlog, limitOf("nginx listen backlog", "", 511, max, "nginx's default on Linux", soHref, "net.core.somaxconn"))
	if s.Balancer.Kind == "haproxy" {
		c.Backlog = append(c.Backlog, haproxyBacklogRows(sc, max, soHref)...)
	}
	if db := s.Database; db != nil {
		_, what := rules.PoolProcesses(s)
		need := rules.DBConnections(s, false)
		f := fmt.Sprintf("%s × (%d + %d)", what, db.PoolSize, db.MaxOverflow)
		// The read pools, as a replica sees them.
		rf := fmt.Sprintf("%s × (%d + %d)", what, db.ReplicaPoolSize, db.ReplicaMaxOverflow)
		var perApp []limitRow
		if p := db.Pooler; p != nil && s.MultiApp() {
			// The primary sees each app's pool in each host's PgBouncer.
			apps, _ := rules.PoolerAppPools(s, false)
			var parts []string
			for _, ap := range apps {
				parts = append(parts, fmt.Sprintf("%s %d", ap.App.Name, ap.Total))
				perApp = append(perApp, limitRow{What: "app " + ap.App.Name + ": its PgBouncer pools", Path: ap.App.Field, Need: ap.Total, OK: true,
					Formula: fmt.Sprintf("%s (pool_size, default_pool_size %d or the app's client connections on the host if fewer, + reserve_pool_size %d)",
						strings.Join(ap.Hosts, " + "), p.DefaultPoolSize, p.ReservePoolSize)})
			}
			f = "PgBouncer's pools, an app's on each of its hosts: " + strings.Join(parts, " + ")
			if db.ReadPool() {
				apps, _ := rules.PoolerAppPools(s, true)
				parts = parts[:0]
				for _, ap := range apps {
					parts = append(parts, fmt.Sprintf("%s %d", ap.App.Name, ap.Total))
				}
				rf = "PgBouncer's read pools, an app's on each of its hosts: " + strings.Join(parts, " + ")
			}
		} else if p != nil {
			// The primary sees each host's PgBouncer, not the processes;
			// so does each replica, of the read pools.
			n, hosts := rules.PoolerHosts(s)
			f = fmt.Sprintf("%s PgBouncer (%s) × (default_pool_size %d + reserve_pool_size %d)", plural(n, "host's", "hosts'"), hosts, p.DefaultPoolSize, p.ReservePoolSize)
			rf = f
		}
		if db.MaxConnections > 0 {
			c.DB = append(c.DB, limitOf("connections to the primary", "database.pool_size", need, db.MaxConnections, f, rel(from, sc.sourceHref("database.max_connections")), "database.max_connections"))
		} else {
			c.DB = append(c.DB, limitRow{What: "connections to the primary", Need: need, Formula: f + "; database.max_connections not stated", OK: true})
		}
		c.DB = append(c.DB, perApp...)
		if db.ReadPool() {
			// Each replica is held to all the read pools: when one is
			// lost, the others take its reads.
			rneed := rules.DBConnections(s, true)
			if limit, field := db.ReplicaLimit(); limit > 0 {
				if field == "database.max_connections" {
					rf += "; a replica of the primary's size (no database.replica_max_connections)"
				}
				c.DB = append(c.DB, limitOf("connections to each replica", "database.replica_pool_size", rneed, limit, rf, rel(from, sc.sourceHref(field)), field))
			} else {
				c.DB = append(c.DB, limitRow{What: "connections to each replica", Need: rneed, Formula: rf + "; database.replica_max_connections not stated", OK: true})
			}
		}
	}
	return c
}

// haproxyBacklogRows are the listen backlogs of the frontends in the
// rendered haproxy.cfg (the first balancer's: they all render the same
// sections) against somaxconn max: a row per backlog, naming the
// frontends when they differ.
func haproxyBacklogRows(sc *stackCtx, max int, soHref string) []limitRow {
	s := sc.s
	var fes []frontendBacklog
	if lbs := s.HostsWithRole("lb"); len(lbs) > 0 {
		for _, f := range sc.find(lbs[0].Name, haproxyCfgRE) {
			fes = append(fes, haproxyBacklogs(f.Content)...)
		}
	}
	if len(fes) == 0 {
		return []limitRow{limitOf("HAProxy frontend backlog", "balancer.maxconn", s.Balancer.MaxConn, max, "defaults to maxconn", soHref, "net.core.somaxconn")}
	}
	type group struct {
		frontendBacklog
		names []string
	}
	var gs []*group
	for _, fe := range fes {
		i := slices.IndexFunc(gs, func(g *group) bool { return g.N == fe.N && g.From == fe.From })
		if i < 0 {
			gs = append(gs, &group{frontendBacklog: fe})
			i = len(gs) - 1
		}
		gs[i].names = append(gs[i].names, fe.Name)
	}
	var out []limitRow
	for _, g := range gs {
		what := "HAProxy frontend backlog"
		if len(gs) > 1 {
			what += " (" + strings.Join(g.names, ", ") + ")"
		}
		formula, path := "defaults to maxconn", "balancer.maxconn"
		switch g.From {
		case "defaults":
			formula, path = "set in haproxy.cfg's defaults", `tuning.sysctl."net.core.somaxconn"`
			if g.N == max && s.Balancer.MaxConn > max {
				formula = fmt.Sprintf("set to net.core.somaxconn in haproxy.cfg's defaults: maxconn %d, HAProxy's default, would be truncated", s.Balancer.MaxConn)
			}
		case "frontend":
			formula, path = "backlog in the frontend", `tuning.sysctl."net.core.somaxconn"`
		}
		out = append(out, limitOf(what, path, g.N, max, formula, soHref, "net.core.somaxconn"))
	}
	return out
}

// frontendBacklog is the listen backlog of one frontend or listen
// section of a haproxy.cfg, and where it comes from: "frontend" (its
// own backlog), "defaults" (the defaults section it takes its settings
// from) or "maxconn" (HAProxy's default: the frontend's maxconn, else
// the one its defaults set, else global maxconn).
type frontendBacklog struct {
	Name string
	N    int
	From string
}

// haproxyBacklogs reads the frontends' listen backlogs from a rendered
// haproxy.cfg. Each section starts from the latest defaults section
// above it (a defaults section resets what an earlier one set).
func haproxyBacklogs(cfg []byte) []frontendBacklog {
	type settings struct{ backlog, maxconn int }
	var (
		out      []frontendBacklog
		own      []settings // each frontend's own
		inherit  []settings // the defaults each frontend started from
		defaults settings
		global   int
		section  string
	)
	for line := range bytes.Lines(cfg) {
		l := strings.TrimSpace(string(line))
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if line[0] != ' ' && line[0] != '\t' {
			section = f[0]
			switch section {
			case "defaults":
				defaults = settings{}
			case "frontend", "listen":
				name := ""
				if len(f) > 1 {
					name = f[1]
				}
				out = append(out, frontendBacklog{Name: name})
				own = append(own, settings{})
				inherit = append(inherit, defaults)
			}
			continue
		}
		if len(f) < 2 || (f[0] != "backlog" && f[0] != "maxconn") {
			continue
		}
		n, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		var to *settings
		switch section {
		case "global":
			if f[0] == "maxconn" {
				global = n
			}
			continue
		case "defaults":
			to = &defaults
		case "frontend", "listen":
			to = &own[len(own)-1]
		default:
			continue
		}
		if f[0] == "backlog" {
			to.backlog = n
		} else {
			to.maxconn = n
		}
	}
	for i := range out {
		switch o, d := own[i], inherit[i]; {
		case o.backlog > 0:
			out[i].N, out[i].From = o.backlog, "frontend"
		case d.backlog > 0:
			out[i].N, out[i].From = d.backlog, "defaults"
		default:
			out[i].N, out[i].From = cmp.Or(o.maxconn, d.maxconn, global), "maxconn"
		}
	}
	return out
}

// The HA review: every rule with its outcome, findings, waivers.

type ruleRow struct {
	ID, Severity, Doc, Status string
}

type findingRow struct {
	Severity, Rule, Path, Message, Href string
	Line                                int
}

type reviewView struct {
	Rules    []ruleRow
	Findings []findingRow
	Waivers  []schema.Waiver
}

func reviewOf(sc *stackCtx, from string) reviewView {
	var v reviewView
	status := map[string]string{}
	for _, d := range sc.findings {
		href := rel(from, stackPage(sc.s.Name, "source.html"))
		if d.Line > 0 && d.File == sc.s.Source {
			href = rel(from, sourceLine(sc.s.Name, d.Line))
		}
		v.Findings = append(v.Findings, findingRow{Severity: d.Severity, Rule: d.Rule, Path: d.Path, Message: d.Message, Href: href, Line: d.Line})
		if d.Rule != "" {
			status[d.Rule] = d.Severity
		}
	}
	for _, r := range rules.Table {
		if r.ID == "apps" && sc.s.AppsByName == nil && status[r.ID] == "" {
			continue // a stack of one app: (app:) the rule has nothing to check
		}
		st := cmpOr(status[r.ID], "pass")
		v.Rules = append(v.Rules, ruleRow{ID: r.ID, Severity: r.Severity, Doc: r.Doc, Status: st})
	}
	v.Waivers = slices.Clone(sc.s.Waive)
	return v
}
