package tlsprofile

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/internal/testtool"
)

// TestProfilesMatchMozilla proves the Go profile table is the published
// Mozilla 6.0 data, field by field, for exactly the profiles the schema
// offers.
func TestProfilesMatchMozilla(t *testing.T) {
	m := testtool.MozillaTLS(t)
	for _, name := range []string{"intermediate", "modern"} {
		c, ok := m.Configurations[name]
		if !ok {
			t.Fatalf("reference has no %s profile", name)
		}
		dh := 0
		if c.DHParamSize != nil {
			dh = *c.DHParamSize
		}
		want := Profile{
			Protocols:            c.TLSVersions,
			Ciphers:              c.Ciphers.OpenSSL,
			Ciphersuites:         c.Ciphersuites,
			Curves:               c.TLSCurves,
			ServerPreferredOrder: c.ServerPreferredOrder,
			HSTSMinAge:           c.HSTSMinAge,
			DHParamSize:          dh,
			OCSPStaple:           c.OCSPStaple,
		}
		got, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Ciphers) == 0 {
			want.Ciphers = nil
		}
		if len(got.Ciphers) == 0 {
			got.Ciphers = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("profile %s\n got %+v\nwant %+v", name, got, want)
		}
		// No DH group is rendered anywhere: a profile with a DHE cipher
		// would need ssl_dhparam / ssl-dh-param-file back.
		if got.NeedsDHParams() {
			t.Errorf("profile %s offers DHE ciphers; the generators render no DH group", name)
		}
	}
	if len(profiles) != 2 {
		t.Errorf("profiles has %d entries, want intermediate and modern only", len(profiles))
	}
	// The copy in testdata must be the reference beside the repository,
	// when that is present.
	shared := filepath.Join(testtool.RepoRoot(), "..", "shared", "reference", "mozilla-server-side-tls-6.0.json")
	if ref, err := os.ReadFile(shared); err == nil {
		local, _ := os.ReadFile(testtool.MozillaPath())
		if string(ref) != string(local) {
			t.Errorf("testdata's Mozilla JSON differs from %s", shared)
		}
	}
}

// TestForRelease checks the curve list per release, as Mozilla's
// generator does it: X25519MLKEM768 first from OpenSSL 3.5, absent below.
func TestForRelease(t *testing.T) {
	for _, name := range osrelease.Names() {
		rel := osrelease.MustLookup(name)
		for _, prof := range Names() {
			p, err := For(prof, rel)
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := Lookup(prof)
			if rel.HybridPQGroups() {
				if !reflect.DeepEqual(p.Curves, pub.Curves) || p.Curves[0] != HybridGroup {
					t.Errorf("%s %s: curves %v, want %v", name, prof, p.Curves, pub.Curves)
				}
			} else {
				want := slices.DeleteFunc(slices.Clone(pub.Curves), func(c string) bool { return c == HybridGroup })
				if !reflect.DeepEqual(p.Curves, want) {
					t.Errorf("%s %s: curves %v, want %v", name, prof, p.Curves, want)
				}
			}
		}
	}
	if rel := osrelease.MustLookup("debian-13"); !rel.HybridPQGroups() {
		t.Error("debian-13 ships OpenSSL 3.5 and must get X25519MLKEM768")
	}
	if rel := osrelease.MustLookup("debian-12"); rel.HybridPQGroups() {
		t.Error("debian-12 ships OpenSSL 3.0 and must not get X25519MLKEM768")
	}
}
