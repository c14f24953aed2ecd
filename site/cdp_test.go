package site_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/hacompile/hacompile/internal/testtool"
)

// A small Chrome DevTools Protocol client over --remote-debugging-pipe:
// Chromium reads NUL-terminated JSON commands from fd 3 and writes
// replies and events to fd 4. No port, no websocket, no dependency.

type cdpEvent struct {
	Method    string          `json:"method"`
	Params    json.RawMessage `json:"params"`
	SessionID string          `json:"sessionId"`
}

type cdpMsg struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	cdpEvent
}

type browser struct {
	cmd    *exec.Cmd
	w      io.WriteCloser
	stderr *bytes.Buffer

	mu      sync.Mutex
	cond    *sync.Cond
	next    int
	replies map[int]cdpMsg
	events  []cdpEvent
	closed  error
}

// startChromium starts headless Chromium with the network shut off
// from everything but the test's own loopback server.
func startChromium(t *testing.T) *browser {
	t.Helper()
	bin := testtool.Require(t, "chromium", "chromium")
	toChrome, chromeIn, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	chromeOut, fromChrome, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &browser{w: chromeIn, stderr: &bytes.Buffer{}, replies: map[int]cdpMsg{}}
	b.cond = sync.NewCond(&b.mu)
	b.cmd = exec.Command(bin,
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
		"--hide-scrollbars", "--mute-audio", "--remote-debugging-pipe",
		"--user-data-dir="+t.TempDir(), "about:blank")
	b.cmd.ExtraFiles = []*os.File{toChrome, fromChrome}
	b.cmd.Stderr = b.stderr
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	toChrome.Close()
	fromChrome.Close()
	go b.read(chromeOut)
	t.Cleanup(func() {
		chromeIn.Close()
		done := make(chan struct{})
		go func() { b.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			b.cmd.Process.Kill()
			<-done
		}
	})
	return b
}

func (b *browser) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.closed = fmt.Errorf("chromium closed the pipe: %v", err)
			b.cond.Broadcast()
			b.mu.Unlock()
			return
		}
		var m cdpMsg
		if json.Unmarshal(raw[:len(raw)-1], &m) != nil {
			continue
		}
		b.mu.Lock()
		if m.ID != 0 {
			b.replies[m.ID] = m
		} else {
			b.events = append(b.events, m.cdpEvent)
		}
		b.cond.Broadcast()
		b.mu.Unlock()
	}
}

// wait blocks until cond holds (checked under the lock) or ctx ends.
func (b *browser) wait(ctx context.Context, cond func() bool) error {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.cond.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for !cond() {
		if b.closed != nil {
			return b.closed
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.cond.Wait()
	}
	return nil
}

// call sends a command (to a session, or to the browser when session
// is empty) and decodes its result into out.
func (b *browser) call(ctx context.Context, session, method string, params any, out any) error {
	b.mu.Lock()
	b.next++
	id := b.next
	b.mu.Unlock()
	msg := map[string]any{"id": id, "method": method, "params": params}
	if params == nil {
		msg["params"] = map[string]any{}
	}
	if session != "" {
		msg["sessionId"] = session
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if _, err := b.w.Write(append(raw, 0)); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	// A bound against a hung browser, not a measure of speed: under a
	// CI run's load (system test containers booting beside it) a page
	// that loads the search index once took over 20 s.
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var reply cdpMsg
	err = b.wait(ctx, func() bool {
		r, ok := b.replies[id]
		if ok {
			reply = r
			delete(b.replies, id)
		}
		return ok
	})
	if err != nil {
		return fmt.Errorf("%s: %w (chromium stderr: %s)", method, err, b.stderr.String())
	}
	if reply.Error != nil {
		return fmt.Errorf("%s: %s (%d)", method, reply.Error.Message, reply.Error.Code)
	}
	if out != nil {
		return json.Unmarshal(reply.Result, out)
	}
	return nil
}

// mark returns the position in the event log, for eventsSince.
func (b *browser) mark() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.events)
}

func (b *browser) eventsSince(i int, session string) []cdpEvent {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []cdpEvent
	for _, e := range b.events[i:] {
		if e.SessionID == session {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an event of the session after mark.
func (b *browser) waitEvent(ctx context.Context, session, method string, mark int) error {
	// A bound against a hung browser, not a measure of speed: under a
	// CI run's load (system test containers booting beside it) a page
	// that loads the search index once took over 20 s.
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	return b.wait(ctx, func() bool {
		for _, e := range b.events[mark:] {
			if e.SessionID == session && e.Method == method {
				return true
			}
		}
		return false
	})
}

// tab is one page target with the domains the test listens to.
type tab struct {
	b       *browser
	session string
}

func (b *browser) newTab(ctx context.Context, width, height int) (*tab, error) {
	var created struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &created); err != nil {
		return nil, err
	}
	var attached struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ctx, "", "Target.attachToTarget", map[string]any{"targetId": created.TargetID, "flatten": true}, &attached); err != nil {
		return nil, err
	}
	t := &tab{b: b, session: attached.SessionID}
	for _, m := range []string{"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"} {
		if err := t.call(ctx, m, nil, nil); err != nil {
			return nil, err
		}
	}
	err := t.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}, nil)
	return t, err
}

func (t *tab) call(ctx context.Context, method string, params, out any) error {
	return t.b.call(ctx, t.session, method, params, out)
}

// navigate loads url and waits for its load event; it returns the
// events the page produced meanwhile.
func (t *tab) navigate(ctx context.Context, url string) ([]cdpEvent, error) {
	mark := t.b.mark()
	var nav struct {
		ErrorText string `json:"errorText"`
	}
	if err := t.call(ctx, "Page.navigate", map[string]any{"url": url}, &nav); err != nil {
		return nil, err
	}
	if nav.ErrorText != "" {
		return nil, fmt.Errorf("navigating to %s: %s", url, nav.ErrorText)
	}
	if err := t.b.waitEvent(ctx, t.session, "Page.loadEventFired", mark); err != nil {
		return nil, fmt.Errorf("waiting for %s to load: %w", url, err)
	}
	return t.b.eventsSince(mark, t.session), nil
}

// eval evaluates a JavaScript expression and decodes its value.
func (t *tab) eval(ctx context.Context, expr string, out any) error {
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := t.call(ctx, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r); err != nil {
		return err
	}
	if r.ExceptionDetails != nil {
		return fmt.Errorf("evaluating %q: %s", expr, r.ExceptionDetails.Text)
	}
	if out != nil {
		return json.Unmarshal(r.Result.Value, out)
	}
	return nil
}

// problems lists the failed requests, console errors and uncaught
// exceptions among a page's events.
func problems(events []cdpEvent) []string {
	var out []string
	for _, e := range events {
		switch e.Method {
		case "Network.loadingFailed":
			var p struct {
				ErrorText string `json:"errorText"`
				Canceled  bool   `json:"canceled"`
			}
			json.Unmarshal(e.Params, &p)
			out = append(out, "request failed: "+p.ErrorText)
		case "Network.responseReceived":
			var p struct {
				Response struct {
					URL    string `json:"url"`
					Status int    `json:"status"`
				} `json:"response"`
			}
			json.Unmarshal(e.Params, &p)
			if p.Response.Status >= 400 {
				out = append(out, fmt.Sprintf("HTTP %d for %s", p.Response.Status, p.Response.URL))
			}
		case "Runtime.exceptionThrown":
			out = append(out, "exception: "+string(e.Params))
		case "Runtime.consoleAPICalled":
			var p struct {
				Type string `json:"type"`
			}
			json.Unmarshal(e.Params, &p)
			if p.Type == "error" || p.Type == "assert" || p.Type == "warning" {
				out = append(out, "console "+p.Type+": "+string(e.Params))
			}
		case "Log.entryAdded":
			var p struct {
				Entry struct {
					Level string `json:"level"`
					Text  string `json:"text"`
					URL   string `json:"url"`
				} `json:"entry"`
			}
			json.Unmarshal(e.Params, &p)
			if p.Entry.Level == "error" || p.Entry.Level == "warning" {
				out = append(out, fmt.Sprintf("log %s: %s %s", p.Entry.Level, p.Entry.Text, p.Entry.URL))
			}
		}
	}
	return out
}
