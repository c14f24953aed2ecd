package outdir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// TestOwnerRecordIsMarshalIndent: the owner record is written as
// json.MarshalIndent wrote it (out/ is committed: not a byte may move),
// and read back — by the fast reader when no name needs escaping, by
// encoding/json otherwise — as the same files.
func TestOwnerRecordIsMarshalIndent(t *testing.T) {
	plain := []string{"fleet/hosts/app1/etc/nginx/nginx.conf", "site/index.html", "s/é 日本/file name.txt"}
	for i := range 500 {
		plain = append(plain, fmt.Sprintf("fleet/hosts/app%d/etc/x.conf", i))
	}
	awkward := []string{`a"quote`, `back\slash`, "<tag>&", "ctl\x01\t\n", "bad\xffutf8", "line\u2028sep", "\ufffd"}
	for _, c := range []struct {
		name  string
		files []string
		fast  bool
	}{
		{"nil", nil, false},
		{"empty", []string{}, false},
		{"one", plain[:1], true},
		{"plain", plain, true},
		{"awkward", append(slices.Clone(plain[:2]), awkward...), false},
	} {
		for _, files := range append([][]string{c.files}, wrap(c.files)...) {
			want, err := json.MarshalIndent(ownerRecord{Comment: ownerComment, Files: files}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			got := appendOwner(nil, files)
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: owner record\n%q\nwant\n%q", c.name, got, want)
			}
			read, ok := parseOwner(got)
			fast := c.fast || len(files) == 1 && files[0] != "" && !slices.ContainsFunc(awkward, func(a string) bool { return a == files[0] })
			if ok != fast {
				t.Errorf("%s %q: read fast %v, want %v", c.name, files, ok, fast)
			}
			if ok && !slices.Equal(read, files) {
				t.Errorf("%s: read %q, want %q", c.name, read, files)
			}
		}
	}
	// Not as appendOwner writes it: left to encoding/json.
	good := appendOwner(nil, plain[:3])
	for _, b := range [][]byte{
		bytes.Replace(good, []byte(`",`), []byte(`" ,`), 1),
		bytes.Replace(good, []byte("\n  ]"), []byte("\n  ] "), 1),
		bytes.TrimSuffix(good, []byte("\n")),
		bytes.Replace(good, []byte(`"comment": "Files`), []byte(`"comment": "Files!`), 1),
		append(bytes.Clone(good), ' '),
		good[:len(good)/2],
	} {
		if files, ok := parseOwner(b); ok {
			t.Errorf("read %q fast from\n%s", files, b)
		}
	}
}

// wrap is each of files alone, as a one-file list.
func wrap(files []string) [][]string {
	var out [][]string
	for _, f := range files {
		out = append(out, []string{f})
	}
	return out
}
