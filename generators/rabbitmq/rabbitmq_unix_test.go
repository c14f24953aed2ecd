//go:build unix

package rabbitmq_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hacompile/hacompile/generators/rabbitmq"
	"github.com/hacompile/hacompile/internal/testtool"
)

// A worker host that hangs (a Celery worker frozen, SIGSTOP) holding
// prefetched tasks: the node drops it within its heartbeat, and the
// tasks go back to the queue for the other workers. On RabbitMQ's
// default heartbeat (the rendered line removed) they are still held
// when the rendered bound has passed.
func TestLiveFrozenWorker(t *testing.T) {
	t.Parallel()
	testtool.Require(t, "rabbitmq-server", "rabbitmq-server")
	celery := testtool.Require(t, "/usr/bin/celery", "celery")
	if testing.Short() {
		t.Skip("starts RabbitMQ and a Celery worker")
	}
	// The node checks for a client's frames once a heartbeat and drops it
	// after two checks find none: within three heartbeats of its last.
	bound := time.Duration(3*rabbitmq.HeartbeatSeconds+10) * time.Second
	for _, rendered := range []bool{true, false} {
		t.Run(map[bool]string{true: "rendered", false: "default heartbeat"}[rendered], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			port, epmd, dist := testtool.FreePort(t, "127.0.0.41"), testtool.FreePort(t, "127.0.0.1"), testtool.FreePort(t, "127.0.0.1")
			pw := filepath.Join(dir, "broker-password")
			os.WriteFile(pw, []byte("s3cret-pw\n"), 0o600)
			s := stack(t, fmt.Sprintf(`queue: {engine: "rabbitmq", vhost: "shop", port: %d, password_file: %q, disk_free_limit_mb: 50}`, port, pw))
			var edits []func(string) string
			if !rendered {
				line := fmt.Sprintf("heartbeat = %d\n", rabbitmq.HeartbeatSeconds)
				edits = append(edits, func(conf string) string {
					if !strings.Contains(conf, line) {
						t.Fatalf("the configuration has no %q to remove", line)
					}
					return strings.Replace(conf, line, "", 1)
				})
			}
			ctl, env := runNode(t, s, dir, dist, epmd, edits...)
			setup := exec.Command(filepath.Join(dir, rabbitmq.SetupPath))
			setup.Env = env
			if out, err := setup.CombinedOutput(); err != nil {
				t.Fatalf("setup: %v %s", err, out)
			}
			work := filepath.Join(dir, "work")
			os.MkdirAll(work, 0o755)
			os.WriteFile(filepath.Join(work, "tasks.py"), []byte("import os\nfrom celery import Celery\napp = Celery('tasks', broker=os.environ['BROKER'])\n\n@app.task\ndef ping():\n    return 'pong'\n"), 0o644)
			// Debian's Python, which has Debian's Celery.
			wenv := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + dir, fmt.Sprintf("BROKER=amqp://shop:s3cret-pw@127.0.0.41:%d/shop", port)}
			// Celery's own defaults: broker heartbeat 120 s, 4 tasks
			// prefetched per process.
			w := exec.Command(celery, "-A", "tasks", "worker", "--pool", "solo", "--loglevel", "INFO")
			w.Dir, w.Env = work, wenv
			wlog, _ := os.Create(filepath.Join(dir, "worker.log"))
			w.Stdout, w.Stderr = wlog, wlog
			if err := w.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				w.Process.Signal(syscall.SIGCONT)
				w.Process.Kill()
				w.Wait()
			})
			queue := func() (ready, unacked, consumers int) {
				out, _ := ctl("-q", "list_queues", "-p", "shop", "name", "messages_ready", "messages_unacknowledged", "consumers")
				for _, l := range strings.Split(out, "\n") {
					if f := strings.Fields(l); len(f) == 4 && f[0] == "celery" {
						fmt.Sscan(f[1], &ready)
						fmt.Sscan(f[2], &unacked)
						fmt.Sscan(f[3], &consumers)
					}
				}
				return ready, unacked, consumers
			}
			for end := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
				if _, _, c := queue(); c == 1 {
					break
				}
				if time.Now().After(end) {
					b, _ := os.ReadFile(filepath.Join(dir, "worker.log"))
					t.Fatalf("the worker never consumed:\n%s", b)
				}
			}
			// What CeleryWorkersMissing counts: the queue's consumers, by
			// vhost and queue (the node's statistics lag up to 5 s).
			if rendered {
				consumed := regexp.MustCompile(`(?m)^rabbitmq_queue_consumers\{(vhost="shop",queue="celery"|queue="celery",vhost="shop")\} 1$`)
				var m []byte
				for end := time.Now().Add(15 * time.Second); !consumed.Match(m) && time.Now().Before(end); time.Sleep(time.Second) {
					m = metrics(t, dir)
				}
				if !consumed.Match(m) {
					t.Errorf("the node exports no consumer count 1 of queue celery in vhost shop:\n%s", grepLines(m, "rabbitmq_queue_consumers"))
				}
			}
			if err := w.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			frozen := time.Now()
			send := exec.Command("/usr/bin/python3", "-c", "import tasks\nfor _ in range(4): tasks.ping.delay()")
			send.Dir, send.Env = work, wenv
			if out, err := send.CombinedOutput(); err != nil {
				t.Fatalf("sending tasks: %v %s", err, out)
			}
			held := false
			for time.Since(frozen) < bound {
				ready, unacked, consumers := queue()
				held = held || unacked == 4
				if held && ready == 4 && unacked == 0 && consumers == 0 {
					if !rendered {
						t.Fatalf("with RabbitMQ's default heartbeat the frozen worker was dropped after %s: the test shows nothing", time.Since(frozen).Round(time.Second))
					}
					t.Logf("the frozen worker was dropped %s after it froze", time.Since(frozen).Round(100*time.Millisecond))
					return // dropped, and its tasks back for other workers
				}
				time.Sleep(time.Second)
			}
			ready, unacked, consumers := queue()
			if !held {
				t.Fatalf("the frozen worker never held the 4 tasks (ready %d, unacknowledged %d, consumers %d)", ready, unacked, consumers)
			}
			if rendered {
				t.Errorf("after %s the frozen worker still held its tasks: ready %d, unacknowledged %d, consumers %d", bound, ready, unacked, consumers)
			}
		})
	}
}
