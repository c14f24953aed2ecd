//go:build unix

package systest

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/hacompile/hacompile/schema"
)

// A stack of several apps (apps:) is tested per app: every host name
// and path of each app must reach that app through the front door, and
// the backend faults stop one app's server on a host it shares with
// another app, whose requests must not fail and whose server on that
// host must keep serving.

// appURLs are the URLs that must reach app a: each of its host names
// with each of its path prefixes (or /).
func (e *env) appURLs(a *schema.App) []string {
	scheme := "http"
	if e.s.TLS.Enabled() {
		scheme = "https"
	}
	paths := a.Paths
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	var urls []string
	for _, d := range e.s.AppDomains(a) {
		for _, p := range paths {
			urls = append(urls, scheme+"://"+d+p)
		}
	}
	return urls
}

// routing checks, for a stack of several apps, that each app's host
// names and paths reach that app, on one of its hosts.
func (e *env) routing(ctx context.Context, sr *ScenarioReport) {
	door, ok := e.frontDoor()
	if !e.s.MultiApp() || !ok {
		return
	}
	port := "80"
	if e.s.TLS.Enabled() {
		port = "443"
	}
	addr := net.JoinHostPort(door, port)
	for _, a := range e.s.Apps {
		var hosts []string
		for _, h := range e.s.AppHosts(a) {
			hosts = append(hosts, h.Name)
		}
		for _, url := range e.appURLs(a) {
			code, body, hdr, err := e.getUntil(ctx, addr, url, 15*time.Second, func(c int, h http.Header) bool {
				return c == 200 && h.Get("X-Served-App") == a.Name
			})
			got := ""
			if hdr != nil {
				got = hdr.Get("X-Served-App")
			}
			sr.check(fmt.Sprintf("routing: GET %s reaches app %s", url, a.Name),
				err == nil && code == 200 && got == a.Name && slices.Contains(hosts, body),
				"%s, app %q (want %s on %v)", describe(code, body, err), got, a.Name, hosts)
		}
	}
}

// victimOf picks the backend fault's host and app: with several apps,
// the first host running more than one and the first app on it, the
// others there being the bystanders; else the first app host and the
// stack's app.
func (e *env) victimOf(apps []string) (string, *schema.App, []*schema.App) {
	if e.s.MultiApp() {
		for _, n := range apps {
			if on := e.s.AppsOn(e.s.Hosts[n]); len(on) > 1 {
				return n, on[0], on[1:]
			}
		}
		if on := e.s.AppsOn(e.s.Hosts[apps[0]]); len(on) > 0 {
			return apps[0], on[0], nil
		}
	}
	return apps[0], &e.s.App, nil
}

// backendOf is the HAProxy backend serving app a ("" for a stack of
// one app: any backend naming the server).
func (e *env) backendOf(a *schema.App) string {
	if !e.s.MultiApp() {
		return ""
	}
	return "app_" + a.Name
}

// bystanderChecks: while one app's server on the victim host is down,
// another app on that host loses no request, and (when only the
// victim's app is down) the victim host keeps serving it from from to
// t2, and the balancer keeps its server there up: down is when the
// balancer took it out (-1 never; -2 when the balancer cannot say).
func bystanderChecks(sr *ScenarioReport, f fault, b *schema.App, l *Load, victim string, t0, from, t2, down time.Duration) {
	var window, served []Sample
	for _, s := range l.Samples() {
		if s.Start >= t0 && s.Start < t2 {
			window = append(window, s)
		}
		if s.Start >= from && s.Start < t2 && s.OK() && s.Backend == victim {
			served = append(served, s)
		}
	}
	st := summarize(window)
	if f.inFlight {
		sr.check(fmt.Sprintf("%s: app %s (also on %s): only requests in flight fail", f.name, b.Name, victim), st.Failed <= loadWorker, "%d of %d failed (%d clients)%s", st.Failed, st.Requests, loadWorker, failSample(window))
	} else {
		sr.check(fmt.Sprintf("%s: app %s (also on %s): no request fails", f.name, b.Name, victim), st.Failed == 0, "%d of %d failed%s", st.Failed, st.Requests, failSample(window))
	}
	if f.appOnly {
		sr.check(fmt.Sprintf("%s: app %s keeps being served by %s", f.name, b.Name, victim), from < t2 && len(served) > 0, "%d of its requests served there in the %.1f s before the other app came back", len(served), max(t2-from, 0).Seconds())
		if down != -2 {
			sr.check(fmt.Sprintf("%s: the balancer keeps app %s's server on %s up", f.name, b.Name, victim), down < 0, "%s", durOr(down, "up throughout", "taken out after "))
		}
	}
}

// appOn is the first app host h runs, with several apps (nil with one:
// the stack's URL is the app's).
func (e *env) appOn(host string) *schema.App {
	if h := e.s.Hosts[host]; h != nil && e.s.MultiApp() {
		if as := e.s.AppsOn(h); len(as) > 0 {
			return as[0]
		}
	}
	return nil
}
