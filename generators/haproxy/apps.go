package haproxy

import (
	"fmt"
	"strings"

	"github.com/hacompile/hacompile/schema"
)

// AllApps implements artifact.AllApps: the balancers route to every app
// of the stack.
func (Gen) AllApps() bool { return true }

// Backend is the backend of app a: "app" for a stack of one app, else
// "app_<name>".
func Backend(s *schema.Stack, a *schema.App) string {
	if !s.MultiApp() {
		return "app"
	}
	return "app_" + a.Name
}

// certViews are the stack as each certificate sees it.
func certViews(s *schema.Stack) []*schema.Stack { return s.CertificateViews() }

// hostACL is the ACL that matches the host names app a answers.
func hostACL(a *schema.App) string { return "host_" + a.Name }

// routing writes the ACLs and use_backend rules that send each request
// to its app's backend, by host name (the Host header, port dropped)
// and path prefix: the stack's routing rules (schema.Stack.Routes), in
// their order, which the nginx balancer's locations follow too.
func routing(w *writer, s *schema.Stack) {
	w.note("Routing: each app answers its host names (apps.<name>.domains, else the stack's",
		"domain and aliases) and path prefixes (apps.<name>.paths, else every path); the",
		"longest matching prefix wins. A request no app answers gets 503.")
	for _, a := range s.Apps {
		w.kw(append([]string{"acl", hostACL(a), "req.hdr(host),field(1,:)", "-i"}, s.AppDomains(a)...)...)
	}
	for _, r := range s.Routes() {
		if r.Path == "" {
			w.kw("use_backend", Backend(s, r.App), "if", hostACL(r.App))
			continue
		}
		w.kw("use_backend", Backend(s, r.App), "if", hostACL(r.App), "{", "path_beg", w.v(r.Path), "}")
	}
}

// backendApps writes one backend per app: its hosts at its nginx's port,
// health-checked with its own host name.
func backendApps(w *writer, s *schema.Stack) {
	for _, a := range s.Apps {
		v := s.ForApp(a)
		hosts := s.AppHosts(a)
		w.section("backend", Backend(s, a))
		w.note(fmt.Sprintf("The %s app (%s) on %s, through each host's nginx on port %d.", a.Name, a.Server, strings.Join(schema.HostNamesOf(hosts), ", "), a.HTTPPort))
		if t := v.Balancer.Timeouts; t != s.Balancer.Timeouts {
			w.note(fmt.Sprintf("This app's own timeouts (apps.%s.balancer_timeouts): connect, and the longer", a.Name),
				"of read and send for the server.")
			w.kw("timeout", "connect", secs(t.Connect))
			w.kw("timeout", "server", secs(max(t.Read, t.Send)))
		}
		algorithm(w, v)
		healthCheck(w, v, "layer7")
		retries(w, v)
		w.note("Idle connections to the app hosts are reused for later requests, never for the",
			"first request of a client connection (HAProxy's default, said here).")
		w.kw("http-reuse", "safe")
		drainNote(w, hosts)
		port := fmt.Sprint(a.HTTPPort)
		for _, h := range hosts {
			w.kw(append([]string{"server", w.v(h.Name), w.v(h.Address + ":" + port), "check"}, drainArgs(h)...)...)
		}
	}
}
