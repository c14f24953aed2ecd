package nginx

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/schema"
)

// viewOf is g rendering v: the whole stack, or one app's view of it.
func (g *gen) viewOf(v *schema.Stack) *gen {
	c := *g
	c.s = v
	c.appHosts = v.HostsWithRole("app")
	c.same = nil // another stack's files
	c.buf = nil  // its writers' own
	return &c
}

// lbSiteApps renders the nginx balancer's site for a stack of several
// apps (g.s is the whole stack): an upstream per app, and per set of
// host names the same apps answer (schema.Stack.Sites) a server whose
// locations send each path prefix to its app, with that app's body
// size, timeouts, retries, rate limits and error pages. The locations
// follow the stack's routing rules (schema.Stack.Routes), which the
// HAProxy balancer's use_backend rules follow too, so both balancers
// send a request to the same app; like HAProxy, nginx answers 503 where
// no app does.
func (g *gen) lbSiteApps(h *schema.Host) ([]byte, error) {
	s := g.s
	w := g.newWriter()
	apps := map[*schema.App]*gen{}
	var names []string
	for _, a := range s.Apps {
		apps[a] = g.viewOf(s.ForApp(a))
		names = append(names, a.Name)
	}
	w.comment("Load balancer for the apps "+strings.Join(names, ", ")+": each request goes by its host name and",
		"path to one app (the longest matching path prefix wins), and is spread over that app's",
		"hosts' nginx.")
	g.lbPoolNote(w)
	for _, a := range s.Apps {
		v := apps[a]
		w.comment(fmt.Sprintf("The %s app (%s) on %s, through each host's nginx on port %d.", a.Name, a.Server, strings.Join(schema.HostNamesOf(v.appHosts), ", "), a.HTTPPort))
		v.lbPool(w)
	}
	if g.rateLimitOnLB() {
		g.rateLimitNote(w)
		w.comment("Each app counts its own requests.")
		for _, a := range s.Apps {
			apps[a].rateZoneDecls(w)
		}
	}
	relay := ""
	if g.tlsOnLB() {
		relay = g.acmeRelay(w, h, g.lbHosts, 80, "hacompile_lb_acme_relay")
	}
	for _, site := range s.Sites() {
		if err := g.lbSiteServer(w, site, apps, relay); err != nil {
			return nil, err
		}
	}
	g.lbDefaultServers(w)
	return w.result()
}

// lbSiteServer writes the servers of one set of host names: with TLS,
// the port-80 server (ACME challenges, a redirect), then the server that
// routes.
func (g *gen) lbSiteServer(w *writer, site schema.Site, apps map[*schema.App]*gen, relay string) error {
	s := g.s
	var words []string
	for _, d := range site.Domains {
		words = append(words, w.word(d))
	}
	names := strings.Join(words, " ")
	if g.tlsOnLB() {
		g.lbRedirectServer(w, names, relay)
	}
	w.blank()
	var routed []string
	for _, r := range site.Routes {
		to := "every path"
		if r.Path != "" {
			to = r.Path
		}
		routed = append(routed, r.App.Name+" "+to)
	}
	w.comment("Routes: " + strings.Join(routed, ", ") + ".")
	w.open("server")
	g.lbListen(w)
	w.d("server_name", names)
	if g.tlsOnLB() {
		cert := g.certFor(site)
		if cert == nil {
			// Certificates are one per app's first host name
			// (schema.Stack.CertificateViews): two apps whose
			// domains start alike but differ later leave names out.
			a := site.Routes[0].App
			return artifact.Errorf(s.Written(a.Field+".domains", a.Field), "no certificate of the stack names all of %s, which app %q answers: give apps that share a first host name the same domains",
				strings.Join(site.Domains, ", "), a.Name)
		}
		cert.lbTLS(w)
	}
	w.blank()
	g.proxySetHeaders(w, "$proxy_add_x_forwarded_for", "$scheme")
	g.nextUpstreamNote(w)
	w.comment("Each location below has its app's body size, timeouts, retries, rate limit and error",
		"pages.")
	w.blank()
	for _, l := range g.siteLocations(site) {
		if l.exact {
			w.open("location", "=", w.word(l.path))
		} else {
			w.open("location", w.word(l.path))
		}
		switch v := apps[l.app]; {
		case v == nil:
			w.comment("No app answers these paths of these host names.")
			w.d("return", "503")
		default:
			if v.rateLimitOnLB() {
				rl := s.RateLimit
				if l.limit < 0 {
					v.limitReq(w, v.rateZone(-1), rl.Burst, rl.NoDelay)
				} else {
					lim := rl.Locations[l.limit]
					v.limitReq(w, v.rateZone(l.limit), lim.Burst, lim.NoDelay)
				}
			}
			w.d("client_max_body_size", v.s.App.ClientMaxBodySize)
			v.proxyTimeouts(w)
			v.nextUpstream(w)
			v.errorPages(w, l.app.Name+"_")
			w.d("proxy_pass", "http://"+v.lbUpstream())
		}
		w.close()
	}
	for _, a := range s.Apps {
		if slices.ContainsFunc(site.Routes, func(r schema.Route) bool { return r.App == a }) {
			apps[a].errorLocations(w, false, a.Name+"_")
		}
	}
	w.close()
	return nil
}

// location is one location block of a routing server.
type location struct {
	path  string
	exact bool        // "location = path", else a prefix
	app   *schema.App // where its requests go, nil for none
	limit int         // rate_limit.locations index, -1 for rate_limit's own rate
}

// siteLocations are the locations of site's server, sorted by path:
// "/" (the app answering every path, else none), a prefix per path
// rule, and one per rate_limit.locations path where this balancer limits
// rates. Each sends its requests to the app the routing rules give for
// its prefix, which is the app for every path nginx gives it: a longer
// path rule under it is a location of its own, which nginx picks
// (longest prefix) as the rules do. A prefix ending in "/" also gets an
// exact location for itself without the slash: nginx would otherwise
// redirect /api to /api/, where the routing rules (and HAProxy) send
// /api to the app that answers it, not the one under /api/.
func (g *gen) siteLocations(site schema.Site) []location {
	s := g.s
	prefixes := map[string]int{"/": -1}
	routed := map[string]bool{}
	for _, r := range site.Routes {
		if r.Path != "" {
			prefixes[r.Path] = -1
			routed[r.Path] = true
		}
	}
	if g.rateLimitOnLB() {
		for i, l := range s.RateLimit.Locations {
			prefixes[l.Path] = i
		}
	}
	var ls []location
	for p, limit := range prefixes {
		ls = append(ls, location{p, false, site.RouteOf(s, p), limit})
		if routed[p] && p != "/" {
			exact := strings.TrimSuffix(p, "/")
			ls = append(ls, location{exact, true, site.RouteOf(s, exact), -1})
		}
	}
	slices.SortFunc(ls, func(x, y location) int { return strings.Compare(x.path, y.path) })
	return ls
}

// certFor is the view (schema.Stack.CertificateViews) whose certificate
// names every host name of site, or nil.
func (g *gen) certFor(site schema.Site) *gen {
	for _, v := range g.s.CertificateViews() {
		names := append([]string{v.Domain}, v.Aliases...)
		if !slices.ContainsFunc(site.Domains, func(d string) bool { return !slices.Contains(names, d) }) {
			return g.viewOf(v)
		}
	}
	return nil
}

// lbDefaultServers answer the host names no app answers: 503 over HTTP,
// as from the HAProxy balancer, and over HTTPS no handshake at all
// (HAProxy's strict-sni), as no certificate names them. Without them the
// first server of the file would answer them, for one app.
func (g *gen) lbDefaultServers(w *writer) {
	w.blank()
	w.comment("Any other host name: no app answers it.")
	w.open("server")
	w.d("listen", "80", "default_server")
	w.d("return", "503")
	w.close()
	if !g.tlsOnLB() {
		return
	}
	w.blank()
	w.open("server")
	g.lbListen(w, "default_server")
	w.comment("The profile's protocols apply to the handshake, which fails for a name no",
		"certificate holds.")
	w.d("include", w.path("/"+TLSSnippetPath))
	w.d("ssl_reject_handshake", "on")
	w.close()
}
