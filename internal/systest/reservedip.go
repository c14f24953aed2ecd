//go:build unix

package systest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
)

// The provider's reserved IP (DigitalOcean) is not an address on the
// balancers' link: the provider's network routes it to whichever droplet
// it is assigned to, and keepalived's notify script assigns it through
// the provider's API. The test stands in for both: an API and metadata
// service on each balancer's loopback (the notify script's base URLs
// point there through /etc/default/hacompile-reserved-ip, the override
// the script reads), and routes to the holder in the namespaces the
// test's clients and Prometheus run in, which the API moves on assign.

const standInAPIPort = "8977"

// reservedIP is the stand-in provider network of one stack.
type reservedIP struct {
	mu        sync.Mutex
	holder    string   // host the address is assigned to
	observers []string // namespaces routing to the address
	listeners []net.Listener
	assigns   int
}

func (e *env) reservedIPStandIn(m *Machine) error {
	if e.s.Provider != "digitalocean" {
		e.deviate(fmt.Sprintf("failover %q on %s is not emulated: the test has no stand-in for that provider's API", e.s.Balancer.Failover, e.s.Provider))
		return nil
	}
	e.mu.Lock()
	if e.rip == nil {
		e.rip = &reservedIP{}
	}
	e.mu.Unlock()
	e.deviate("the reserved IP's API and metadata service are stand-ins on each balancer's 127.0.0.1:" + standInAPIPort +
		" (/etc/default/hacompile-reserved-ip points the notify script there); the stand-in routes the address to the droplet it is assigned to")
	conf := "# hacompile test: the provider's API and metadata service are stand-ins.\n" +
		"DO_API_BASE=http://127.0.0.1:" + standInAPIPort + "\nDO_METADATA_BASE=http://127.0.0.1:" + standInAPIPort + "\n"
	return m.Write("etc/default/hacompile-reserved-ip", []byte(conf), 0o644)
}

// serveReservedIP starts the stand-in API in a balancer's namespace,
// before it boots: keepalived's first election calls it.
func (e *env) serveReservedIP(lb, ns string) error {
	if e.rip == nil {
		return nil
	}
	vip, _ := virtualAddr(e.s)
	i := slices.Index(e.hostsWith("lb"), lb)
	{
		l, err := listenIn(ns, "127.0.0.1:"+standInAPIPort)
		if err != nil {
			return fmt.Errorf("%s: the stand-in provider API: %w", lb, err)
		}
		e.rip.mu.Lock()
		e.rip.listeners = append(e.rip.listeners, l)
		e.rip.mu.Unlock()
		droplet := 1000 + i
		mux := http.NewServeMux()
		mux.HandleFunc("GET /metadata/v1/id", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "%d", droplet)
		})
		// The droplet's own view of its reserved IP, as the state
		// script reads it: "true" and the address on the droplet it is
		// assigned to, "false" (and no address) on any other.
		mux.HandleFunc("GET /metadata/v1/floating_ip/ipv4/active", func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintf(w, "%t", e.rip.Holder() == lb)
		})
		mux.HandleFunc("GET /metadata/v1/floating_ip/ipv4/ip_address", func(w http.ResponseWriter, _ *http.Request) {
			if e.rip.Holder() != lb {
				http.NotFound(w, nil)
				return
			}
			fmt.Fprint(w, vip.String())
		})
		mux.HandleFunc("POST /v2/reserved_ips/{ip}/actions", func(w http.ResponseWriter, r *http.Request) {
			var body struct {
				Type      string `json:"type"`
				DropletID int    `json:"droplet_id"`
			}
			if r.Header.Get("Authorization") != "Bearer "+e.secret() {
				http.Error(w, `{"id":"unauthorized","message":"Unable to authenticate you"}`, http.StatusUnauthorized)
				return
			}
			if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Type != "assign" || r.PathValue("ip") != vip.String() {
				http.Error(w, `{"id":"unprocessable_entity","message":"bad request"}`, http.StatusUnprocessableEntity)
				return
			}
			to := ""
			for j, h := range e.hostsWith("lb") {
				if 1000+j == body.DropletID {
					to = h
				}
			}
			if to == "" {
				http.Error(w, `{"id":"not_found","message":"no such droplet"}`, http.StatusNotFound)
				return
			}
			if err := e.rip.assign(e, vip.String(), to); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"action":{"id":1,"status":"in-progress","type":"assign_ip","resource_id":%d}}`, body.DropletID)
		})
		go http.Serve(l, mux) //nolint:errcheck // ends when the listener closes
	}
	return nil
}

// route makes ns reach the reserved IP through its current holder.
func (r *reservedIP) route(e *env, ns string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observers = append(r.observers, ns)
	if r.holder == "" {
		return nil
	}
	vip, _ := virtualAddr(e.s)
	return ipRun("-n", ns, "route", "replace", vip.String()+"/32", "via", e.addr(r.holder))
}

func (r *reservedIP) assign(e *env, vip, to string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.holder = to
	r.assigns++
	var errs []string
	for _, ns := range r.observers {
		if err := ipRun("-n", ns, "route", "replace", vip+"/32", "via", e.addr(to)); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// Holder is the balancer the reserved IP is assigned to.
func (r *reservedIP) Holder() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.holder
}

func (r *reservedIP) close() {
	for _, l := range r.listeners {
		l.Close()
	}
}
