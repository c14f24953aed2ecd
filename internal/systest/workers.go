package systest

import (
	"context"
	"fmt"
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
	victim, sender := workers[len(workers)-1], workers[0]
	others := workers[:len(workers)-1]
	if !sr.check(fmt.Sprintf("Celery worker host frozen: every worker consumes before %s freezes", victim), e.waitConsumers(ctx, len(workers), 60*time.Second),
		"the broker does not count %d consumers of the default queue", len(workers)) {
		return
	}
	const n = 16
	bound := time.Duration(3*rabbitmq.HeartbeatSeconds+10) * time.Second
	m := e.hosts[victim]
	m.Freeze(true)
	frozen := time.Now()
	thawed := false
	defer func() {
		if !thawed {
			m.Freeze(false)
		}
	}()
	out, err := e.hosts[sender].Sh(ctx, e.taskSender()(n))
	ids := strings.Fields(out)
	ran := map[string]string{}
	// Held: some task is still not run a while after it was sent (the
	// frozen worker's prefetch). Without that the fault was not felt.
	held := false
	for err == nil && len(ids) == n && len(ran) < n && time.Since(frozen) < bound && ctx.Err() == nil {
		for _, h := range others {
			j, _ := e.hosts[h].Exec(ctx, "journalctl", "--no-pager", "-o", "cat", "-u", celery.WorkerUnit(&e.s.App))
			succeeded(j, ids, ran, h)
		}
		if time.Since(frozen) > 5*time.Second && len(ran) < n {
			held = true
		}
		time.Sleep(time.Second)
	}
	took := time.Since(frozen).Round(100 * time.Millisecond)
	sending := ""
	if err != nil || len(ids) != n {
		sending = fmt.Sprintf("; sending %d tasks: %v %s", n, err, lastLines(strings.TrimSpace(out), 3))
	}
	sr.check(fmt.Sprintf("Celery worker host %s frozen: the tasks it had prefetched are held", victim), held,
		"%d of %d tasks ran on %s within 5 s: the frozen worker held none%s", len(ran), len(ids), strings.Join(others, ", "), sending)
	sr.check(fmt.Sprintf("Celery worker host %s frozen: the broker drops it and the other workers run all %d tasks sent within %s (3 × heartbeat %d s + 10 s)", victim, n, bound, rabbitmq.HeartbeatSeconds),
		err == nil && len(ids) == n && len(ran) == n,
		"%d of %d run after %s%s", len(ran), len(ids), took, sending)
	m.Freeze(false)
	thawed = true
	sr.check(fmt.Sprintf("Celery worker host %s thawed: it consumes from the broker again", victim), e.waitConsumers(ctx, len(workers), 60*time.Second),
		"the broker counts fewer than %d consumers 60 s after the thaw", len(workers))
}
