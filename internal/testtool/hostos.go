package testtool

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/hacompile/hacompile/generators/osrelease"
	"github.com/hacompile/hacompile/schema"
)

// HostOS is the stack os value of this machine's release, read from
// /etc/os-release ("debian-12"), or osrelease.Default when this machine
// runs no release the table knows. Tests that run this machine's own
// tools render for it: nginx 1.22 rejects "http2 on;", OpenSSL 3.0 an
// X25519MLKEM768 curve.
func HostOS() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return osrelease.Default
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = strings.Trim(v, `"'`)
		}
	}
	name := kv["ID"] + "-" + kv["VERSION_ID"]
	if _, err := osrelease.Lookup(name); err != nil {
		return osrelease.Default
	}
	return name
}

// ForHost retargets loaded stacks at this machine's release (HostOS),
// for tests that run this machine's tools on what they render.
func ForHost(stacks ...*schema.Stack) []*schema.Stack {
	return Retarget(HostOS(), stacks...)
}

// Retarget sets every stack's os, as if its file said so.
func Retarget(osName string, stacks ...*schema.Stack) []*schema.Stack {
	for _, s := range stacks {
		s.OS = osName
	}
	return stacks
}

// LoadStacksFor loads every example stack rendered for release osName.
func LoadStacksFor(t testing.TB, osName string) []*schema.Stack {
	t.Helper()
	return Retarget(osName, LoadStacks(t)...)
}
