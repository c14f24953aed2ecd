package outdir

import (
	"crypto/sha256"
	"path/filepath"
	"slices"
	"sync"
)

// Checker is Compare fed one file at a time, as a build renders them:
// each file is compared with dir as it is offered and can be dropped
// after, so that build --check of a large fleet need not hold the whole
// tree. It writes nothing. Put may be called from several goroutines at
// once; Diff, after the last Put, gives what Compare would have given
// for the tree of every file offered.
type Checker struct {
	dir  string
	have map[string]bool // files under dir, within the scope
	mu   sync.Mutex
	seen map[string]bool // tree paths offered
	d    Diff
}

// NewChecker lists dir (within the top-level directories in scope, all
// of dir when none are given) for a comparison.
func NewChecker(dir string, scope ...string) (*Checker, error) {
	have, err := existing(dir)
	if err != nil {
		return nil, err
	}
	return &Checker{dir: dir, have: inScope(have, scope), seen: map[string]bool{}}, nil
}

// Put compares the file at tree path p with b. A path offered again is
// compared again and counted once, as in a tree.
func (c *Checker) Put(p string, b []byte) error {
	if !c.have[p] {
		c.note(p, &c.d.Missing)
		return nil
	}
	stale, err := differs(filepath.Join(c.dir, filepath.FromSlash(p)), b)
	if err != nil {
		return err
	}
	if stale {
		c.note(p, &c.d.Stale)
	} else {
		c.note(p, nil)
	}
	return nil
}

// PutSum is Put; the digest is not needed to compare.
func (c *Checker) PutSum(p string, b []byte, _ [sha256.Size]byte) error { return c.Put(p, b) }

func (c *Checker) note(p string, list *[]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[p] {
		return
	}
	c.seen[p] = true
	if list != nil {
		*list = append(*list, p)
	}
}

// Diff is every stale, missing and extra file, each list sorted.
func (c *Checker) Diff() Diff {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := Diff{Stale: slices.Sorted(slices.Values(c.d.Stale)), Missing: slices.Sorted(slices.Values(c.d.Missing))}
	for p := range c.have {
		if !c.seen[p] {
			d.Extra = append(d.Extra, p)
		}
	}
	slices.Sort(d.Extra)
	return d
}
