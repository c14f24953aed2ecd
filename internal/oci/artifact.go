package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/internal/compile"
	"github.com/hacompile/hacompile/internal/push"
)

// Media types of a host artifact.
const (
	// ConfigMediaType is the host's config: what HostConfig holds.
	ConfigMediaType = "application/vnd.hacompile.host.config.v1+json"
	// FileMediaType is one file's content, stored once per distinct
	// content whatever the paths and hosts holding it.
	FileMediaType = "application/vnd.hacompile.file.v1"
)

// Annotations on a host artifact's manifest. There is no creation
// time: the same files give the same manifest digest.
const (
	AnnotationStack    = "dev.hacompile.stack"
	AnnotationHost     = "dev.hacompile.host"
	AnnotationRevision = ocispec.AnnotationRevision // the source commit
	AnnotationTitle    = ocispec.AnnotationTitle
)

// HostConfig is a host artifact's config blob: the host, how to check
// its health, and every file with its manifest entry (mode, owner,
// validate and reload commands) and its content's sha256, which is the
// digest of the blob holding it.
type HostConfig struct {
	Stack            string      `json:"stack"`
	Host             string      `json:"host"`
	SourceSHA256     string      `json:"source_sha256"`
	Address          string      `json:"address"`
	Roles            []string    `json:"roles"`
	HealthURL        string      `json:"health_url,omitempty"`
	HealthRedirectOK bool        `json:"health_redirect_ok,omitempty"`
	HealthPROXY      bool        `json:"health_proxy,omitempty"`
	Files            []FileEntry `json:"files"`
}

// FileEntry is one file of a host, as the stack's manifest.json lists
// it (the path absolute on the host).
type FileEntry struct {
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
	Mode     string `json:"mode"`
	Owner    string `json:"owner"`
	Kind     string `json:"kind,omitempty"`
	Validate string `json:"validate,omitempty"`
	Reload   string `json:"reload,omitempty"`
}

// Packed is a host artifact ready to push: its manifest, config and
// file blobs (digest → content), each distinct content once.
type Packed struct {
	Stack, Host string
	Manifest    []byte
	Digest      digest.Digest
	Config      []byte
	Blobs       map[digest.Digest][]byte
}

// Pack makes the artifact of one host. revision (the source commit,
// may be empty) is the only input beyond the files: the manifest has no
// time in it, so packing the same files again gives the same bytes.
func Pack(stack, sourceSHA256, revision string, h push.Host) (*Packed, error) {
	if len(h.Files) == 0 {
		return nil, fmt.Errorf("%s: no files to publish", h.Name)
	}
	cfg := HostConfig{Stack: stack, Host: h.Name, SourceSHA256: sourceSHA256, Address: h.Address, Roles: slices.Clone(h.Roles),
		HealthURL: h.HealthURL, HealthRedirectOK: h.HealthRedirectOK, HealthPROXY: h.HealthPROXY}
	if cfg.Roles == nil {
		cfg.Roles = []string{}
	}
	p := &Packed{Stack: stack, Host: h.Name, Blobs: map[digest.Digest][]byte{}}
	for _, f := range h.Files {
		d := digest.FromBytes(f.Content)
		p.Blobs[d] = f.Content
		cfg.Files = append(cfg.Files, FileEntry{Path: f.Path, SHA256: d.Encoded(), Size: int64(len(f.Content)),
			Mode: fmt.Sprintf("%04o", f.Mode.Perm()), Owner: f.Owner, Kind: f.Kind, Validate: f.Validate.String(), Reload: f.Reload.String()})
	}
	slices.SortFunc(cfg.Files, func(a, b FileEntry) int { return strings.Compare(a.Path, b.Path) })
	var err error
	if p.Config, err = json.Marshal(cfg); err != nil {
		return nil, err
	}
	layers := make([]ocispec.Descriptor, 0, len(p.Blobs))
	for d, b := range p.Blobs {
		layers = append(layers, ocispec.Descriptor{MediaType: FileMediaType, Digest: d, Size: int64(len(b))})
	}
	slices.SortFunc(layers, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	ann := map[string]string{AnnotationStack: stack, AnnotationHost: h.Name, AnnotationTitle: stack + "/" + h.Name}
	if revision != "" {
		ann[AnnotationRevision] = revision
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ConfigMediaType, Digest: digest.FromBytes(p.Config), Size: int64(len(p.Config))},
		Layers:    layers, Annotations: ann,
	}
	if p.Manifest, err = json.Marshal(m); err != nil {
		return nil, err
	}
	p.Digest = digest.FromBytes(p.Manifest)
	return p, nil
}

// PackStack makes the artifacts of a rendered stack's hosts (all when
// hosts is empty), as publish --oci sends them: each host's files as
// push would write them onto "/".
func PackStack(r *compile.Rendered, revision string, hosts []string) ([]*Packed, error) {
	targets, err := push.Targets(r, push.TargetOptions{Hosts: hosts})
	if err != nil {
		return nil, err
	}
	packs := make([]*Packed, 0, len(targets))
	for _, h := range targets {
		p, err := Pack(r.Stack.Name, r.Stack.SourceDigest, revision, h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", r.Stack.Name, err)
		}
		packs = append(packs, p)
	}
	return packs, nil
}

// AnnotationRoles on an index entry: the host's roles, comma-separated.
const AnnotationRoles = "dev.hacompile.roles"

// PackIndex makes a stack's index: an OCI image index whose manifests
// are its hosts' artifacts, sorted by host, each annotated with the
// host's name and roles. It names a stack's whole release by one
// digest (what a publish sent, what a promotion moved); hosts still
// follow their own tags. Like the host manifests it has no time in it.
func PackIndex(stack string, hosts []*Packed) (*Packed, error) {
	hs := slices.Clone(hosts)
	slices.SortFunc(hs, func(a, b *Packed) int { return strings.Compare(a.Host, b.Host) })
	idx := ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: make([]ocispec.Descriptor, 0, len(hs)),
	}
	rev := ""
	for _, p := range hs {
		if p.Stack != stack {
			return nil, fmt.Errorf("%s/%s is not a host of %s", p.Stack, p.Host, stack)
		}
		var cfg HostConfig
		if err := json.Unmarshal(p.Config, &cfg); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Host, err)
		}
		var m ocispec.Manifest
		if err := json.Unmarshal(p.Manifest, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", p.Host, err)
		}
		rev = m.Annotations[AnnotationRevision]
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageManifest, Digest: p.Digest, Size: int64(len(p.Manifest)),
			Annotations: map[string]string{AnnotationHost: p.Host, AnnotationRoles: strings.Join(cfg.Roles, ",")},
		})
	}
	idx.Annotations = map[string]string{AnnotationStack: stack, AnnotationTitle: stack}
	if rev != "" {
		idx.Annotations[AnnotationRevision] = rev
	}
	b, err := json.Marshal(idx)
	if err != nil {
		return nil, err
	}
	return &Packed{Stack: stack, Manifest: b, Digest: digest.FromBytes(b)}, nil
}

// IndexTag is the tag of a stack's index under the channel tag: e.g.
// stable-shop.
func IndexTag(tag, stack string) (string, error) {
	t := tag + "-" + stack
	if !tagRE.MatchString(t) {
		return "", fmt.Errorf("tag %q for stack %s is not a valid OCI tag: shorten the tag", t, stack)
	}
	return t, nil
}

// tagPart is what a tag may hold (the distribution spec's grammar).
var tagRE = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)

// HostTag is the tag of a host's artifact under the channel tag: e.g.
// stable-shop-app1.
func HostTag(tag, stack, host string) (string, error) {
	t := tag + "-" + stack + "-" + host
	if !tagRE.MatchString(t) {
		return "", fmt.Errorf("tag %q for %s/%s is not a valid OCI tag (at most 128 characters of letters, digits, '.', '_', '-'): shorten the tag", t, stack, host)
	}
	return t, nil
}

// ValidTag reports whether tag is a tag the registry accepts.
func ValidTag(tag string) bool { return tagRE.MatchString(tag) }

// SignatureTag is where cosign (and containers/image with
// use-sigstore-attachments) look for the signatures of a manifest.
func SignatureTag(d digest.Digest) string { return d.Algorithm().String() + "-" + d.Encoded() + ".sig" }

// Files turns a verified config and the contents by sha256 into push's
// files.
func (c *HostConfig) files(content map[string][]byte) ([]push.File, error) {
	var out []push.File
	for _, f := range c.Files {
		m, err := strconv.ParseUint(f.Mode, 8, 32)
		if err != nil || m > 0o7777 {
			return nil, fmt.Errorf("%s: mode %q is not an octal mode", f.Path, f.Mode)
		}
		if !strings.HasPrefix(f.Path, "/") || !fs.ValidPath(strings.TrimPrefix(f.Path, "/")) {
			return nil, fmt.Errorf("%q is not a clean absolute path", f.Path)
		}
		b, ok := content[f.SHA256]
		if !ok {
			return nil, fmt.Errorf("%s: no content fetched for sha256 %s", f.Path, f.SHA256)
		}
		out = append(out, push.File{Path: f.Path, Content: b, Mode: fs.FileMode(m), Owner: f.Owner, Kind: f.Kind,
			Validate: artifact.ParseAction(f.Validate), Reload: artifact.ParseAction(f.Reload)})
	}
	slices.SortFunc(out, func(a, b push.File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// PushHost is the pulled host as push's engine takes it: a local
// target (this machine) with its tree under root.
func (p *Pulled) PushHost(root string) (push.Host, error) {
	files, err := p.Config.files(p.Files)
	if err != nil {
		return push.Host{}, fmt.Errorf("%s: %w", p.Tag, err)
	}
	c := p.Config
	return push.Host{Name: c.Host, Address: c.Address, Roles: c.Roles, Root: root,
		SSH: push.Endpoint{HostName: c.Address, Local: true},
		// The artifact's health URL is the host's own address from the
		// stack (publish has no --health-url): under a root it is left
		// out.
		HealthURL: c.HealthURL, HealthDefault: true, HealthRedirectOK: c.HealthRedirectOK, HealthPROXY: c.HealthPROXY, Files: files}, nil
}
