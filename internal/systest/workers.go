//go:build unix

package systest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hacompile/hacompile/generators/celery"
	"github.com/hacompile/hacompile/generators/rabbitmq"
)

// workerFrozen hangs one Celery worker host (SIGSTOP on every process,
// its kernel still holding the broker's connection) while tasks are
// sent, with the stack's own RabbitMQ and two worker hosts or more. The
// broker hands the frozen worker its prefetch of them; it must drop the
// worker within its heartbeat, so that the other workers run every task,
// the frozen host's too, within three heartbeats and 10 s. Thawed, the
// host consumes again.
func (e *env) workerFrozen(ctx context.Context, sr *ScenarioReport) {
	w, q := e.s.Workers, e.s.Queue
	workers := e.hostsWith("worker")
	if w == nil || q == nil || q.Managed || q.Engine != "rabbitmq" || len(e.s.QueueHosts()) == 0 || len(workers) < 2 {
		return
	}
	// The victim is a worker host and nothing else: a broker, balancer
	// or cache frozen with it would be another fault.
	victim := ""
	for _, h := range slices.Backward(workers[1:]) {
		if !slices.ContainsFunc(e.s.Hosts[h].Roles, func(r string) bool { return r != "worker" }) {
			victim = h
			break
		}
	}
	add := func(note string) {
		if sr.Note != "" {
			sr.Note += "; "
		}
		sr.Note += note
	}
	if victim == "" {
		add("no Celery worker host but the first runs nothing else: none is frozen")
		return
	}
	if !slices.Contains(w.QueueNames(), standInQueue) {
		add("the workers do not consume Celery's default queue, where the stand-in app's tasks go: no Celery worker host is frozen")
		return
	}
	if sr.Note != "" {
		add("a Celery worker host is frozen all the same")
	}
	sender := workers[0]
	var others []string
	for _, h := range workers {
		if h != victim {
			others = append(others, h)
		}
	}
	if !sr.check(fmt.Sprintf("Celery worker host frozen: every worker consumes before %s freezes", victim), e.waitConsumers(ctx, len(workers), 60*time.Second),
		"the broker does not count %d consumers of the default queue", len(workers)) {
		return
	}
	// The rendered alerts must see the worker go: the broker's count of
	// its queues' consumers (CeleryWorkersMissing), the host's exporter
	// (HostDown).
	watch := e.watchAlerts(ctx, sr)
	defer watch.close()
	const n = 16
	bound := time.Duration(3*rabbitmq.HeartbeatSeconds+10) * time.Second
	m := e.hosts[victim]
	watch.mark()
	m.Freeze(true)
	frozen := time.Now()
	thawed := false
	defer func() {
		if !thawed {
			m.Freeze(false)
		}
	}()
	// A publisher the broker blocks (an alarm) would hang here with the
	// host frozen: the send has the bound too.
	sctx, cancel := context.WithTimeout(ctx, bound)
	out, err := e.hosts[sender].Sh(sctx, e.taskSender()(n))
	cancel()
	ids := strings.Fields(out)
	sent := time.Now()
	ran := map[string]string{}
	// Held: a few seconds after the send, the broker counts tasks
	// unacknowledged while every worker is still its consumer, the
	// frozen one's prefetch (the others ack a ping as they start it).
	// Without that the fault was not felt.
	held, heldSeen := false, ""
	for err == nil && len(ids) == n && len(ran) < n && time.Since(frozen) < bound && ctx.Err() == nil {
		for _, h := range others {
			j, _ := e.hosts[h].Exec(ctx, "journalctl", "--no-pager", "-o", "cat", "-u", celery.WorkerUnit(&e.s.App))
			succeeded(j, ids, ran, h)
		}
		if !held && time.Since(sent) >= 3*time.Second {
			var unacked, consumers int
			if v, ok := e.queueStats(ctx, "messages_unacknowledged", "consumers"); ok {
				unacked, consumers = v[0], v[1]
			}
			held = unacked > 0 && consumers == len(workers)
			heldSeen = fmt.Sprintf("%d unacknowledged, %d consumers %s after the send", unacked, consumers, time.Since(sent).Round(100*time.Millisecond))
		}
		time.Sleep(time.Second)
	}
	took := time.Since(frozen).Round(100 * time.Millisecond)
	sending := ""
	if err != nil || len(ids) != n {
		sending = fmt.Sprintf("; sending %d tasks: %v %s", n, err, lastLines(strings.TrimSpace(out), 3))
	}
	if heldSeen == "" {
		heldSeen = fmt.Sprintf("all run within 3 s of the send, %d of %d", len(ran), len(ids))
	}
	sr.check(fmt.Sprintf("Celery worker host %s frozen: it holds tasks it had prefetched", victim), held,
		"%s: the frozen worker held none%s", heldSeen, sending)
	sr.check(fmt.Sprintf("Celery worker host %s frozen: the broker drops it and the other workers run all %d tasks sent within %s (3 × heartbeat %d s + 10 s)", victim, n, bound, rabbitmq.HeartbeatSeconds),
		err == nil && len(ids) == n && len(ran) == n,
		"%d of %d run after %s%s", len(ran), len(ids), took, sending)
	// The broker's statistics lag up to 5 s behind its drop of the
	// worker; the host stays frozen until the alerts are seen.
	watch.expect(sr, fmt.Sprintf("Celery worker host %s frozen", victim), []expectation{
		{Name: "CeleryWorkersMissing", Labels: map[string]string{"queue": standInQueue}},
		{Name: "HostDown", Labels: map[string]string{"host": victim}},
	}, 20*time.Second)
	m.Freeze(false)
	thawed = true
	sr.check(fmt.Sprintf("Celery worker host %s thawed: it consumes from the broker again", victim), e.waitConsumers(ctx, len(workers), 60*time.Second),
		"the broker counts fewer than %d consumers 60 s after the thaw", len(workers))
}
