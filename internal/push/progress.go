package push

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
)

// Phase is where a host is in a push.
type Phase string

// The phases a host goes through, in order; a host ends in one of the
// last five.
const (
	PhaseWaiting    Phase = "waiting"
	PhaseConnecting Phase = "connecting"
	PhasePlanned    Phase = "planned"
	PhaseUploading  Phase = "uploading"
	PhaseValidating Phase = "validating"
	PhaseReloading  Phase = "reloading"
	PhaseChecking   Phase = "checking"
	PhaseHealthy    Phase = "healthy"
	PhaseUnchanged  Phase = "unchanged"
	PhaseRestored   Phase = "restored"
	PhaseFailed     Phase = "failed"
	PhaseSkipped    Phase = "skipped"
)

// Progress receives each host's phase changes. Calls come from several
// goroutines.
type Progress interface {
	Update(host string, phase Phase, detail string)
}

// LogProgress writes one plain line per phase change, for logs and
// pipes: "app1: uploading 2/7".
type LogProgress struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogProgress returns a Progress writing lines to w.
func NewLogProgress(w io.Writer) *LogProgress { return &LogProgress{w: w} }

// Update implements Progress. Repeated upload counts are left out so
// the log has one line per phase.
func (l *LogProgress) Update(host string, phase Phase, detail string) {
	if phase == PhaseUploading && !strings.HasPrefix(detail, "0/") {
		return
	}
	if phase == PhaseUploading {
		detail = strings.TrimPrefix(detail, "0/") + " files"
	}
	if phase == PhaseFailed {
		// The error itself is reported once, at the end.
		detail = ""
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if detail == "" {
		fmt.Fprintf(l.w, "%s: %s\n", host, phase)
		return
	}
	fmt.Fprintf(l.w, "%s: %s %s\n", host, phase, detail)
}

// TTYProgress keeps one line per host on a terminal and redraws them in
// place as hosts move through their phases.
type TTYProgress struct {
	mu     sync.Mutex
	w      io.Writer
	hosts  []string
	lines  map[string]string
	drawn  int
	width  int
	colour bool
}

// NewTTYProgress returns a Progress drawing a block of lines, one per
// host in the order given, on the terminal w.
func NewTTYProgress(w io.Writer, hosts []string, colour bool) *TTYProgress {
	t := &TTYProgress{w: w, hosts: slices.Clone(hosts), lines: map[string]string{}, colour: colour}
	for _, h := range hosts {
		t.width = max(t.width, len(h))
		t.lines[h] = string(PhaseWaiting)
	}
	return t
}

// Update implements Progress.
func (t *TTYProgress) Update(host string, phase Phase, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.lines[host]; !ok {
		t.hosts = append(t.hosts, host)
		t.width = max(t.width, len(host))
	}
	p := string(phase)
	if t.colour {
		switch phase {
		case PhaseHealthy, PhaseUnchanged:
			p = "\x1b[32m" + p + "\x1b[0m"
		case PhaseFailed, PhaseRestored:
			p = "\x1b[31m" + p + "\x1b[0m"
		case PhaseSkipped:
			p = "\x1b[33m" + p + "\x1b[0m"
		}
	}
	line := p
	if detail != "" {
		line += " " + detail
	}
	t.lines[host] = line
	t.redraw()
}

func (t *TTYProgress) redraw() {
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", t.drawn)
	}
	for _, h := range t.hosts {
		line := strings.SplitN(t.lines[h], "\n", 2)[0]
		if len(line) > 100 {
			line = line[:100] + "…"
		}
		fmt.Fprintf(&b, "\r\x1b[2K%-*s  %s\n", t.width, h, line)
	}
	t.drawn = len(t.hosts)
	io.WriteString(t.w, b.String())
}
