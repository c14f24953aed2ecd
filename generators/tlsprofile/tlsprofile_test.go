package tlsprofile

import (
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/internal/testtool"
)

// TestProfilesMatchMozilla proves the Go profile table is the published
// Mozilla 5.8 data, field by field, for exactly the profiles the schema
// offers.
func TestProfilesMatchMozilla(t *testing.T) {
	m := testtool.Mozilla(t)
	for _, name := range []string{"intermediate", "modern"} {
		c, ok := m[name]
		if !ok {
			t.Fatalf("reference has no %s profile", name)
		}
		dh := 0
		if c.DHParamSize != nil {
			dh = *c.DHParamSize
		}
		want := Profile{
			Protocols:            c.TLSVersions,
			Ciphers:              c.OpenSSLCiphers,
			Ciphersuites:         c.Ciphersuites,
			Curves:               c.TLSCurves,
			ServerPreferredOrder: c.ServerPreferredOrder,
			HSTSMinAge:           c.HSTSMinAge,
			DHParamSize:          dh,
			OCSPStaple:           c.OCSPStaple,
		}
		got := profiles[name]
		if len(want.Ciphers) == 0 {
			want.Ciphers = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("profile %s\n got %+v\nwant %+v", name, got, want)
		}
		if got.DHParamSize != 0 && got.DHParamSize != 2048 {
			t.Errorf("profile %s wants a %d-bit DH group; only ffdhe2048 is rendered", name, got.DHParamSize)
		}
	}
	if len(profiles) != 2 {
		t.Errorf("profiles has %d entries, want intermediate and modern only", len(profiles))
	}
	// The copy in testdata must be the reference beside the repository,
	// when that is present.
	shared := filepath.Join("..", "..", "..", "shared", "reference", "mozilla-server-side-tls-5.8.json")
	if ref, err := os.ReadFile(shared); err == nil {
		local, _ := os.ReadFile(filepath.Join("testdata", "mozilla-server-side-tls-5.8.json"))
		if string(ref) != string(local) {
			t.Errorf("testdata's Mozilla JSON differs from %s", shared)
		}
	}
}

// rfc7919Prime computes the ffdhe2048 prime from its definition in
// RFC 7919 appendix A.1:
// p = 2^2048 - 2^1984 + {[2^1918 * e] + 560316} * 2^64 - 1.
func rfc7919Prime() *big.Int {
	// floor(2^1918 * e), with e = sum 1/k! evaluated in fixed point with
	// 64 guard bits; the truncation error (under one unit per term) stays
	// far inside the guard bits.
	const guard = 64
	scale := new(big.Int).Lsh(big.NewInt(1), 1918+guard)
	sum := new(big.Int)
	fact := big.NewInt(1)
	for k := int64(0); ; k++ {
		if k > 0 {
			fact.Mul(fact, big.NewInt(k))
		}
		term := new(big.Int).Quo(scale, fact)
		if term.Sign() == 0 {
			break
		}
		sum.Add(sum, term)
	}
	floorE := sum.Rsh(sum, guard)
	one := big.NewInt(1)
	p := new(big.Int).Lsh(one, 2048)
	p.Sub(p, new(big.Int).Lsh(one, 1984))
	mid := new(big.Int).Add(floorE, big.NewInt(560316))
	p.Add(p, mid.Lsh(mid, 64))
	return p.Sub(p, one)
}

// TestDHParamIsRFC7919 proves the embedded PEM holds exactly the
// ffdhe2048 group (prime from the RFC formula, generator 2) and nothing
// else.
func TestDHParamIsRFC7919(t *testing.T) {
	block, rest := pem.Decode([]byte(FFDHE2048))
	if block == nil || block.Type != "DH PARAMETERS" || strings.TrimSpace(string(rest)) != "" {
		t.Fatalf("ffdhe2048.pem is not one DH PARAMETERS block")
	}
	var params struct{ P, G *big.Int }
	if tail, err := asn1.Unmarshal(block.Bytes, &params); err != nil || len(tail) != 0 {
		t.Fatalf("DH parameters: %v (trailing %d bytes)", err, len(tail))
	}
	if want := rfc7919Prime(); params.P.Cmp(want) != 0 {
		t.Errorf("prime is not RFC 7919 ffdhe2048:\n got %x\nwant %x", params.P, want)
	}
	if params.P.BitLen() != 2048 || !params.P.ProbablyPrime(20) {
		t.Errorf("prime has %d bits or is not prime", params.P.BitLen())
	}
	if params.G.Cmp(big.NewInt(2)) != 0 {
		t.Errorf("generator %v, want 2", params.G)
	}
}
