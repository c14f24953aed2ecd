package gitops

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// RevisionForms says which revisions Resolve accepts, for messages.
const RevisionForms = "a branch, tag or other ref (main, v1.2, origin/main, refs/heads/main, HEAD, @) or a commit hash (full, or at least 4 hex digits), " +
	"optionally followed by ~N (the N-th first-parent ancestor) and ^N (the N-th parent), as in HEAD~2 or main^2~1"

// minAbbrev is the fewest hex digits git takes as an abbreviated hash.
const minAbbrev = 4

// RevisionSyntaxError is a revision written in a form Resolve does not
// resolve (a reflog entry, a path, a range, a search): a usage error,
// found before the repository is read. go-git's own resolver skips the
// parts it does not know and answers with another commit, which is
// why hacompile resolves revisions itself and refuses everything else.
type RevisionSyntaxError struct {
	Rev    string
	Reason string
	// Git is set when git resolves the form to a commit: then the
	// message suggests resolving it with git first.
	Git bool
}

func (e *RevisionSyntaxError) Error() string {
	msg := fmt.Sprintf("revision %q: %s; use %s", e.Rev, e.Reason, RevisionForms)
	if e.Git && !strings.Contains(e.Rev, "'") {
		peel := "^{commit}"
		if strings.HasPrefix(e.Rev, ":/") {
			peel = "" // the rest of :/TEXT is the pattern, and names a commit
		}
		msg += fmt.Sprintf(", or let git resolve it: \"$(git rev-parse --verify '%s%s')\"", e.Rev, peel)
	}
	return msg
}

// revStep is one ~N or ^N after a revision's ref or hash.
type revStep struct {
	op   byte   // '~' or '^'
	n    int    // N: ancestors to walk (~) or which parent (^, 0 is the commit itself)
	upto string // the revision up to and including this step, for messages
}

// parsedRev is a revision in the accepted forms: a ref or hash, then
// steps.
type parsedRev struct {
	base  string
	steps []revStep
}

// CheckRevision reports whether rev is written in a form Resolve
// accepts (RevisionForms), without reading any repository: nil, or a
// *RevisionSyntaxError saying what is not supported.
func CheckRevision(rev string) error {
	_, err := parseRevision(rev)
	return err
}

func parseRevision(rev string) (parsedRev, error) {
	bad := func(reason string, git bool) (parsedRev, error) {
		return parsedRev{}, &RevisionSyntaxError{Rev: rev, Reason: reason, Git: git}
	}
	switch {
	case rev == "":
		return bad("empty", false)
	case strings.Contains(rev, ".."):
		return bad("a range (A..B, A...B) is not one revision", false)
	case strings.HasPrefix(rev, ":/"):
		return bad("a search of commit messages (:/TEXT) is not supported", true)
	case strings.Contains(rev, "@{"):
		return bad("reflog and branch-relation forms (@{N}, @{DATE}, @{-N}, @{upstream}, @{push}) are not supported", true)
	case strings.Contains(rev, ":"):
		return bad("a path or index entry (REV:PATH, :N:PATH) names a file, not a commit", false)
	case strings.Contains(rev, "^{/"):
		return bad("a search of commit messages (^{/TEXT}) is not supported", true)
	case strings.HasPrefix(rev, "^") || strings.HasSuffix(rev, "^!") || strings.HasSuffix(rev, "^@") || strings.Contains(rev, "^-"):
		return bad("a range or exclusion (^REV, REV^!, REV^@, REV^-N) is not one revision", false)
	}
	i := strings.IndexAny(rev, "~^")
	if i < 0 {
		i = len(rev)
	}
	p := parsedRev{base: rev[:i]}
	if p.base == "" {
		return bad("~ and ^ need a ref or commit hash before them", false)
	}
	if p.base == "@" {
		p.base = "HEAD"
	} else if !validRefName(p.base) {
		return bad(fmt.Sprintf("%q is not a valid ref name or commit hash", p.base), false)
	}
	for s := rev[i:]; s != ""; {
		op := s[0]
		if op != '~' && op != '^' {
			return bad(fmt.Sprintf("%q after %q is not supported", s, rev[:len(rev)-len(s)]), false)
		}
		s = s[1:]
		if op == '^' && (strings.HasPrefix(s, "{}") || strings.HasPrefix(s, "{commit}")) {
			// Peeling to a commit: every revision resolves to one.
			s = s[strings.IndexByte(s, '}')+1:]
			continue
		}
		if op == '^' && strings.HasPrefix(s, "{") {
			end := strings.IndexByte(s, '}')
			if end < 0 {
				end = len(s) - 1
			}
			return bad(fmt.Sprintf("^%s is not supported (only ^{commit} and ^{} are: a revision must name a commit)", s[:end+1]), false)
		}
		d := 0
		for d < len(s) && s[d] >= '0' && s[d] <= '9' {
			d++
		}
		n := 1
		if d > 0 {
			var err error
			if n, err = strconv.Atoi(s[:d]); err != nil {
				return bad(fmt.Sprintf("%c%s: the number is too large", op, s[:d]), false)
			}
		}
		s = s[d:]
		p.steps = append(p.steps, revStep{op: op, n: n, upto: rev[:len(rev)-len(s)]})
	}
	return p, nil
}

// validRefName reports whether name may name a ref, as
// git check-ref-format --allow-onelevel would.
func validRefName(name string) bool {
	if name == "HEAD" {
		return true
	}
	if !strings.HasPrefix(name, "refs/") {
		// As a branch, so a name starting with "-" is refused too.
		name = "refs/heads/" + name
	}
	return plumbing.ReferenceName(name).Validate() == nil
}

// Resolve finds the commit a revision names (RevisionForms): a ref,
// found by git's rules (HEAD or refs/NAME, then refs/tags/NAME,
// refs/heads/NAME, refs/remotes/NAME, refs/remotes/NAME/HEAD), else a
// full or abbreviated commit hash, then each ~N and ^N. An annotated
// tag names the commit it tags. Any other form is a
// *RevisionSyntaxError; a revision naming no commit, or more than one,
// is an error saying why.
func (r *Repo) Resolve(rev string) (Rev, error) {
	p, err := parseRevision(rev)
	if err != nil {
		return Rev{}, err
	}
	c, err := r.resolveBase(rev, p.base)
	if err != nil {
		return Rev{}, err
	}
	at := p.base
	for _, s := range p.steps {
		switch {
		case s.op == '~':
			for i := 0; i < s.n; i++ {
				if c.NumParents() == 0 {
					root := at
					if i > 0 {
						root = fmt.Sprintf("%s~%d", at, i)
					}
					return Rev{}, fmt.Errorf("unknown revision %q: no such commit: the first-parent history of %s has %d %s (%s is its root)",
						rev, at, i+1, plural(i+1, "commit", "commits"), root)
				}
				if c, err = r.parent(rev, c, 0); err != nil {
					return Rev{}, err
				}
			}
		case s.n > 0:
			if np := c.NumParents(); np < s.n {
				has := "no parent (it is a root commit)"
				if np > 0 {
					has = fmt.Sprintf("only %d %s", np, plural(np, "parent", "parents"))
				}
				return Rev{}, fmt.Errorf("unknown revision %q: no such commit: %s (%s) has %s", rev, at, c.Hash.String()[:12], has)
			}
			if c, err = r.parent(rev, c, s.n-1); err != nil {
				return Rev{}, err
			}
		}
		at = s.upto
	}
	return Rev{Name: rev, Commit: c}, nil
}

// parent is c's i-th parent (from 0), or why it is not in the
// repository: a shallow clone's history stops at c.
func (r *Repo) parent(rev string, c *object.Commit, i int) (*object.Commit, error) {
	h := c.ParentHashes[i]
	p, err := r.Git.CommitObject(h)
	if err == nil {
		return p, nil
	}
	if errors.Is(err, plumbing.ErrObjectNotFound) {
		if shallow, serr := r.Git.Storer.Shallow(); serr == nil && containsHash(shallow, c.Hash) {
			return nil, fmt.Errorf("revision %q: the history stops at %s: this repository is a shallow clone without its parent %s; fetch more history (git fetch --deepen=N, or --unshallow)",
				rev, c.Hash.String()[:12], h.String()[:12])
		}
		return nil, fmt.Errorf("revision %q: commit %s, a parent of %s, is missing from the repository", rev, h.String()[:12], c.Hash.String()[:12])
	}
	return nil, fmt.Errorf("revision %q: reading commit %s: %w", rev, h.String()[:12], err)
}

func containsHash(hs []plumbing.Hash, h plumbing.Hash) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

// resolveBase finds the commit base (a ref or hash) names, as git
// rev-parse does: a full hash is an object name; otherwise a ref,
// then an abbreviated hash of at least minAbbrev digits that matches
// exactly one commit.
func (r *Repo) resolveBase(rev, base string) (*object.Commit, error) {
	hexDigits := isHex(base)
	if hexDigits && len(base) == len(plumbing.ZeroHash)*2 {
		c, err := r.peelToCommit(plumbing.NewHash(base))
		if err != nil {
			return nil, fmt.Errorf("unknown revision %q: %w", rev, err)
		}
		return c, nil
	}
	var firstErr error
	for _, rule := range plumbing.RefRevParseRules {
		if rule == "%s" && !(base == "HEAD" || strings.HasPrefix(base, "refs/") || rootRefSyntax(base)) {
			// git reads only HEAD-like names at the top of .git (not
			// .git/config or .git/index).
			continue
		}
		name := plumbing.ReferenceName(fmt.Sprintf(rule, base))
		ref, err := storer.ResolveReference(r.Git.Storer, name)
		if err != nil {
			if !errors.Is(err, plumbing.ErrReferenceNotFound) && firstErr == nil {
				firstErr = fmt.Errorf("reading %s: %w", name, err)
			}
			continue
		}
		c, err := r.peelToCommit(ref.Hash())
		if err != nil {
			return nil, fmt.Errorf("revision %q: %s: %w", rev, name, err)
		}
		return c, nil
	}
	if hexDigits && len(base) >= minAbbrev {
		return r.resolveAbbrev(rev, base)
	}
	if firstErr != nil {
		return nil, fmt.Errorf("unknown revision %q: %w", rev, firstErr)
	}
	if base == "HEAD" {
		if _, err := r.Head(); errors.Is(err, ErrNoCommits) {
			return nil, fmt.Errorf("unknown revision %q: %w", rev, ErrNoCommits)
		}
	}
	if hexDigits {
		return nil, fmt.Errorf("unknown revision %q: %w (an abbreviated commit hash needs at least %d hex digits)", rev, plumbing.ErrReferenceNotFound, minAbbrev)
	}
	return nil, fmt.Errorf("unknown revision %q: %w", rev, plumbing.ErrReferenceNotFound)
}

// resolveAbbrev finds the one commit whose hash starts with prefix (or
// annotated tag of one, as git's commit-ish disambiguation does).
func (r *Repo) resolveAbbrev(rev, prefix string) (*object.Commit, error) {
	prefix = strings.ToLower(prefix)
	var commits []*object.Commit
	var others []string
	for _, h := range r.hashesWithPrefix(prefix) {
		c, err := r.peelToCommit(h)
		if err != nil {
			others = append(others, err.Error())
			continue
		}
		if !slicesContainsCommit(commits, c) {
			commits = append(commits, c)
		}
	}
	switch {
	case len(commits) == 1:
		return commits[0], nil
	case len(commits) > 1:
		var hs []string
		for _, c := range commits {
			hs = append(hs, c.Hash.String()[:12])
		}
		return nil, fmt.Errorf("ambiguous revision %q: the abbreviated hash matches %d commits (%s); give more digits",
			rev, len(commits), strings.Join(hs, ", "))
	case len(others) == 1:
		return nil, fmt.Errorf("revision %q: %s", rev, others[0])
	}
	return nil, fmt.Errorf("unknown revision %q: %w", rev, plumbing.ErrReferenceNotFound)
}

func slicesContainsCommit(cs []*object.Commit, c *object.Commit) bool {
	for _, x := range cs {
		if x.Hash == c.Hash {
			return true
		}
	}
	return false
}

// hashesWithPrefix lists the objects whose hash starts with the hex
// digits prefix.
func (r *Repo) hashesWithPrefix(prefix string) []plumbing.Hash {
	type fast interface {
		HashesWithPrefix(prefix []byte) ([]plumbing.Hash, error)
	}
	var candidates []plumbing.Hash
	if f, ok := r.Git.Storer.(fast); ok {
		b := make([]byte, len(prefix)/2)
		for i := range b {
			v, _ := strconv.ParseUint(prefix[2*i:2*i+2], 16, 8)
			b[i] = byte(v)
		}
		hs, err := f.HashesWithPrefix(b)
		if err == nil {
			candidates = hs
		}
	} else if iter, err := r.Git.Storer.IterEncodedObjects(plumbing.AnyObject); err == nil {
		_ = iter.ForEach(func(o plumbing.EncodedObject) error {
			candidates = append(candidates, o.Hash())
			return nil
		})
	}
	var out []plumbing.Hash
	for _, h := range candidates {
		if strings.HasPrefix(h.String(), prefix) && !containsHash(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// peelToCommit is the commit h names: h itself, or what the annotated
// tag h tags (through tags of tags).
func (r *Repo) peelToCommit(h plumbing.Hash) (*object.Commit, error) {
	for range 16 {
		o, err := r.Git.Object(plumbing.AnyObject, h)
		if errors.Is(err, plumbing.ErrObjectNotFound) {
			return nil, fmt.Errorf("no object %s in the repository", h)
		}
		if err != nil {
			return nil, fmt.Errorf("reading object %s: %w", h.String()[:12], err)
		}
		switch o := o.(type) {
		case *object.Commit:
			return o, nil
		case *object.Tag:
			h = o.Target
		default:
			return nil, fmt.Errorf("%s is a %s, not a commit", h.String()[:12], o.Type())
		}
	}
	return nil, fmt.Errorf("tag %s: too many tags of tags", h.String()[:12])
}

// rootRefSyntax reports whether name is written like the refs git keeps
// at the top of .git: capitals and underscores (FETCH_HEAD, ORIG_HEAD).
func rootRefSyntax(name string) bool {
	for _, c := range name {
		if (c < 'A' || c > 'Z') && c != '_' {
			return false
		}
	}
	return strings.HasSuffix(name, "HEAD")
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
