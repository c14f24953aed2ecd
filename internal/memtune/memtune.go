// Package memtune bounds how far the Go heap may grow past what it holds
// live. With the runtime's default (GOGC=100) a collection starts when
// the heap reaches twice what the last one left live, so a build whose
// live heap peaks at 350 MB for a moment took 750 MB of memory. Start
// sets a soft memory limit that follows the live heap instead:
// the largest of Floor and Ratio times the most the heap has held live
// so far. Below the limit the collector paces itself as by default (no
// extra work for small stacks); near a peak it collects sooner. Nor does
// a collection start before the heap reaches MinGoal. The
// limit only rises with the live heap, so it never sits under what the
// program needs, and the collector never thrashes against it.
//
// A GOGC or GOMEMLIMIT in the environment is the operator's choice:
// Start then changes nothing.
package memtune

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// Floor is the least the limit is: under it the collector paces itself
// as the runtime's default does.
const Floor = 512 << 20

// Ratio is the limit over the largest live heap: at most half again as
// much memory as the heap needs (the default's pace allows twice).
const Ratio = 1.5

// MinGoal is the least heap a collection waits for. The default's pace
// starts one each time the heap doubles, from 4 MB: a 1,000-host build
// ran 12 of its 20 collections under 30 MB, each marking what little
// was live. Waiting for MinGoal leaves the peak where it was (twice the
// largest live heap, or the limit) and the collections fewer.
const MinGoal = 64 << 20

var (
	mu      sync.Mutex
	started bool
	limit   int64 // the limit set, 0 before Start
	floor   int64
	// What the collector found live, and the roots it scans besides
	// (which its pace counts in: the goal is live + (live + roots) ×
	// GOGC/100).
	live = []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}
)

// Start sets the limit and keeps it following the live heap, updated
// after every collection. It does nothing when the environment sets
// GOGC or GOMEMLIMIT, or when it was started already.
func Start() { start(Floor) }

func start(f int64) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if started {
		return
	}
	started, floor, limit = true, f, f
	debug.SetMemoryLimit(limit)
	metrics.Read(live)
	pct = pace(uint64s(live))
	debug.SetGCPercent(pct)
	arm()
}

// pct is the collector's pace that update set last.
var pct int

// uint64s is the samples' values (0 for one the runtime does not have).
func uint64s(ss []metrics.Sample) []uint64 {
	vs := make([]uint64, len(ss))
	for i, s := range ss {
		if s.Value.Kind() == metrics.KindUint64 {
			vs[i] = s.Value.Uint64()
		}
	}
	return vs
}

// pace is the GOGC that makes the heap's next goal MinGoal, given the
// live heap, stack and globals (uint64s of live), or the default's (100)
// once the default's goal is more.
func pace(v []uint64) int {
	heap, roots := v[0], max(v[0]+v[1]+v[2], 1<<20)
	if heap+roots >= MinGoal {
		return 100
	}
	return int((MinGoal - heap) * 100 / roots)
}

// Limit is the limit Start set and keeps (0 when it did not start).
func Limit() int64 {
	mu.Lock()
	defer mu.Unlock()
	return limit
}

// sentinel is an object nothing references: the collection after it
// is made finds it unreachable and runs its finalizer, which updates the
// limit and makes the next one. (It holds a pointer so that it is not
// a tiny allocation, whose finalizer may never run.)
type sentinel struct{ p *int }

func arm() {
	runtime.SetFinalizer(&sentinel{p: new(int)}, func(*sentinel) {
		update()
		arm()
	})
}

// update raises the limit to Ratio times the live heap when that is
// higher.
func update() {
	mu.Lock()
	defer mu.Unlock()
	metrics.Read(live)
	if live[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if l := int64(float64(live[0].Value.Uint64()) * Ratio); l > limit {
		limit = max(l, floor)
		debug.SetMemoryLimit(limit)
	}
	if p := pace(uint64s(live)); p != pct {
		pct = p
		debug.SetGCPercent(p)
	}
}
