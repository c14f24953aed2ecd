package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// checkHealth polls url until it answers 2xx (or 3xx when redirectOK)
// or timeout passes. Redirects are not followed: a balancer redirecting
// plain HTTP to HTTPS has answered with its configuration loaded.
func checkHealth(ctx context.Context, url string, redirectOK bool, timeout time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil, DialContext: dial},
	}
	var last error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		last = probe(ctx, client, url, redirectOK)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("GET %s: not healthy within %s: %w", url, timeout, last)
		case <-time.After(wait):
		}
	}
}

func probe(ctx context.Context, client *http.Client, url string, redirectOK bool) error {
	// Each attempt gets its own short deadline so one hung attempt
	// cannot use up the whole budget.
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) && ue.Unwrap() != nil {
			return ue.Unwrap()
		}
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case redirectOK && resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil
	}
	return fmt.Errorf("status %s", resp.Status)
}
