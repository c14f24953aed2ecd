//go:build unix

package instance_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/instance"
	"github.com/hacompile/hacompile/internal/testtool"
)

// awsStandIn answers the S3 GetObject/HeadObject and SSM GetParameter
// calls the script makes, on 127.0.0.1.
type awsStandIn struct {
	mu         sync.Mutex
	objects    map[string][]byte // "/bucket/key"
	params     map[string]string
	ssmFailure int // answer this many GetParameter calls with 500
	gets       int
	signed     bool
}

func (a *awsStandIn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.signed = a.signed || strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=AKIDSTANDIN/")
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		var req struct{ Name string }
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if a.ssmFailure > 0 {
			a.ssmFailure--
			w.WriteHeader(500)
			io.WriteString(w, `{"__type":"InternalServerError","message":"try later"}`)
			return
		}
		v, ok := a.params[req.Name]
		if target != "AmazonSSM.GetParameter" || !ok {
			w.WriteHeader(400)
			io.WriteString(w, `{"__type":"ParameterNotFound"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"Parameter": map[string]any{"Name": req.Name, "Type": "SecureString", "Value": v, "Version": 1}})
		return
	}
	b, ok := a.objects[r.URL.Path]
	if !ok {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(404)
		io.WriteString(w, `<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>`)
		return
	}
	if r.Method == "GET" {
		a.gets++
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.Header().Set("ETag", `"0123456789abcdef0123456789abcdef"`)
	w.Header().Set("Last-Modified", "Tue, 01 Dec 2026 00:00:00 GMT")
	if r.Method == "GET" {
		w.Write(b)
	}
}

// release is a tar.gz holding app.py and venv/bin/python3.
func release(t *testing.T, app string) ([]byte, string) {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for name, body := range map[string]string{"wsgi.py": app, "venv/bin/python3": "#!/bin/sh\n"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Uid: 4242, Gid: 4242})
		io.WriteString(tw, body)
	}
	tw.Close()
	zw.Close()
	sum := sha256.Sum256(b.Bytes())
	return b.Bytes(), hex.EncodeToString(sum[:])
}

// TestScriptLive runs the rendered script with Debian's AWS CLI against
// stand-in S3 and SSM endpoints on 127.0.0.1: the release the stack
// names is fetched, checked and extracted as root's, each secret is
// written with its owner and mode 0600, a second boot downloads
// nothing, a failing SSM call is retried, and an archive whose sha256
// is not the stack's is refused with nothing extracted.
func TestScriptLive(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		testtool.Missing(t, "Debian's AWS CLI (/usr/bin/aws, package awscli) not installed")
	}
	if os.Geteuid() != 0 {
		testtool.Missing(t, "the script chowns what it writes: run as root")
	}
	good, goodSum := release(t, "app = None\n")
	bad, _ := release(t, "import os; os.system('evil')\n")
	run := func(t *testing.T, api *awsStandIn, sum, root string) (string, error) {
		s, err := stack(t, fmt.Sprintf(`app_source: {kind: "s3", url: "s3://releases/shop-1.tar.gz", sha256: %q}
`+secrets, sum))
		if err != nil {
			t.Fatal(err)
		}
		fs := generate(t, s, artifact.Options{Root: root})
		script := filepath.Join(root, "script")
		if err := os.WriteFile(script, fs[instance.ScriptPath(&s.App)].Content, 0o755); err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(api)
		t.Cleanup(srv.Close)
		cmd := exec.Command("sh", script)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + root, "AWS_S3_ENDPOINT=" + srv.URL, "AWS_SSM_ENDPOINT=" + srv.URL,
			"AWS_ACCESS_KEY_ID=AKIDSTANDIN", "AWS_SECRET_ACCESS_KEY=standin-secret", "AWS_EC2_METADATA_DISABLED=true"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	params := map[string]string{"/shop/env": "SECRET_KEY=k1\nOTHER=2", "/shop/cache": "cache-pw"}

	t.Run("fetches, checks, extracts", func(t *testing.T) {
		root := t.TempDir()
		api := &awsStandIn{objects: map[string][]byte{"/releases/shop-1.tar.gz": good}, params: params, ssmFailure: 2}
		out, err := run(t, api, goodSum, root)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if !api.signed {
			t.Error("no request was signed with the credentials")
		}
		if !strings.Contains(out, "retrying in 3 s: SSM parameter") {
			t.Errorf("the failed SSM call was not retried:\n%s", out)
		}
		for p, want := range map[string]struct {
			body string
			uid  int
			mode os.FileMode
		}{
			"etc/shop/env":             {"SECRET_KEY=k1\nOTHER=2\n", 0, 0o600},
			"etc/shop/secrets/cache":   {"cache-pw\n", 65534, 0o600},
			"srv/shop/wsgi.py":         {"app = None\n", 0, 0o755},
			"srv/shop/.hacompile-code": {goodSum + "\n", 0, 0o644},
		} {
			b, err := os.ReadFile(filepath.Join(root, p))
			st, _ := os.Stat(filepath.Join(root, p))
			if err != nil || string(b) != want.body || int(st.Sys().(*syscall.Stat_t).Uid) != want.uid || st.Mode().Perm() != want.mode {
				t.Errorf("%s: err %v, %q, %v; want %q uid %d %v", p, err, b, st, want.body, want.uid, want.mode)
			}
		}
		gets := api.gets
		out, err = run(t, api, goodSum, root)
		if err != nil || api.gets != gets || !strings.Contains(out, "is in place") {
			t.Errorf("second boot: err %v, %d downloads more:\n%s", err, api.gets-gets, out)
		}
	})
	// With database.pooler, PgBouncer's auth file is written from the
	// database password just fetched, a " in it doubled, owned by
	// postgres, and the unit orders itself before pgbouncer.service.
	t.Run("writes PgBouncer's auth file", func(t *testing.T) {
		root := t.TempDir()
		s, err := stack(t, `app_source: kind: "image"
secrets: {"/etc/shop/env": "/shop/env", "/etc/shop/secrets/cache": "/shop/cache", "/etc/shop/secrets/db": "/shop/db"}`,
			`database: {engine: "postgresql", host: "db.internal", name: "shop", password_file: "/etc/shop/secrets/db", pooler: {}}`)
		if err != nil {
			t.Fatal(err)
		}
		fs := generate(t, s, artifact.Options{Root: root})
		if u := string(fs[instance.UnitPath(&s.App)].Content); !strings.Contains(u, "\nBefore=pgbouncer.service\n") {
			t.Errorf("the unit does not start before PgBouncer:\n%s", u)
		}
		script := filepath.Join(root, "script")
		if err := os.WriteFile(script, fs[instance.ScriptPath(&s.App)].Content, 0o755); err != nil {
			t.Fatal(err)
		}
		api := &awsStandIn{params: map[string]string{"/shop/env": "K=1", "/shop/cache": "c", "/shop/db": `pa"ss word`}}
		srv := httptest.NewServer(api)
		defer srv.Close()
		cmd := exec.Command("sh", script)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + root, "AWS_SSM_ENDPOINT=" + srv.URL,
			"AWS_ACCESS_KEY_ID=AKIDSTANDIN", "AWS_SECRET_ACCESS_KEY=standin-secret", "AWS_EC2_METADATA_DISABLED=true"}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		p := filepath.Join(root, "etc/pgbouncer/userlist.txt")
		b, err := os.ReadFile(p)
		st, _ := os.Stat(p)
		pg, _ := user.Lookup("postgres")
		if err != nil || string(b) != `"shop" "pa""ss word"`+"\n" || st.Mode().Perm() != 0o640 || pg == nil || strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)) != pg.Uid {
			t.Errorf("userlist.txt: err %v, %q, %v; want the user and the doubled password, 0640 postgres", err, b, st)
		}
	})
	t.Run("refuses another archive", func(t *testing.T) {
		root := t.TempDir()
		api := &awsStandIn{objects: map[string][]byte{"/releases/shop-1.tar.gz": bad}, params: params}
		out, err := run(t, api, goodSum, root)
		if err == nil || !strings.Contains(out, "refused s3://releases/shop-1.tar.gz: its sha256 is") {
			t.Errorf("err %v:\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(root, "srv/shop/wsgi.py")); err == nil {
			t.Error("the refused archive was extracted")
		}
	})
}
