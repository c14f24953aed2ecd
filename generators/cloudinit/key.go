package cloudinit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/par"
	"github.com/hacompile/hacompile/schema"
)

// docKeys makes the keys of a stack's documents (artifact.Options.Reuse):
// the sha256 of everything a host's document is made from. That is the
// stack's settings (every field but the hosts, and the file it comes
// from, which the header names), the generators' kinds, the host's name
// and entry, and the path, kind, owner, mode, actions and digest of each
// of its files. The generators' Packages and FirstBoot read the stack
// and the host only, never another host's entry (TestDocumentReadsOnlyItsKey
// checks it of every example stack).
type docKeys struct {
	base [sha256.Size]byte
	sums map[contentKey][sha256.Size]byte
}

// newDocKeys hashes s's settings, and the contents several of files
// hold (the same bytes: shared, as sharedContents found them) once for
// all their hosts; of hashes every other content as it meets it, so
// that no digest of a fleet's 100,000 unshared files is held.
func newDocKeys(s *schema.Stack, files []artifact.File, gens []artifact.Generator, shared map[contentKey][]byte) (*docKeys, error) {
	settings := *s
	settings.Hosts = nil
	js, err := json.Marshal(&settings)
	if err != nil {
		return nil, fmt.Errorf("cloud-init: the stack's settings for the documents' keys: %w", err)
	}
	var b []byte
	b = appendField(b, "hacompile cloud-init document 1")
	b = appendField(b, artifact.Header("#", s))
	b = appendField(b, string(js))
	for _, g := range gens {
		b = appendField(b, g.Kind())
	}
	k := &docKeys{base: sha256.Sum256(b), sums: make(map[contentKey][sha256.Size]byte, len(shared))}
	var distinct [][]byte
	for _, f := range files {
		c := keyOf(f.Content)
		if _, ok := shared[c]; !ok {
			continue
		}
		if _, ok := k.sums[c]; !ok {
			k.sums[c] = [sha256.Size]byte{}
			distinct = append(distinct, f.Content)
		}
	}
	sums := make([][sha256.Size]byte, len(distinct))
	par.Each(len(distinct), func(i int) { sums[i] = sha256.Sum256(distinct[i]) })
	for i, c := range distinct {
		k.sums[keyOf(c)] = sums[i]
	}
	return k, nil
}

// of is the key of host h's document, files being its files.
func (k *docKeys) of(h *schema.Host, files []artifact.File) ([sha256.Size]byte, error) {
	js, err := json.Marshal(h)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("cloud-init: the host's entry for its document's key: %w", err)
	}
	b := make([]byte, 0, sha256.Size+len(h.Name)+len(js)+len(files)*(sha256.Size+96)+16)
	b = append(b, k.base[:]...)
	b = appendField(b, h.Name)
	b = appendField(b, string(js))
	for _, f := range files {
		b = appendField(b, f.Path)
		b = appendField(b, f.Kind)
		b = appendField(b, f.Owner)
		b = appendField(b, f.Validate.String())
		b = appendField(b, f.Reload.String())
		b = binary.AppendUvarint(b, uint64(f.Mode))
		b = binary.AppendUvarint(b, uint64(len(f.Content)))
		sum, ok := k.sums[keyOf(f.Content)]
		if !ok {
			sum = sha256.Sum256(f.Content)
		}
		b = append(b, sum[:]...)
	}
	return sha256.Sum256(b), nil
}

// appendField appends s with its length first, so that no two
// sequences of fields write the same bytes.
func appendField(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}
