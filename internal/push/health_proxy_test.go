package push

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A listener that expects a PROXY v1 header (as nginx's `listen …
// proxy_protocol` does behind a DigitalOcean balancer) answers push's
// health check only when push sends one, naming the connection's ends.
func TestHealthPROXY(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	headers := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				line, _ := br.ReadString('\n')
				headers <- line
				want := fmt.Sprintf("PROXY TCP4 %s %s ", c.RemoteAddr().(*net.TCPAddr).IP, c.LocalAddr().(*net.TCPAddr).IP)
				if !strings.HasPrefix(line, want) || !strings.HasSuffix(line, fmt.Sprintf(" %d\r\n", c.LocalAddr().(*net.TCPAddr).Port)) {
					fmt.Fprint(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					return
				}
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
			}()
		}
	}()
	url := "http://" + ln.Addr().String() + "/healthz"
	if err := checkHealth(context.Background(), url, false, true, 3*time.Second, nil); err != nil {
		t.Fatalf("with the PROXY header: %v", err)
	}
	if h := <-headers; !strings.HasPrefix(h, "PROXY TCP4 127.0.0.1 127.0.0.1 ") {
		t.Errorf("header sent: %q", h)
	}
	err = checkHealth(context.Background(), url, false, false, time.Second, nil)
	if err == nil || !strings.Contains(err.Error(), "400") {
		t.Fatalf("without the header the listener must refuse the check, got %v", err)
	}
}

// A health URL with a user and password checks with them, and a failed
// check's message does not show the password.
func TestHealthURLPassword(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "mon" || p != "hunter2" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	url := strings.Replace(srv.URL, "http://", "http://mon:hunter2@", 1) + "/healthz"
	if err := checkHealth(context.Background(), url, false, false, 3*time.Second, nil); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	status.Store(http.StatusServiceUnavailable)
	err := checkHealth(context.Background(), url, false, false, 300*time.Millisecond, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "GET http://mon:xxxxx@") {
		t.Errorf("unhealthy: %v, want GET http://mon:xxxxx@…, no password", err)
	}
}
