package memtune

import (
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"
)

var held [][]byte

// TestLimitFollowsLiveHeap: the limit starts at the floor and, once the
// heap holds more live than the floor allows for, rises to half again
// what it holds, so it never sits under what the program needs.
func TestLimitFollowsLiveHeap(t *testing.T) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		t.Skip("the environment sets the collector's pace")
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const f = 32 << 20
	start(f)
	if got := debug.SetMemoryLimit(-1); got != f || Limit() != f {
		t.Fatalf("limit %d after start (Limit %d), want the floor %d", got, Limit(), f)
	}
	// 64 MiB held live: the limit must reach 1.5 times that.
	for range 64 {
		held = append(held, make([]byte, 1<<20))
	}
	want := int64(64 << 20 * Ratio)
	deadline := time.Now().Add(10 * time.Second)
	for Limit() < want && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := debug.SetMemoryLimit(-1); got < want || got != Limit() {
		t.Fatalf("with 64 MiB live the limit is %d (Limit %d), want at least %d", got, Limit(), want)
	}
	// It does not fall when the heap does.
	high := Limit()
	held = nil
	for range 3 {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if Limit() != high {
		t.Errorf("the limit fell from %d to %d", high, Limit())
	}
}

// TestEnvironmentDecides: with GOGC or GOMEMLIMIT set, Start leaves the
// runtime's limit alone (checked in a child process, whose runtime read
// the variable).
func TestEnvironmentDecides(t *testing.T) {
	if os.Getenv("MEMTUNE_CHILD") != "" {
		before := debug.SetMemoryLimit(-1)
		Start()
		if after := debug.SetMemoryLimit(-1); after != before || Limit() != 0 {
			t.Fatalf("Start changed the limit from %d to %d", before, after)
		}
		return
	}
	for _, env := range []string{"GOGC=100", "GOMEMLIMIT=1GiB"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestEnvironmentDecides$", "-test.v")
		cmd.Env = append(os.Environ(), "MEMTUNE_CHILD=1", env)
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Errorf("%s: %v\n%s", env, err, out)
		}
	}
}
