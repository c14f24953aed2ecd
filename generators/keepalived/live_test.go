package keepalived

import "time"

// waitFor polls cond until it holds or limit passes; it returns how long
// it took, or -1.
func waitFor(limit time.Duration, cond func() bool) time.Duration {
	start := time.Now()
	for time.Since(start) < limit {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return -1
}
