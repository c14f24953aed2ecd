package push

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
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

// Notice prints line among the log's lines, never inside one: the hosts
// log theirs from their own goroutines.
func (l *LogProgress) Notice(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.w, line)
}

// TTYProgress keeps one line per host on a terminal and redraws them in
// place as hosts move through their phases. With more hosts than
// TTYMaxLines, it draws a count of hosts per phase instead, then one
// line per host being worked on (as many as fit).
type TTYProgress struct {
	mu     sync.Mutex
	w      io.Writer
	hosts  []string
	lines  map[string]string
	phases map[string]Phase
	drawn  int
	width  int
	colour bool
}

// TTYMaxLines is the most lines a TTYProgress draws.
const TTYMaxLines = 30

// NewTTYProgress returns a Progress drawing a block of lines, one per
// host in the order given, on the terminal w.
func NewTTYProgress(w io.Writer, hosts []string, colour bool) *TTYProgress {
	t := &TTYProgress{w: w, hosts: slices.Clone(hosts), lines: map[string]string{}, phases: map[string]Phase{}, colour: colour}
	for _, h := range hosts {
		t.width = max(t.width, len(h))
		t.lines[h] = string(PhaseWaiting)
		t.phases[h] = PhaseWaiting
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
	line := t.paint(phase)
	if detail != "" {
		line += " " + detail
	}
	t.lines[host] = line
	t.phases[host] = phase
	t.redraw()
}

func (t *TTYProgress) paint(phase Phase) string {
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
	return p
}

// phaseOrder is the order of the counts in the compact view.
var phaseOrder = []Phase{PhaseWaiting, PhaseConnecting, PhasePlanned, PhaseUploading, PhaseValidating, PhaseReloading,
	PhaseChecking, PhaseHealthy, PhaseUnchanged, PhaseRestored, PhaseFailed, PhaseSkipped}

func (t *TTYProgress) redraw() {
	rows := t.hosts
	var head []string
	if len(t.hosts) > TTYMaxLines {
		counts := map[Phase]int{}
		var active []string
		for _, h := range t.hosts {
			p := t.phases[h]
			counts[p]++
			switch p {
			case PhaseWaiting, PhasePlanned, PhaseHealthy, PhaseUnchanged, PhaseRestored, PhaseFailed, PhaseSkipped:
			default:
				active = append(active, h)
			}
		}
		var parts []string
		for _, p := range phaseOrder {
			if counts[p] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[p], t.paint(p)))
			}
		}
		head = append(head, fmt.Sprintf("%d hosts: %s", len(t.hosts), strings.Join(parts, ", ")))
		rows = active[:min(len(active), TTYMaxLines-1)]
	}
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", t.drawn)
	}
	for _, l := range head {
		fmt.Fprintf(&b, "\r\x1b[2K%s\n", l)
	}
	for _, h := range rows {
		line := strings.SplitN(t.lines[h], "\n", 2)[0]
		if len(line) > 100 {
			line = line[:100] + "…"
		}
		fmt.Fprintf(&b, "\r\x1b[2K%-*s  %s\n", t.width, h, line)
	}
	n := len(head) + len(rows)
	// Lines drawn before and no longer needed are cleared.
	for i := n; i < t.drawn; i++ {
		b.WriteString("\r\x1b[2K\n")
	}
	if t.drawn > n {
		fmt.Fprintf(&b, "\x1b[%dA", t.drawn-n)
	}
	t.drawn = n
	io.WriteString(t.w, b.String())
}

// Notice prints line above the block, which is drawn again below it:
// written beside the block, a line would be drawn over at the next
// update.
func (t *TTYProgress) Notice(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	if t.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", t.drawn)
	}
	b.WriteString("\r\x1b[J" + line + "\n")
	io.WriteString(t.w, b.String())
	t.drawn = 0
	t.redraw()
}

// ProgressFunc is a Progress of one function.
type ProgressFunc func(host string, phase Phase, detail string)

// Update implements Progress.
func (f ProgressFunc) Update(host string, phase Phase, detail string) { f(host, phase, detail) }

// JSONProgress writes one JSON object per line for each phase change:
// {"event":"phase","time":"…","host":"app1","phase":"uploading","detail":"0/7"},
// for tools that follow a rollout as it happens.
type JSONProgress struct {
	mu  sync.Mutex
	enc *json.Encoder
	now func() time.Time
}

// NewJSONProgress returns a Progress writing JSON lines to w.
func NewJSONProgress(w io.Writer) *JSONProgress {
	return &JSONProgress{enc: json.NewEncoder(w), now: time.Now}
}

// Event is one line of a JSONProgress.
type Event struct {
	Event  string `json:"event"` // "phase"
	Time   string `json:"time"`  // RFC 3339, UTC
	Host   string `json:"host"`
	Phase  Phase  `json:"phase"`
	Detail string `json:"detail,omitempty"`
}

// Update implements Progress. As in LogProgress, of the upload counts
// only the first ("16 files") is written.
func (j *JSONProgress) Update(host string, phase Phase, detail string) {
	if phase == PhaseUploading {
		n, ok := strings.CutPrefix(detail, "0/")
		if !ok {
			return
		}
		detail = n + " files"
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(Event{Event: "phase", Time: j.now().UTC().Format(time.RFC3339Nano), Host: host, Phase: phase, Detail: detail})
}

// Tee is a Progress passing each update to every one of its members.
type Tee []Progress

// Update implements Progress.
func (t Tee) Update(host string, phase Phase, detail string) {
	for _, p := range t {
		p.Update(host, phase, detail)
	}
}
