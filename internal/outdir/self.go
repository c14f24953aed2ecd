package outdir

import (
	"bytes"
	"debug/elf"
	"regexp"
)

// BinaryID identifies the executable at exe for the no-change record:
// the Go build ID the linker writes into an ELF binary (a hash of what
// went into it), read from its note without reading the binary, or else
// the hash of the whole file (tens of megabytes: most of a no-change
// build of a small stack).
func BinaryID(exe string) (string, error) {
	if id := goBuildID(exe); buildIDRE.MatchString(id) {
		return "go-build-id:" + id, nil
	}
	return HashInputs([]string{exe})
}

// buildIDRE is the shape of a build ID the go command computed: hashes
// of 20 characters, joined by /. One given with -ldflags=-buildid=…
// (Bazel's rules_go says "redacted") names nothing and is not trusted.
var buildIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{20}(/[A-Za-z0-9_-]{20}){1,3}$`)

// goBuildID reads the .note.go.buildid note of an ELF executable: a
// 4-byte name size, a 4-byte description size, a 4-byte type (4), the
// name "Go\x00\x00", then the build ID.
func goBuildID(exe string) string {
	f, err := elf.Open(exe)
	if err != nil {
		return ""
	}
	defer f.Close()
	sec := f.Section(".note.go.buildid")
	if sec == nil {
		return ""
	}
	b, err := sec.Data()
	if err != nil || len(b) < 16 {
		return ""
	}
	order := f.ByteOrder
	namesz, descsz, typ := order.Uint32(b[0:]), order.Uint32(b[4:]), order.Uint32(b[8:])
	if namesz != 4 || typ != 4 || !bytes.Equal(b[12:16], []byte("Go\x00\x00")) || uint64(len(b)) < 16+uint64(descsz) {
		return ""
	}
	return string(b[16 : 16+descsz])
}
