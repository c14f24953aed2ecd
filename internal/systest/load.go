//go:build unix

package systest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// Sample is one request the load generator made.
type Sample struct {
	Start   time.Duration // since the load began
	Latency time.Duration
	Status  int    // 0 when no response came
	Backend string // the host that answered (the stand-in app's body)
	App     string // the app that answered (the stand-in's X-Served-App)
	Err     string
}

// OK reports whether the request succeeded.
func (s Sample) OK() bool { return s.Status == 200 && s.Err == "" }

// Load is a closed-loop HTTP client running in its own namespace on the
// test network: Workers clients each send a GET once the previous one
// is answered and Pace has passed since it was sent, for at most
// Duration.
type Load struct {
	NS       string
	URL      string // https://domain/ — dialled at Addr whatever the name
	Addr     string // host:port the name resolves to
	Workers  int
	Timeout  time.Duration
	Duration time.Duration
	// Sources, when set, are the clients' own addresses, one worker
	// each, and Pace the least time between one worker's requests: many
	// clients each within a per-client rate limit, as real traffic is.
	Sources []netip.Addr
	Pace    time.Duration
	// WantApp, when set, is the app the URL routes to: an answer from
	// another app is a failed request.
	WantApp string

	mu      sync.Mutex
	samples []Sample
	begin   time.Time
}

// Run drives the load until ctx ends or Duration passes.
func (l *Load) Run(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, l.Duration)
	defer cancel()
	newClient := func(src netip.Addr) *http.Client {
		d := &nsDialer{ns: l.NS, d: net.Dialer{Timeout: l.Timeout}}
		if src.IsValid() {
			d.d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
		}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, l.Addr)
			},
			// The certificate is the test's own self-signed one.
			TLSClientConfig:     &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
			MaxIdleConnsPerHost: max(l.Workers, 1),
			ForceAttemptHTTP2:   false,
		}
		return &http.Client{Transport: tr, Timeout: l.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	shared := newClient(netip.Addr{})
	defer shared.CloseIdleConnections()
	workers := l.Workers
	if len(l.Sources) > 0 {
		workers = len(l.Sources)
	}
	l.begin = time.Now()
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := shared
			if len(l.Sources) > 0 {
				client = newClient(l.Sources[i])
				defer client.CloseIdleConnections()
				// Spread the clients' first requests over one pace.
				time.Sleep(l.Pace * time.Duration(i) / time.Duration(workers))
			}
			for ctx.Err() == nil {
				next := time.Now().Add(l.Pace)
				s := l.one(ctx, client)
				if ctx.Err() != nil && !s.OK() {
					return // cut off by the end of the run, not a failure
				}
				l.mu.Lock()
				l.samples = append(l.samples, s)
				l.mu.Unlock()
				if !s.OK() {
					time.Sleep(20 * time.Millisecond) // no spinning on a refused connection
				}
				time.Sleep(time.Until(next))
			}
		}()
	}
	wg.Wait()
}

func (l *Load) one(ctx context.Context, c *http.Client) Sample {
	start := time.Now()
	s := Sample{Start: start.Sub(l.begin)}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, l.URL, nil)
	resp, err := c.Do(req)
	if err != nil {
		s.Err = err.Error()
		s.Latency = time.Since(start)
		return s
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	s.Latency = time.Since(start)
	s.Status = resp.StatusCode
	if err != nil {
		s.Err = err.Error()
	}
	s.Backend = strings.TrimSpace(string(body))
	s.App = resp.Header.Get("X-Served-App")
	if l.WantApp != "" && s.Err == "" && s.Status == 200 && s.App != l.WantApp {
		s.Err = fmt.Sprintf("answered by app %q, want %q", s.App, l.WantApp)
	}
	return s
}

// Now is the time since the load began.
func (l *Load) Now() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.begin.IsZero() {
		return 0
	}
	return time.Since(l.begin)
}

// Samples returns the requests made so far, in start order.
func (l *Load) Samples() []Sample {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.samples)
	slices.SortFunc(out, func(a, b Sample) int { return int(a.Start - b.Start) })
	return out
}

// Stats summarises samples.
type Stats struct {
	Requests int     `json:"requests"`
	Failed   int     `json:"failed"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
}

func summarize(samples []Sample) Stats {
	st := Stats{Requests: len(samples)}
	lat := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		if !s.OK() {
			st.Failed++
		}
		lat = append(lat, s.Latency)
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		st.P50ms = ms(lat[len(lat)/2])
		st.P99ms = ms(lat[min(len(lat)-1, len(lat)*99/100)])
	}
	return st
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()/100) / 10 }
