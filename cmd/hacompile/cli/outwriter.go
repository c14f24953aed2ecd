package cli

import (
	"crypto/sha256"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/outdir"
	"github.com/hacompile/hacompile/schema"
)

// outWriter is the writer of a build's out/, made when first needed:
// while the stacks compile, when their cloud-init documents are handed
// over as they are made (hand), or else once the compile is done.
// Everything a failed build wrote is staged, and abort removes it.
type outWriter struct {
	listing *outdir.Listing
	index   *outdir.IndexLoad // the last build's digests, or nil (--no-cache)
	once    sync.Once
	w       *outdir.Writer
	err     error
	mu      sync.Mutex
	handed  map[string]artifact.Handed   // tree paths written by hand or reused, with what they hold
	keys    map[string][sha256.Size]byte // keys of files asked to reuse and not reused, for hand
	// failed are the distinct errors of out/ that hand and reuse
	// returned: the compile reports them once per host, in its stacks'
	// names, and the build reports them once each instead (failure).
	failMu sync.Mutex
	failed []error
}

func newOutWriter(listing *outdir.Listing, index *outdir.IndexLoad) *outWriter {
	return &outWriter{listing: listing, index: index, handed: map[string]artifact.Handed{}, keys: map[string][sha256.Size]byte{}}
}

// get returns the writer, making it on the first call.
func (o *outWriter) get() (*outdir.Writer, error) {
	o.once.Do(func() {
		if o.w, o.err = outdir.NewListedWriter(o.listing); o.err == nil {
			o.w.UseIndex(o.index.Wait())
		}
	})
	return o.w, o.err
}

// prepare is compile.Options.Ready: it makes the writer in the
// background (get), once out/ is listed, while the generators run. At
// 10,000 hosts that takes a fifth of a second (the owner record's
// 170,000 paths, the listing's checks), which the cloud-init documents,
// the first files handed over, would otherwise wait for.
func (o *outWriter) prepare() { go o.get() }

// fail records err, an error of out/ that hand or reuse returns, and
// returns it.
func (o *outWriter) fail(err error) error {
	o.failMu.Lock()
	defer o.failMu.Unlock()
	if !slices.ContainsFunc(o.failed, func(e error) bool { return e.Error() == err.Error() }) {
		o.failed = append(o.failed, err)
	}
	return err
}

// failure is what stopped the compile if hand or reuse returned an
// error: out/'s errors, each once, in order of their text (they are
// about out/, not the stacks whose files met them); nil when neither
// did.
func (o *outWriter) failure() error {
	o.failMu.Lock()
	defer o.failMu.Unlock()
	errs := slices.Clone(o.failed)
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// hand is artifact.Options.Hand: it writes a file of stack s as it is
// made and returns it without its content. A stack compiled again in
// the same build (kept stacks that must compile after all) makes the
// same file again, written once.
func (o *outWriter) hand(s *schema.Stack, f artifact.File) (artifact.File, error) {
	w, err := o.get()
	if err != nil {
		return f, o.fail(err)
	}
	p := compile.OutPath(s.Name, f)
	sum := sha256.Sum256(f.Content)
	o.mu.Lock()
	_, again := o.handed[p]
	o.handed[p] = artifact.Handed{SHA256: sum, Size: len(f.Content)}
	key, keyed := o.keys[p]
	delete(o.keys, p)
	o.mu.Unlock()
	if !again {
		if keyed {
			err = w.PutSumKeyed(p, f.Content, sum, key)
		} else {
			err = w.PutSum(p, f.Content, sum)
		}
		if err != nil {
			// Not handed: a compile of the stack again in this build
			// (kept stacks that must compile after all) must meet the
			// same error, not take the file as written.
			o.mu.Lock()
			delete(o.handed, p)
			if keyed {
				o.keys[p] = key
			}
			o.mu.Unlock()
			return f, o.fail(err)
		}
	}
	return handedOff(f, sum), nil
}

// reuse is artifact.Options.Reuse: when out/ holds the file of stack s
// that the last build made from inputs, as that build left it, the
// file is kept and returned as hand returns it; else its key is kept
// for hand, which records it with the file (outdir.Writer.PutKeyed).
// The key also names this program (programID), whose generators made
// the file: without one nothing is reused.
func (o *outWriter) reuse(s *schema.Stack, f artifact.File, inputs [sha256.Size]byte) (artifact.File, bool, error) {
	id := programID()
	if id == "" {
		return f, false, nil
	}
	w, err := o.get()
	if err != nil {
		return f, false, o.fail(err)
	}
	p := compile.OutPath(s.Name, f)
	key := sha256.Sum256(append([]byte(id+"\x00"), inputs[:]...))
	o.mu.Lock()
	defer o.mu.Unlock()
	if h, again := o.handed[p]; again {
		// The same stack compiled again in this build: the same file.
		f.Handed = &h
		return f, true, nil
	}
	sum, size, ok := w.ReuseSum(p, key)
	if !ok {
		o.keys[p] = key
		return f, false, nil
	}
	h := artifact.Handed{SHA256: sum, Size: size}
	o.handed[p] = h
	f.Handed = &h
	return f, true, nil
}

// handedOff is f as Hand returns it: its content dropped, its digest
// and size kept.
func handedOff(f artifact.File, sum [sha256.Size]byte) artifact.File {
	f.Handed = &artifact.Handed{SHA256: sum, Size: len(f.Content)}
	f.Content = nil
	return f
}

// abort removes what the writer wrote, when it was made.
func (o *outWriter) abort() {
	o.once.Do(func() {}) // none is made after this
	if o.w != nil {
		o.w.Abort()
	}
}

// checkHand is artifact.Options.Hand for build --check: it compares a
// file of stack s with out/ as it is made and returns it without its
// content.
func checkHand(chk *outdir.Checker) func(*schema.Stack, artifact.File) (artifact.File, error) {
	return func(s *schema.Stack, f artifact.File) (artifact.File, error) {
		if err := chk.Put(compile.OutPath(s.Name, f), f.Content); err != nil {
			return f, err
		}
		return handedOff(f, sha256.Sum256(f.Content)), nil
	}
}
