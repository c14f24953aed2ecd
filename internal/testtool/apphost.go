package testtool

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
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

// FaultLoad is traffic through a balancer for a fault test: GET clients and
// one POST client (each POST with its own id) in a loop until Stop.
type FaultLoad struct {
	Gets, FailedGets, Posts, FailedPosts atomic.Int64
	stop                                 chan struct{}
	wg                                   sync.WaitGroup
	c                                    *http.Client
}

// StartLoad sends GETs to url from getters clients and POSTs to url?id=N
// from one more, over c; a request fails unless it gets a 200.
func StartLoad(c *http.Client, url string, getters int) *FaultLoad {
	l := &FaultLoad{stop: make(chan struct{}), c: c}
	var postID atomic.Int64
	for i := range getters + 1 {
		post := i == 0
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				var resp *http.Response
				var err error
				if post {
					l.Posts.Add(1)
					resp, err = c.Post(fmt.Sprintf("%s?id=%d", url, postID.Add(1)), "text/plain", strings.NewReader("order"))
				} else {
					l.Gets.Add(1)
					resp, err = c.Get(url)
				}
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				switch {
				case !ok && post:
					l.FailedPosts.Add(1)
				case !ok:
					l.FailedGets.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return l
}

// Stop ends the load, waits for the requests in flight and closes the
// client's idle connections (a server's graceful stop waits for them).
func (l *FaultLoad) Stop() {
	close(l.stop)
	l.wg.Wait()
	if tr, ok := l.c.Transport.(*http.Transport); ok {
		tr.CloseIdleConnections()
	}
}

// InFlight starts n GETs of url through c, 50 ms apart, and returns a
// function that waits for them all and gives each one's outcome: "200
// OK <body>" or the error. The drain tests start slow requests with it
// before a reload and require every one to finish.
func InFlight(c *http.Client, url string, n int) func() []string {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []string
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ""
			if resp, err := c.Get(url); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r = resp.Status + " " + string(b)
			} else {
				r = err.Error()
			}
			mu.Lock()
			got = append(got, r)
			mu.Unlock()
		}()
		time.Sleep(50 * time.Millisecond)
	}
	return func() []string {
		wg.Wait()
		return got
	}
}
