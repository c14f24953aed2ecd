package push

import (
	"fmt"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/termtext"
	"io"
	"io/fs"
	"slices"
	"strings"
)

// Plan is what a push or rollback will do on one host. It is computed
// from the host's files as they are, before anything is written, and is
// deterministic: changes are sorted by path and commands by first use.
type Plan struct {
	Host       string   `json:"host"`
	Endpoint   string   `json:"endpoint"`
	Changes    []Change `json:"changes"`
	Unchanged  int      `json:"unchanged"`
	Drift      []string `json:"drift,omitempty"`
	Notes      []string `json:"notes,omitempty"`
	Validate   []string `json:"validate,omitempty"`
	Reload     []string `json:"reload,omitempty"`
	Generation int      `json:"generation,omitempty"` // the generation it will record
	Resume     bool     `json:"resume,omitempty"`     // continues a generation an earlier push left unfinished
	Reverts    int      `json:"reverts,omitempty"`    // rollback: the generation undone

	// wants holds the content to write, by path (not serialised).
	wants map[string]*desired
	// olds holds what each changed path held when planned.
	olds map[string]remoteFile
	// rootSkipped notes the commands left out under a root prefix.
	rootSkipped string
}

// Counts returns how many files the plan creates, updates and removes.
func (p *Plan) Counts() (created, updated, removed int) {
	for _, c := range p.Changes {
		switch c.Action {
		case "create":
			created++
		case "update":
			updated++
		case "remove":
			removed++
		}
	}
	return
}

// Format writes the plan as text, one line per change:
//
//	app1 (root@10.0.0.11:22): 1 to create, 1 to update, 0 to remove, 6 unchanged
//	  + /etc/shop/gunicorn.conf.py (0644 root:root)
//	  ~ /etc/nginx/nginx.conf (content)
func (p *Plan) Format(w io.Writer) {
	c, u, r := p.Counts()
	fmt.Fprintf(w, "%s (%s): %d to create, %d to update, %d to remove, %d unchanged", p.Host, p.Endpoint, c, u, r, p.Unchanged)
	if p.Reverts > 0 {
		fmt.Fprintf(w, ", reverting generation %d", p.Reverts)
	}
	fmt.Fprintln(w)
	for _, ch := range p.Changes {
		switch ch.Action {
		case "create":
			fmt.Fprintf(w, "  + %s (%s %s)\n", ch.Path, ch.New.Mode, ch.New.Owner)
		case "update":
			fmt.Fprintf(w, "  ~ %s (%s)\n", ch.Path, ch.Reason)
		case "remove":
			fmt.Fprintf(w, "  - %s\n", ch.Path)
		}
	}
	for _, d := range p.Drift {
		fmt.Fprintf(w, "  ! drift: %s\n", d)
	}
	if len(p.Validate) > 0 {
		fmt.Fprintf(w, "  validate: %s\n", strings.Join(p.Validate, "; "))
	}
	if len(p.Reload) > 0 {
		fmt.Fprintf(w, "  reload: %s\n", strings.Join(p.Reload, "; "))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// desired is what a path should hold; nil in a pathPlan means absent.
type desired struct {
	Content []byte
	Mode    fs.FileMode
	Owner   string // user:group, for the record
	UID     int    // -1: ownership is not applied
	GID     int
}

// expectation is a state push believes a managed path is in: what it
// last wrote (or, during a rollback, what the undone generation wrote).
type expectation struct {
	Absent bool
	SHA256 string
	Mode   string
	// Owned: UID and GID are the owner push applied; without it the
	// owner is not known (ownership was not applied) and not checked.
	Owned    bool
	UID, GID int
}

func (e expectation) matches(f remoteFile) bool {
	if e.Absent {
		return !f.Exists
	}
	if e.Owned && (f.UID != e.UID || f.GID != e.GID) {
		return false
	}
	return f.regular() && f.SHA256 == e.SHA256 && modeString(f.Mode) == e.Mode
}

func expectOf(s *FileState) expectation {
	if s == nil {
		return expectation{Absent: true}
	}
	e := expectation{SHA256: s.SHA256, Mode: s.Mode}
	if s.UID >= 0 && s.GID >= 0 {
		e.Owned, e.UID, e.GID = true, s.UID, s.GID
	}
	return e
}

// pathPlan is everything known about one path when planning.
type pathPlan struct {
	Path   string
	Want   *desired
	Expect []expectation // empty: push has never managed the path
	Have   remoteFile
	// Validate and Reload are the commands of the path's manifest
	// entries, new and old.
	Validate, Reload []artifact.Action
}

// planPath decides one path: no change, or a Change; drift is non-empty
// when the path was changed on the host behind push's back.
func planPath(pp pathPlan) (ch *Change, drift string, err error) {
	have := pp.Have
	if have.Exists && !have.regular() {
		if have.Mode&fs.ModeSymlink != 0 {
			return nil, "", fmt.Errorf("%s is a symlink (to %s): refusing to write through it: %w", pp.Path, termtext.Escape(have.Link), ErrUnsafeTarget)
		}
		return nil, "", fmt.Errorf("%s is a %s, not a regular file: %w", pp.Path, kindOf(have.Mode), ErrUnsafeTarget)
	}
	w := pp.Want
	if w == nil && !have.Exists {
		return nil, "", nil
	}
	var reasons []string
	if w != nil && have.Exists {
		if have.SHA256 != sha(w.Content) {
			reasons = append(reasons, "content")
		}
		if have.Mode.Perm() != w.Mode.Perm() {
			reasons = append(reasons, "mode "+modeString(have.Mode)+" → "+modeString(w.Mode))
		}
		if w.UID >= 0 && (have.UID != w.UID || have.GID != w.GID) {
			reasons = append(reasons, fmt.Sprintf("owner %d:%d → %s", have.UID, have.GID, w.Owner))
		}
		if len(reasons) == 0 {
			return nil, "", nil
		}
	}
	if len(pp.Expect) > 0 && !slices.ContainsFunc(pp.Expect, func(e expectation) bool { return e.matches(have) }) {
		if have.Exists {
			now := fmt.Sprintf("sha256 %.12s mode %s", have.SHA256, modeString(have.Mode))
			if slices.ContainsFunc(pp.Expect, func(e expectation) bool { return e.Owned }) {
				now += fmt.Sprintf(" owner %d:%d", have.UID, have.GID)
			}
			drift = fmt.Sprintf("%s was changed on the host since the last push (now %s; pushed %s)", pp.Path, now, describeExpect(pp.Expect))
		} else {
			drift = fmt.Sprintf("%s was deleted on the host since the last push", pp.Path)
		}
	}
	ch = &Change{Path: pp.Path, Validate: pp.Validate, Reload: pp.Reload}
	if have.Exists {
		ch.Old = &FileState{SHA256: have.SHA256, Size: len(have.Content), Mode: modeString(have.Mode), UID: have.UID, GID: have.GID}
	}
	if w != nil {
		ch.New = &FileState{SHA256: sha(w.Content), Size: len(w.Content), Mode: modeString(w.Mode), Owner: w.Owner, UID: w.UID, GID: w.GID}
	}
	switch {
	case w == nil:
		ch.Action = "remove"
	case !have.Exists:
		ch.Action = "create"
	default:
		ch.Action, ch.Reason = "update", strings.Join(reasons, ", ")
	}
	return ch, drift, nil
}

func describeExpect(es []expectation) string {
	var parts []string
	for _, e := range es {
		if e.Absent {
			parts = append(parts, "absent")
		} else {
			s := fmt.Sprintf("sha256 %.12s mode %s", e.SHA256, e.Mode)
			if e.Owned {
				s += fmt.Sprintf(" owner %d:%d", e.UID, e.GID)
			}
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, " or ")
}

func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// appendActions appends the actions not yet in list, skipping empty ones.
func appendActions(list []artifact.Action, as ...artifact.Action) []artifact.Action {
	for _, a := range as {
		if !a.IsZero() && !slices.ContainsFunc(list, a.Equal) {
			list = append(list, a)
		}
	}
	return list
}
