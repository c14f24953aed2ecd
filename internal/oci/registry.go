package oci

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"

	"github.com/hacompile/hacompile/internal/secret"
)

// Ref is a parsed REGISTRY/REPO:TAG (an oci:// prefix allowed).
type Ref struct {
	Registry   string // host[:port]
	Repository string // path in the registry
	Tag        string
}

// Name is registry/repository: the identity a signature names.
func (r Ref) Name() string { return r.Registry + "/" + r.Repository }

func (r Ref) String() string { return r.Name() + ":" + r.Tag }

// ParseRef reads REGISTRY/REPO:TAG, with or without oci://. The tag is
// required: it is the channel (stable, canary, a release name).
func ParseRef(s string) (Ref, error) {
	s = strings.TrimPrefix(s, "oci://")
	if host, _, _ := strings.Cut(s, "/"); strings.Contains(host, "@") {
		// user:password@registry: said without the password, which a
		// message would put in terminals and CI logs.
		shown := strings.TrimPrefix(secret.RedactURL("oci://"+s), "oci://")
		return Ref{}, fmt.Errorf("%q: want REGISTRY/REPOSITORY:TAG, with no user or password in it: credentials go in the Docker config (docker login, --registry-config)", shown)
	}
	r, err := registry.ParseReference(s)
	if err != nil {
		return Ref{}, fmt.Errorf("%q: want REGISTRY/REPOSITORY:TAG: %w", s, err)
	}
	if r.Reference == "" || strings.Contains(r.Reference, ":") {
		return Ref{}, fmt.Errorf("%q: want REGISTRY/REPOSITORY:TAG, with a tag (the channel, e.g. stable)", s)
	}
	return Ref{Registry: r.Registry, Repository: r.Repository, Tag: r.Reference}, nil
}

// RepoOptions say how to reach a registry.
type RepoOptions struct {
	// PlainHTTP speaks HTTP instead of HTTPS (a registry on loopback).
	PlainHTTP bool
	// Transport, when set, carries every request (tests count them).
	Transport http.RoundTripper
	// DockerConfig is a Docker config.json with registry credentials
	// (as docker login and oras login write it); empty for
	// ~/.docker/config.json (or $DOCKER_CONFIG), missing for none; one
	// that is there and not a config is an error.
	DockerConfig string
	// Timeout bounds each request, its body included; 0 for none.
	Timeout time.Duration
}

// Open is the repository of r, with credentials from the Docker config
// when there is one.
func Open(r Ref, o RepoOptions) (*remote.Repository, error) {
	repo, err := remote.NewRepository(r.Name())
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = o.PlainHTTP
	hc := &http.Client{Transport: o.Transport, Timeout: o.Timeout}
	if hc.Transport == nil {
		hc.Transport = http.DefaultTransport
	}
	client := &auth.Client{Client: hc, Cache: auth.NewCache()}
	var store credentials.Store
	if o.DockerConfig != "" {
		store, err = credentials.NewStore(o.DockerConfig, credentials.StoreOptions{})
	} else {
		store, err = credentials.NewStoreFromDocker(credentials.StoreOptions{})
	}
	switch {
	case err == nil:
		client.Credential = credentials.Credential(store)
	case o.DockerConfig != "":
		// Named, and not readable as a config: going on without its
		// credentials would end in the registry's refusal, which does
		// not say why.
		return nil, fmt.Errorf("registry credentials %s: %w", o.DockerConfig, err)
	}
	repo.Client = client
	return repo, nil
}

// PublishStats count what a publish sent.
type PublishStats struct {
	BlobsUploaded int   // blobs the registry did not have
	BlobsPresent  int   // blobs it had (or this publish sent already)
	BytesUploaded int64 // their bytes
	Manifests     int   // host manifests pushed or re-tagged
	Unchanged     int   // host tags already at their digest
	Signed        int   // signatures pushed (a valid one is kept)
	// Indexes are the stacks' indexes pushed (not already at their
	// digest).
	Indexes int
}

// DefaultPublishParallel is how many hosts a publish sends at once.
const DefaultPublishParallel = 8

// publisher is one Publish: the blobs sent or found so far, shared by
// the hosts sent at once (each distinct blob is checked and uploaded
// once, whichever host holds it first).
type publisher struct {
	repo  *remote.Repository
	ref   Ref
	key   *ecdsa.PrivateKey
	mu    sync.Mutex
	st    PublishStats
	blobs map[digest.Digest]*blobSend
}

type blobSend struct {
	done chan struct{}
	err  error
}

// Publish pushes each host artifact under HostTag(ref.Tag, ...), signs
// it, and pushes per stack an index of its hosts' manifests at
// IndexTag(ref.Tag, stack), signed too. A blob is uploaded once: not
// again for another host, nor when the registry has it; a tag already
// at the digest is left, and a signature by the same key is kept. Up to
// parallel hosts are sent at once (0: DefaultPublishParallel).
func Publish(ctx context.Context, repo *remote.Repository, ref Ref, packs []*Packed, key *ecdsa.PrivateKey, parallel int) (PublishStats, error) {
	if parallel <= 0 {
		parallel = DefaultPublishParallel
	}
	tags := map[string]string{}
	stacks := map[string][]*Packed{}
	var order []string
	for _, p := range packs {
		tag, err := HostTag(ref.Tag, p.Stack, p.Host)
		if err != nil {
			return PublishStats{}, err
		}
		if o, dup := tags[tag]; dup {
			return PublishStats{}, fmt.Errorf("%s/%s and %s have the same tag %s: rename one", p.Stack, p.Host, o, tag)
		}
		tags[tag] = p.Stack + "/" + p.Host
		if _, ok := stacks[p.Stack]; !ok {
			order = append(order, p.Stack)
		}
		stacks[p.Stack] = append(stacks[p.Stack], p)
	}
	var idx []*Packed
	for _, s := range order {
		x, err := PackIndex(s, stacks[s])
		if err != nil {
			return PublishStats{}, err
		}
		tag, err := IndexTag(ref.Tag, s)
		if err != nil {
			return PublishStats{}, err
		}
		if o, dup := tags[tag]; dup {
			return PublishStats{}, fmt.Errorf("stack %s's index and %s have the same tag %s: rename one", s, o, tag)
		}
		tags[tag] = "stack " + s
		idx = append(idx, x)
	}
	pb := &publisher{repo: repo, ref: ref, key: key, blobs: map[digest.Digest]*blobSend{}}
	err := forEach(len(packs), parallel, func(i int) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		return pb.host(ctx, packs[i])
	})
	if err != nil {
		return pb.st, err
	}
	// An index only once every host it names is there.
	for _, x := range idx {
		if err := pb.index(ctx, x); err != nil {
			return pb.st, err
		}
	}
	return pb.st, nil
}

func (pb *publisher) count(f func(st *PublishStats)) {
	pb.mu.Lock()
	f(&pb.st)
	pb.mu.Unlock()
}

// blob makes sure the registry has b: the first host holding it checks
// and uploads it, the others wait for that.
func (pb *publisher) blob(ctx context.Context, mt string, b []byte) (ocispec.Descriptor, error) {
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	pb.mu.Lock()
	bs, sent := pb.blobs[d.Digest]
	if !sent {
		bs = &blobSend{done: make(chan struct{})}
		pb.blobs[d.Digest] = bs
	}
	pb.mu.Unlock()
	if sent {
		select {
		case <-bs.done:
		case <-ctx.Done():
			return d, ctx.Err()
		}
		if bs.err == nil {
			pb.count(func(st *PublishStats) { st.BlobsPresent++ })
		}
		return d, bs.err
	}
	defer close(bs.done)
	ok, err := pb.repo.Exists(ctx, d)
	if err != nil {
		bs.err = fmt.Errorf("check blob %s: %w", d.Digest, err)
		return d, bs.err
	}
	if ok {
		pb.count(func(st *PublishStats) { st.BlobsPresent++ })
		return d, nil
	}
	if err := pb.repo.Push(ctx, d, bytes.NewReader(b)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		bs.err = fmt.Errorf("upload blob %s: %w", d.Digest, err)
		return d, bs.err
	}
	pb.count(func(st *PublishStats) { st.BlobsUploaded++; st.BytesUploaded += d.Size })
	return d, nil
}

// host sends one host's blobs, then its manifest under its tag, then
// its signature.
func (pb *publisher) host(ctx context.Context, p *Packed) error {
	tag, _ := HostTag(pb.ref.Tag, p.Stack, p.Host)
	if _, err := pb.blob(ctx, ConfigMediaType, p.Config); err != nil {
		return err
	}
	for _, b := range sortedBlobs(p.Blobs) {
		if _, err := pb.blob(ctx, FileMediaType, b); err != nil {
			return err
		}
	}
	pushed, err := pb.manifest(ctx, ocispec.MediaTypeImageManifest, p.Manifest, p.Digest, tag)
	if err != nil {
		return err
	}
	pb.count(func(st *PublishStats) {
		if pushed {
			st.Manifests++
		} else {
			st.Unchanged++
		}
	})
	return pb.sign(ctx, p.Digest, tag)
}

// index sends a stack's index under its tag, and signs it.
func (pb *publisher) index(ctx context.Context, x *Packed) error {
	tag, _ := IndexTag(pb.ref.Tag, x.Stack)
	pushed, err := pb.manifest(ctx, ocispec.MediaTypeImageIndex, x.Manifest, x.Digest, tag)
	if err != nil {
		return err
	}
	if pushed {
		pb.count(func(st *PublishStats) { st.Indexes++ })
	}
	return pb.sign(ctx, x.Digest, tag)
}

// manifest tags b (of media type mt) as tag, unless the tag is at its
// digest already; it reports whether it pushed.
func (pb *publisher) manifest(ctx context.Context, mt string, b []byte, d digest.Digest, tag string) (bool, error) {
	if cur, err := pb.repo.Resolve(ctx, tag); err == nil && cur.Digest == d {
		return false, nil
	}
	md := ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
	if err := pb.repo.PushReference(ctx, md, bytes.NewReader(b), tag); err != nil {
		return false, fmt.Errorf("push %s: %w", tag, err)
	}
	return true, nil
}

// sign pushes the cosign-compatible signature of d, unless one by the
// same key is there.
func (pb *publisher) sign(ctx context.Context, d digest.Digest, tag string) error {
	if err := verifySignature(ctx, pb.repo, pb.ref.Name(), d, &pb.key.PublicKey); err == nil {
		return nil
	}
	pl := Payload(pb.ref.Name(), d.String())
	sig, err := sign(pb.key, pl)
	if err != nil {
		return err
	}
	pd, err := pb.blob(ctx, SimpleSigningMediaType, pl)
	if err != nil {
		return err
	}
	pd.Annotations = map[string]string{SignatureAnnotation: sig}
	cfg, _ := json.Marshal(ocispec.Image{
		Created: &zeroTime, History: []ocispec.History{{Created: &zeroTime}},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{pd.Digest}},
	})
	cd, err := pb.blob(ctx, ocispec.MediaTypeImageConfig, cfg)
	if err != nil {
		return err
	}
	sm, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cd, Layers: []ocispec.Descriptor{pd}})
	smd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(sm), Size: int64(len(sm))}
	if err := pb.repo.PushReference(ctx, smd, bytes.NewReader(sm), SignatureTag(d)); err != nil {
		return fmt.Errorf("push the signature of %s: %w", tag, err)
	}
	pb.count(func(st *PublishStats) { st.Signed++ })
	return nil
}

func sortedBlobs(m map[digest.Digest][]byte) [][]byte {
	ds := make([]string, 0, len(m))
	for d := range m {
		ds = append(ds, string(d))
	}
	slices.Sort(ds)
	out := make([][]byte, len(ds))
	for i, d := range ds {
		out[i] = m[digest.Digest(d)]
	}
	return out
}

// zeroTime is cosign's creation time of a signature's config.
var zeroTime time.Time

// maxSignatureSize bounds the signature manifest and payload read.
const maxSignatureSize = 64 << 10

// verifySignature fetches the signatures stored for d and accepts
// when one of them verifies with key and names d in repository.
func verifySignature(ctx context.Context, repo *remote.Repository, repository string, d digest.Digest, key *ecdsa.PublicKey) error {
	desc, rc, err := repo.FetchReference(ctx, SignatureTag(d))
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%s is not signed: no signature at tag %s: %w", d, SignatureTag(d), ErrSignature)
	}
	if err != nil {
		return fmt.Errorf("fetch the signature of %s: %w", d, err)
	}
	b, err := readVerified(rc, desc, maxSignatureSize)
	if err != nil {
		return fmt.Errorf("the signature manifest of %s: %w", d, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("the signature manifest of %s is not JSON: %w", d, ErrSignature)
	}
	var why []string
	for _, l := range m.Layers {
		s, ok := l.Annotations[SignatureAnnotation]
		if l.MediaType != SimpleSigningMediaType || !ok {
			continue
		}
		if l.Size > maxSignatureSize {
			why = append(why, "a payload is too large")
			continue
		}
		rc, err := repo.Fetch(ctx, l)
		if err != nil {
			return fmt.Errorf("fetch the signed payload of %s: %w", d, err)
		}
		p, err := readVerified(rc, l, maxSignatureSize)
		if err != nil {
			return fmt.Errorf("the signed payload of %s: %w", d, err)
		}
		if err := verifyPayload(key, p, s, repository, d.String()); err != nil {
			why = append(why, strings.TrimSuffix(err.Error(), ": "+ErrSignature.Error()))
			continue
		}
		return nil
	}
	if len(why) == 0 {
		why = []string{"no simple-signing layer"}
	}
	return fmt.Errorf("%s: no valid signature (%s): %w", d, strings.Join(why, "; "), ErrSignature)
}

// ErrDigest is content whose sha256 or size is not the one its
// descriptor names: tampered, or truncated.
var ErrDigest = errors.New("content does not match its digest")

// readVerified reads rc whole (at most max bytes, and at most the
// descriptor's size) and checks its size and digest.
func readVerified(rc io.ReadCloser, d ocispec.Descriptor, max int64) ([]byte, error) {
	defer rc.Close()
	if d.Size < 0 || d.Size > max {
		return nil, fmt.Errorf("%s: size %d beyond the limit %d", d.Digest, d.Size, max)
	}
	b, err := io.ReadAll(io.LimitReader(rc, d.Size+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", d.Digest, err)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("%s: %d bytes, want %d: %w", d.Digest, len(b), d.Size, ErrDigest)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("%s: only sha256 digests are accepted", d.Digest)
	}
	if got := sha256Hex(b); got != d.Digest.Encoded() {
		return nil, fmt.Errorf("%s: the registry sent content with sha256 %s: %w", d.Digest, got, ErrDigest)
	}
	return b, nil
}

// Pulled is a host artifact fetched and verified.
type Pulled struct {
	Tag    string
	Digest digest.Digest
	Config HostConfig
	Files  map[string][]byte // sha256 → content
	// Fetched counts the file blobs fetched from the registry;
	// Reused those already on the host with the right sha256.
	Fetched, Reused int
	Bytes           int64 // file blob bytes fetched
	// Cached: the digest was verified by an earlier apply (with the same
	// key), so its signature, manifest and config were not fetched.
	Cached bool
}

// PullOptions select and check a host's artifact.
type PullOptions struct {
	Stack, Host string
	Key         *ecdsa.PublicKey
	// Have returns a file's current content on the host when it may
	// already be the wanted one (its sha256 is checked): such a file
	// is not fetched. nil to fetch every blob.
	Have func(path string) []byte
	// Verified, when set, returns the config of a manifest digest this
	// host verified (signature, manifest, config) with the same key
	// before: a tag still at that digest is then not fetched or
	// verified again — a digest names its content for good.
	Verified func(d digest.Digest) *HostConfig
}

// Pull resolves the host's tag under ref, verifies its signature
// before fetching anything else, then fetches the manifest, config and
// file blobs by digest, each checked against its sha256. Once the tag
// is resolved, the Pulled (with its Tag and Digest) is returned even
// with an error, so the caller can say which artifact failed.
func Pull(ctx context.Context, repo *remote.Repository, ref Ref, o PullOptions) (*Pulled, error) {
	tag, err := HostTag(ref.Tag, o.Stack, o.Host)
	if err != nil {
		return nil, err
	}
	desc, err := repo.Resolve(ctx, tag)
	if err != nil {
		return nil, fmt.Errorf("resolve %s:%s: %w", ref.Name(), tag, err)
	}
	if desc.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("%s:%s is a %s, not a host artifact's manifest", ref.Name(), tag, desc.MediaType)
	}
	p := &Pulled{Tag: tag, Digest: desc.Digest, Files: map[string][]byte{}}
	if o.Verified != nil {
		if c := o.Verified(desc.Digest); c != nil && c.Stack == o.Stack && c.Host == o.Host {
			p.Config, p.Cached = *c, true
			return p, fetchFiles(ctx, repo, p, nil, o)
		}
	}
	if err := verifySignature(ctx, repo, ref.Name(), desc.Digest, o.Key); err != nil {
		return p, fmt.Errorf("%s:%s: %w", ref.Name(), tag, err)
	}
	rc, err := repo.Fetch(ctx, desc)
	if err != nil {
		return p, fmt.Errorf("fetch %s: %w", desc.Digest, err)
	}
	mb, err := readVerified(rc, desc, 4<<20)
	if err != nil {
		return p, fmt.Errorf("the manifest of %s: %w", tag, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return p, fmt.Errorf("the manifest of %s: %w", tag, err)
	}
	if m.Config.MediaType != ConfigMediaType {
		return p, fmt.Errorf("%s: config media type %q, want %s: not a hacompile host artifact", tag, m.Config.MediaType, ConfigMediaType)
	}
	rc, err = repo.Fetch(ctx, m.Config)
	if err != nil {
		return p, fmt.Errorf("fetch the config %s: %w", m.Config.Digest, err)
	}
	cb, err := readVerified(rc, m.Config, 16<<20)
	if err != nil {
		return p, fmt.Errorf("the config of %s: %w", tag, err)
	}
	if err := json.Unmarshal(cb, &p.Config); err != nil {
		return p, fmt.Errorf("the config of %s: %w", tag, err)
	}
	if p.Config.Stack != o.Stack || p.Config.Host != o.Host {
		return p, fmt.Errorf("%s holds the files of %s/%s, not %s/%s", tag, p.Config.Stack, p.Config.Host, o.Stack, o.Host)
	}
	layers := map[string]ocispec.Descriptor{}
	for _, l := range m.Layers {
		layers[l.Digest.String()] = l
	}
	return p, fetchFiles(ctx, repo, p, layers, o)
}

// fetchFiles gets every file content of p's config: from the host when
// it already has it, else the blob by digest, checked. layers are the
// manifest's (nil for a config verified before, whose entries name
// their blobs' digests and sizes).
func fetchFiles(ctx context.Context, repo *remote.Repository, p *Pulled, layers map[string]ocispec.Descriptor, o PullOptions) error {
	tag := p.Tag
	for _, f := range p.Config.Files {
		if _, ok := p.Files[f.SHA256]; ok {
			continue
		}
		if o.Have != nil {
			if b := o.Have(f.Path); b != nil && sha256Hex(b) == f.SHA256 {
				p.Files[f.SHA256] = b
				p.Reused++
				continue
			}
		}
		l, ok := layers["sha256:"+f.SHA256]
		if layers == nil {
			l, ok = ocispec.Descriptor{MediaType: FileMediaType, Digest: digest.NewDigestFromEncoded(digest.SHA256, f.SHA256), Size: f.Size}, true
		}
		if !ok || l.Size != f.Size {
			return fmt.Errorf("%s: %s's content sha256:%s is not a layer of the manifest", tag, f.Path, f.SHA256)
		}
		rc, err := repo.Fetch(ctx, l)
		if err != nil {
			return fmt.Errorf("fetch %s (%s): %w", l.Digest, f.Path, err)
		}
		b, err := readVerified(rc, l, 256<<20)
		if err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		p.Files[f.SHA256] = b
		p.Fetched++
		p.Bytes += int64(len(b))
	}
	return nil
}
