// Package oci delivers rendered host files through an OCI registry:
// publish pushes one artifact per host (a config naming every file with
// its manifest entry, one blob per distinct file content, so identical
// hosts share every blob), reproducibly (the same files give the same
// manifest digest), and signs each with a cosign-compatible "simple
// signing" signature stored beside it (tag sha256-<hex>.sig), which
// containers/image (skopeo, podman) and cosign verify. Pull resolves a
// host's tag, verifies that signature against a public key before
// anything else is fetched, then fetches the config and blobs by digest,
// checking each sha256, and hands the files to push's engine.
//
// The registry client is oras-go v2 (oras.land/oras-go/v2): the OCI
// project's maintained Go client for the distribution API (auth, token
// exchange, Docker credential stores, chunked uploads, digest checks),
// small, with no daemon and no dependency on Docker's code.
package oci

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Media types and annotations of a cosign simple-signing signature.
const (
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	SignatureAnnotation    = "dev.cosignproject.cosign/signature"
	signatureType          = "cosign container image signature"
)

// ErrSignature is a signature that is missing, malformed, made with
// another key, or for another manifest or repository.
var ErrSignature = errors.New("signature not verified")

// payload is the simple-signing document that is signed.
type payload struct {
	Critical struct {
		Identity struct {
			DockerReference string `json:"docker-reference"`
		} `json:"identity"`
		Image struct {
			DockerManifestDigest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
	Optional map[string]any `json:"optional"`
}

// Payload is the simple-signing payload for the manifest digest in the
// repository (registry/name, without tag: the signature holds whatever
// tag points at the digest), as cosign writes it.
func Payload(repository, manifestDigest string) []byte {
	var p payload
	p.Critical.Identity.DockerReference = repository
	p.Critical.Image.DockerManifestDigest = manifestDigest
	p.Critical.Type = signatureType
	b, _ := json.Marshal(p)
	return b
}

// LoadPrivateKey reads an ECDSA P-256 private key from a PEM file
// ("PRIVATE KEY", PKCS #8, as hacompile keygen and openssl genpkey write
// it, or "EC PRIVATE KEY", SEC 1).
func LoadPrivateKey(file string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", file)
	}
	var key any
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	case "ENCRYPTED PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY":
		return nil, fmt.Errorf("%s: an encrypted key; give an unencrypted PEM key (hacompile keygen writes one)", file)
	default:
		return nil, fmt.Errorf("%s: PEM block %q, want PRIVATE KEY or EC PRIVATE KEY", file, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	k, ok := key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: want an ECDSA P-256 key", file)
	}
	return k, nil
}

// LoadPublicKey reads an ECDSA P-256 public key from a PEM file
// ("PUBLIC KEY", PKIX), the format cosign and containers/image read.
func LoadPublicKey(file string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	return ParsePublicKey(b, file)
}

// ParsePublicKey is LoadPublicKey of the file's bytes.
func ParsePublicKey(b []byte, name string) (*ecdsa.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: want a PEM PUBLIC KEY block", name)
	}
	key, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	k, ok := key.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: want an ECDSA P-256 key", name)
	}
	return k, nil
}

// GenerateKey makes a P-256 key pair as PEM: the private key (PKCS #8)
// and the public key (PKIX).
func GenerateKey() (private, public []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), nil
}

// sign returns the base64 of the ASN.1 ECDSA signature of SHA-256(p).
func sign(k *ecdsa.PrivateKey, p []byte) (string, error) {
	h := sha256.Sum256(p)
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// verifyPayload checks one signature layer: the signature over p with
// k, then that p names the digest in the repository.
func verifyPayload(k *ecdsa.PublicKey, p []byte, sigB64, repository, manifestDigest string) error {
	sig, err := base64.StdEncoding.DecodeString(sigB64)
	if err != nil {
		return fmt.Errorf("the signature is not base64: %w", ErrSignature)
	}
	h := sha256.Sum256(p)
	if !ecdsa.VerifyASN1(k, h[:], sig) {
		return fmt.Errorf("the signature was not made with the verification key: %w", ErrSignature)
	}
	var pl payload
	if err := json.Unmarshal(p, &pl); err != nil {
		return fmt.Errorf("the signed payload is not JSON: %w", ErrSignature)
	}
	switch {
	case pl.Critical.Type != signatureType:
		return fmt.Errorf("the signed payload's type is %q, want %q: %w", pl.Critical.Type, signatureType, ErrSignature)
	case pl.Critical.Image.DockerManifestDigest != manifestDigest:
		return fmt.Errorf("the signature is for %s, not %s: %w", pl.Critical.Image.DockerManifestDigest, manifestDigest, ErrSignature)
	case pl.Critical.Identity.DockerReference != repository:
		return fmt.Errorf("the signature is for the repository %s, not %s: %w", pl.Critical.Identity.DockerReference, repository, ErrSignature)
	}
	return nil
}
