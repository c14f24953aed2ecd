package oci

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// HostStatus is what a host's pull agent last reported through its
// node_exporter textfile (apply --metrics-file, see Metrics): the
// artifact it applied and whether its applies fail.
type HostStatus struct {
	Host   string
	Source string // where it was read: a metrics URL, or a Prometheus query
	// Digest and Ref are hacompile_applied_info's labels: the artifact
	// last applied and the reference the host followed; "" when the host
	// never applied one.
	Digest, Ref string
	Generation  int
	Behind      bool
	LastSuccess time.Time
	Consecutive int // hacompile_apply_consecutive_failures
	// Err is why the host's metrics could not be read.
	Err error
}

// StatusSource reads the hosts' pull metrics.
type StatusSource interface {
	Status(ctx context.Context, hosts []string) map[string]HostStatus
	// Describe names the source in messages.
	Describe() string
}

// metricNames are the series a HostStatus is made of.
var metricNames = []string{
	"hacompile_applied_info", "hacompile_applied_generation", "hacompile_apply_behind",
	"hacompile_apply_last_success_timestamp_seconds", "hacompile_apply_consecutive_failures",
}

// sample is one series' value, with its labels.
type sample struct {
	name   string
	labels map[string]string
	value  float64
	ts     float64 // Prometheus's sample time; 0 when scraped
}

// fill sets st from the samples of one host. Of several
// hacompile_applied_info series (Prometheus may still hold the one
// before a change), the newest wins.
func (st *HostStatus) fill(ss []sample) {
	found := false
	var infoTS float64 = -1
	for _, s := range ss {
		switch s.name {
		case "hacompile_applied_info":
			if s.value == 1 && s.ts > infoTS {
				st.Digest, st.Ref, infoTS = s.labels["digest"], s.labels["ref"], s.ts
			}
		case "hacompile_applied_generation":
			st.Generation = int(s.value)
		case "hacompile_apply_behind":
			st.Behind = s.value != 0
		case "hacompile_apply_last_success_timestamp_seconds":
			if s.value > 0 {
				st.LastSuccess = time.Unix(int64(s.value), 0).UTC()
			}
		case "hacompile_apply_consecutive_failures":
			st.Consecutive = int(s.value)
		default:
			continue
		}
		found = true
	}
	if !found && st.Err == nil {
		st.Err = errors.New("no hacompile_apply metrics: the host's pull agent has not run, or its textfile is not in node_exporter's textfile directory")
	}
}

// Scrape reads each host's metrics endpoint (node_exporter's /metrics,
// whose textfile collector serves the agent's file).
type Scrape struct {
	URLs   map[string]string // host → URL
	Client *http.Client
}

// Describe implements StatusSource.
func (s Scrape) Describe() string { return "the hosts' metrics endpoints" }

// Status implements StatusSource, reading the endpoints at once.
func (s Scrape) Status(ctx context.Context, hosts []string) map[string]HostStatus {
	c := s.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	out := make([]HostStatus, len(hosts))
	_ = forEach(len(hosts), 16, func(i int) error {
		h := hosts[i]
		st := HostStatus{Host: h, Source: s.URLs[h]}
		if st.Source == "" {
			st.Err = errors.New("no metrics URL for it")
		} else {
			ss, err := scrape(ctx, c, st.Source)
			st.Err = err
			st.fill(ss)
		}
		out[i] = st
		return nil
	})
	m := map[string]HostStatus{}
	for _, st := range out {
		m[st.Host] = st
	}
	return m
}

func scrape(ctx context.Context, c *http.Client, u string) ([]sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return parseText(io.LimitReader(resp.Body, 64<<20))
}

// parseText reads the hacompile_ series of Prometheus's text format
// (the rest, node_exporter's own series, is skipped).
func parseText(r io.Reader) ([]sample, error) {
	var out []sample
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		if !strings.HasPrefix(l, "hacompile_") {
			continue
		}
		s, err := parseLine(l)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

func parseLine(l string) (sample, error) {
	s := sample{labels: map[string]string{}}
	i := strings.IndexAny(l, "{ ")
	if i < 0 {
		return s, fmt.Errorf("%q: no value", l)
	}
	s.name, l = l[:i], l[i:]
	if strings.HasPrefix(l, "{") {
		l = l[1:]
		for {
			l = strings.TrimLeft(l, " ,")
			if strings.HasPrefix(l, "}") {
				l = l[1:]
				break
			}
			eq := strings.Index(l, "=\"")
			if eq < 0 {
				return s, fmt.Errorf("%s: bad labels", s.name)
			}
			k := strings.TrimSpace(l[:eq])
			l = l[eq+1:]
			// The quoted value: \\, \" and \n are its escapes, as Go's.
			end := 1
			for end < len(l) && l[end] != '"' {
				if l[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(l) {
				return s, fmt.Errorf("%s: unterminated label value", s.name)
			}
			v, err := strconv.Unquote(l[:end+1])
			if err != nil {
				return s, fmt.Errorf("%s: label %s: %w", s.name, k, err)
			}
			s.labels[k] = v
			l = l[end+1:]
		}
	}
	f := strings.Fields(l)
	if len(f) == 0 {
		return s, fmt.Errorf("%s: no value", s.name)
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s, fmt.Errorf("%s: value %q: %w", s.name, f[0], err)
	}
	s.value = v
	return s, nil
}

// Prometheus reads the hosts' metrics from a Prometheus server's query
// API, by their host label (as the stack's rendered prometheus.yml
// labels node_exporter's targets).
type Prometheus struct {
	URL    string // e.g. http://10.0.0.5:9090
	Client *http.Client
}

// Describe implements StatusSource.
func (p Prometheus) Describe() string { return "Prometheus at " + p.URL }

// Query is the PromQL of hosts' pull metrics.
func (p Prometheus) Query(hosts []string) string {
	q := make([]string, len(hosts))
	for i, h := range hosts {
		q[i] = regexp.QuoteMeta(h)
	}
	return `{__name__=~"` + strings.Join(metricNames, "|") + `",host=~"` + strings.Join(q, "|") + `"}`
}

// Status implements StatusSource with one instant query.
func (p Prometheus) Status(ctx context.Context, hosts []string) map[string]HostStatus {
	m := map[string]HostStatus{}
	by, err := p.query(ctx, p.Query(hosts))
	for _, h := range hosts {
		st := HostStatus{Host: h, Source: p.Describe(), Err: err}
		if err == nil {
			st.fill(by[h])
			if len(by[h]) == 0 {
				st.Err = fmt.Errorf("Prometheus has no hacompile_apply series with host=%q: its node_exporter is not scraped, or the pull agent's textfile is not in its textfile directory", h)
			}
		}
		m[h] = st
	}
	return m
}

func (p Prometheus) query(ctx context.Context, q string) (map[string][]sample, error) {
	c := p.Client
	if c == nil {
		c = &http.Client{Timeout: 30 * time.Second}
	}
	u := strings.TrimSuffix(p.URL, "/") + "/api/v1/query?" + url.Values{"query": {q}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&r); err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %s: %w", p.URL, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("Prometheus at %s: %s %s", p.URL, resp.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("Prometheus at %s answered a %s, not a vector", p.URL, r.Data.ResultType)
	}
	out := map[string][]sample{}
	for _, s := range r.Data.Result {
		ts, _ := s.Value[0].(float64)
		vs, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(vs, 64)
		if err != nil || math.IsNaN(v) {
			continue
		}
		h := s.Metric["host"]
		out[h] = append(out[h], sample{name: s.Metric["__name__"], labels: s.Metric, value: v, ts: ts})
	}
	for h := range out {
		slices.SortFunc(out[h], func(a, b sample) int { return strings.Compare(a.name, b.name) })
	}
	return out, nil
}
