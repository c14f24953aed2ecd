package compile_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hacompile/hacompile/internal/compile"
)

// TestReadInputsLinkOutOfRoot: a stack file that is a symbolic link out
// of the directory being built is refused, and what it points at is
// neither read nor echoed.
func TestReadInputsLinkOutOfRoot(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.cue")
	if err := os.WriteFile(secret, []byte("SECRET-CONTENT: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	stacks := filepath.Join(dir, "stacks")
	if err := os.Mkdir(stacks, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(stacks, "evil.cue")); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{stacks, filepath.Join(stacks, "evil.cue")} {
		in, err := compile.ReadInputs([]string{arg}, dir)
		if err == nil {
			t.Fatalf("ReadInputs(%s) read %q through the link", arg, in[0].Data)
		}
		msg := err.Error()
		if !strings.Contains(msg, "stacks/evil.cue") || !strings.Contains(msg, "outside") || strings.Contains(msg, "SECRET") {
			t.Errorf("ReadInputs(%s): %v", arg, err)
		}
	}
	// A link that stays inside the directory is followed.
	if err := os.WriteFile(filepath.Join(stacks, "real.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ok := filepath.Join(stacks, "ok.cue")
	if err := os.Symlink("real.txt", ok); err != nil {
		t.Fatal(err)
	}
	if in, err := compile.ReadInputs([]string{ok}, dir); err != nil || string(in[0].Data) != "x" {
		t.Errorf("ReadInputs(link inside) = %v, %v", in, err)
	}
}

// TestReadInputsFileName: a stack file whose name is not a stack name
// plus .cue or .jsonnet (a newline in it, say, which would be a line of
// its own in every generated file's header) is refused, named quoted.
func TestReadInputsFileName(t *testing.T) {
	dir := t.TempDir()
	stacks := filepath.Join(dir, "stacks")
	if err := os.Mkdir(stacks, 0o755); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(stacks, "shop\nX-Injected: yes.cue")
	if err := os.WriteFile(bad, []byte("name: \"shop\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{stacks, bad} {
		_, err := compile.ReadInputs([]string{arg}, dir)
		if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `"stacks/shop\nX-Injected: yes.cue"`) {
			t.Errorf("ReadInputs(%q) = %v", arg, err)
		}
	}
	_, err := compile.ReadInputsFS(fstest.MapFS{"Shop.cue": {Data: []byte("x")}}, []string{"Shop.cue"})
	if err == nil || !strings.Contains(err.Error(), "lower-case name") {
		t.Errorf("ReadInputsFS(Shop.cue) = %v", err)
	}
}
