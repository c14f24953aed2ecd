package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hacompile/hacompile/internal/secret"
)

// checkHealth polls url until it answers 2xx (or 3xx when redirectOK)
// or timeout passes. Redirects are not followed: a balancer redirecting
// plain HTTP to HTTPS has answered with its configuration loaded.
func checkHealth(ctx context.Context, url string, redirectOK, proxyV1 bool, timeout time.Duration, dial func(ctx context.Context, network, addr string) (net.Conn, error)) error {
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	if proxyV1 {
		dial = withPROXY(dial)
	}
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
			return fmt.Errorf("GET %s: not healthy within %s: %w", secret.RedactURL(url), timeout, last)
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

// withPROXY wraps dial so that each TCP connection starts with a PROXY
// protocol v1 header naming its own two ends, as a provider's balancer
// sends it ahead of each connection, health checks included.
func withPROXY(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		src, ok1 := c.LocalAddr().(*net.TCPAddr)
		dst, ok2 := c.RemoteAddr().(*net.TCPAddr)
		if !ok1 || !ok2 {
			c.Close()
			return nil, fmt.Errorf("PROXY header: %s is not a TCP connection", addr)
		}
		fam := "TCP4"
		if src.IP.To4() == nil {
			fam = "TCP6"
		}
		if _, err := fmt.Fprintf(c, "PROXY %s %s %s %d %d\r\n", fam, src.IP, dst.IP, src.Port, dst.Port); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
}
