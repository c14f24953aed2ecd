package site

import (
	"slices"
	"testing"
)

// TestHAProxyBacklogs: a frontend's listen backlog is its own, else the
// one of the defaults section it starts from (the latest above it: a
// later defaults section resets an earlier one's), else its maxconn,
// else global maxconn.
func TestHAProxyBacklogs(t *testing.T) {
	cfg := `# comment
global
    maxconn 20000

defaults
    mode http
    # backlog 1 (a comment)
    backlog 4096

frontend http
    bind :80

frontend own
    bind :81
    backlog 512

backend app
    server app1 10.0.0.1:80

listen stats
    bind 127.0.0.1:8404

defaults tls-passthrough
    mode tcp

frontend https
    bind :443

frontend capped
    bind :444
    maxconn 300
`
	got := haproxyBacklogs([]byte(cfg))
	want := []frontendBacklog{
		{"http", 4096, "defaults"},
		{"own", 512, "frontend"},
		{"stats", 4096, "defaults"},
		{"https", 20000, "maxconn"},
		{"capped", 300, "maxconn"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
