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
	// The test's heap is small: the collector waits for MinGoal.
	mu.Lock()
	p := pct
	mu.Unlock()
	if got := debug.SetGCPercent(p); got != p || p <= 100 {
		t.Errorf("GOGC %d after start (memtune's %d), want more than 100 with a small heap", got, p)
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
	// Twice 64 MiB is past MinGoal: the default's pace again.
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC %d with 64 MiB live, want 100", got)
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
		if p := debug.SetGCPercent(100); p != 100 {
			t.Fatalf("Start changed GOGC to %d", p)
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

// TestPace: the pace puts the next goal (live + (live + roots) ×
// GOGC/100) at MinGoal while the default's would be under it.
func TestPace(t *testing.T) {
	for _, v := range [][]uint64{{0, 0, 0}, {2 << 20, 100 << 10, 900 << 10}, {20 << 20, 1 << 20, 2 << 20}} {
		p := pace(v)
		roots := max(v[0]+v[1]+v[2], 1<<20)
		goal := v[0] + roots*uint64(p)/100
		if goal > MinGoal || goal < MinGoal-MinGoal/100 || p <= 100 {
			t.Errorf("pace(%v) = %d: goal %d, want just under MinGoal %d", v, p, goal, MinGoal)
		}
	}
	if p := pace([]uint64{32 << 20, 1 << 20, 2 << 20}); p != 100 {
		t.Errorf("pace with the default's goal past MinGoal = %d, want 100", p)
	}
}
