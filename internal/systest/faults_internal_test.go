//go:build unix

package systest

import "testing"

// TestFailSample: a check's failure says each kind of failure with its
// count, most frequent first; a status with the gist of the body that
// came with it (HAProxy's own 503 told from an app's), cut on a rune.
func TestFailSample(t *testing.T) {
	haproxy503 := "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to handle this request.\n</body></html>"
	samples := []Sample{
		{Status: 200, Backend: "app1"},
		{Status: 503, Backend: haproxy503},
		{Err: "connection refused"},
		{Status: 503, Backend: haproxy503},
		{Status: 502},
		{Status: 500, Backend: "ééééééééééééééééééééééééééééééééééééééééé"},
	}
	got := failSample(samples)
	want := "; 2× HTTP 503 (503 Service Unavailable No server is available to handle thi…), 1× connection refused, 1× HTTP 502, 1 other kind"
	if got != want {
		t.Errorf("failSample:\n got %q\nwant %q", got, want)
	}
	if got := failKind(samples[5]); got != "HTTP 500 ("+string([]rune("ééééééééééééééééééééééééééééééééééééééééé")[:30])+"…)" {
		t.Errorf("failKind cut the body inside a rune or elsewhere: %q", got)
	}
	if got := failSample(samples[:1]); got != "" {
		t.Errorf("no failure: %q", got)
	}
}
