package testtool

import (
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// AppHost stands in for an app host's nginx in front of its app, for
// the balancers' fault tests. While Dead, its app is gone and nginx
// answers 502 on every path, the health path included (nginx passes it
// on to the app); while Frozen, nothing answers, as on a host stopped
// with SIGSTOP whose kernel still completes handshakes. Otherwise it
// answers 200 with its name. It counts the GETs it served and the id
// (query parameter "id") of every POST it received.
type AppHost struct {
	Name         string
	Dead, Frozen atomic.Bool
	Served       atomic.Int64
	mu           sync.Mutex
	posts        map[string]int
}

func (h *AppHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for h.Frozen.Load() {
		select {
		case <-r.Context().Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	if r.Method == http.MethodPost {
		h.mu.Lock()
		if h.posts == nil {
			h.posts = map[string]int{}
		}
		h.posts[r.URL.Query().Get("id")]++
		h.mu.Unlock()
	}
	if h.Dead.Load() {
		http.Error(w, "502 Bad Gateway", http.StatusBadGateway)
		return
	}
	if r.Method == http.MethodGet {
		h.Served.Add(1)
	}
	io.WriteString(w, h.Name)
}

// ResetPosts forgets the POSTs received so far.
func (h *AppHost) ResetPosts() {
	h.mu.Lock()
	defer h.mu.Unlock()
	clear(h.posts)
}

// PostsSentTwice lists the POST ids that reached one host twice, or
// more than one host: a non-idempotent request sent twice.
func PostsSentTwice(hosts ...*AppHost) []string {
	seen := map[string]int{}
	for _, h := range hosts {
		h.mu.Lock()
		for id, n := range h.posts {
			seen[id] += n
		}
		h.mu.Unlock()
	}
	var out []string
	for id, n := range seen {
		if n > 1 {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
