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
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
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
	// ~/.docker/config.json (or $DOCKER_CONFIG), missing for none.
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
	if err == nil {
		client.Credential = credentials.Credential(store)
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
}

// Publish pushes each host artifact under HostTag(ref.Tag, ...) and
// signs it. A blob is uploaded once: not again for another host, nor
// when the registry has it; a tag already at the digest is left, and
// a signature by the same key is kept.
func Publish(ctx context.Context, repo *remote.Repository, ref Ref, packs []*Packed, key *ecdsa.PrivateKey) (PublishStats, error) {
	var st PublishStats
	seen := map[digest.Digest]bool{}
	pushBlob := func(mt string, b []byte) (ocispec.Descriptor, error) {
		d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
		if seen[d.Digest] {
			st.BlobsPresent++
			return d, nil
		}
		ok, err := repo.Exists(ctx, d)
		if err != nil {
			return d, fmt.Errorf("check blob %s: %w", d.Digest, err)
		}
		if !ok {
			if err := repo.Push(ctx, d, bytes.NewReader(b)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
				return d, fmt.Errorf("upload blob %s: %w", d.Digest, err)
			}
			st.BlobsUploaded++
			st.BytesUploaded += d.Size
		} else {
			st.BlobsPresent++
		}
		seen[d.Digest] = true
		return d, nil
	}
	tags := map[string]string{}
	for _, p := range packs {
		tag, err := HostTag(ref.Tag, p.Stack, p.Host)
		if err != nil {
			return st, err
		}
		if o, dup := tags[tag]; dup {
			return st, fmt.Errorf("%s/%s and %s have the same tag %s: rename one", p.Stack, p.Host, o, tag)
		}
		tags[tag] = p.Stack + "/" + p.Host
		if _, err := pushBlob(ConfigMediaType, p.Config); err != nil {
			return st, err
		}
		for _, b := range sortedBlobs(p.Blobs) {
			if _, err := pushBlob(FileMediaType, b); err != nil {
				return st, err
			}
		}
		md := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: p.Digest, Size: int64(len(p.Manifest))}
		if cur, err := repo.Resolve(ctx, tag); err == nil && cur.Digest == p.Digest {
			st.Unchanged++
		} else {
			if err := repo.PushReference(ctx, md, bytes.NewReader(p.Manifest), tag); err != nil {
				return st, fmt.Errorf("push %s: %w", tag, err)
			}
			st.Manifests++
		}
		if err := verifySignature(ctx, repo, ref.Name(), p.Digest, &key.PublicKey); err == nil {
			continue
		}
		pl := Payload(ref.Name(), p.Digest.String())
		sig, err := sign(key, pl)
		if err != nil {
			return st, err
		}
		pd, err := pushBlob(SimpleSigningMediaType, pl)
		if err != nil {
			return st, err
		}
		pd.Annotations = map[string]string{SignatureAnnotation: sig}
		cfg, _ := json.Marshal(ocispec.Image{
			Created: &zeroTime, History: []ocispec.History{{Created: &zeroTime}},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{pd.Digest}},
		})
		cd, err := pushBlob(ocispec.MediaTypeImageConfig, cfg)
		if err != nil {
			return st, err
		}
		sm, _ := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
			Config: cd, Layers: []ocispec.Descriptor{pd}})
		smd := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(sm), Size: int64(len(sm))}
		if err := repo.PushReference(ctx, smd, bytes.NewReader(sm), SignatureTag(p.Digest)); err != nil {
			return st, fmt.Errorf("push the signature of %s: %w", tag, err)
		}
		st.Signed++
	}
	return st, nil
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
