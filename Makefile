# hacompile — build the example stacks, run the tests.
#
#   make build   render stacks/ into out/
#   make test    install the system tools the tests run (when missing), go test,
#                then the system test (make systest: hacompile test, as root)
#   make roots   build (once, cached) the Debian 13 root whose tools the tests run
#   make check   go mod tidy -diff, go vet, tests with -race, build --check
#   make fuzz    run every fuzz target for FUZZTIME each (not part of make test)

GO       ?= go
FUZZTIME ?= 30s

# Debian packages whose real tools the tests run: nginx -t, haproxy -c,
# gunicorn --check-config (with gevent workers), Starman, systemd-analyze,
# cloud-init schema, promtool (prometheus), a live Celery worker against
# redis-server, memcached, RabbitMQ, PgBouncer and PostgreSQL (with its exporter) for
# the data services' live tests, OpenSSH servers for push, headless Chromium for the runbook
# site, unshare/ip (util-linux, iproute2) for network namespaces, keepalived
# (keepalived -t), curl and awscli for the reserved-IP notify scripts,
# debootstrap for the Debian 13 root (make roots) and the system test's
# images, systemd-container (systemd-nspawn) to boot its hosts.
TEST_DEBS := nginx haproxy openssl gunicorn python3-gevent starman systemd perl python3 \
	docker-registry cloud-init prometheus prometheus-alertmanager prometheus-node-exporter prometheus-redis-exporter mtail \
	redis-server memcached celery python3-celery python3-redis keepalived curl awscli \
	pgbouncer postgresql postgresql-client prometheus-postgres-exporter rabbitmq-server \
	openssh-server openssh-client chromium iproute2 util-linux git debootstrap systemd-container

.PHONY: build test systest check tools roots fuzz bench

build:
	$(GO) run ./cmd/hacompile build

tools:
	@missing=""; \
	for p in $(TEST_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
	  echo "make: the tests need these Debian/Ubuntu packages:$$missing (no apt-get here)"; exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "make: installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "make: the tests need:$$missing"; \
	  echo "  sudo apt-get install -y --no-install-recommends$$missing"; \
	fi

# The Debian releases other than this machine's, as debootstrapped roots
# cached in ~/.cache/hacompile/roots (HACOMPILE_ROOTS overrides): the tests
# of internal/releasetest run their nginx, haproxy, keepalived, mtail,
# systemd-analyze, cloud-init, promtool, amtool and openssl under chroot. The tests build a missing root
# themselves; this target does it up front. It needs root and the network;
# without them it fails under CI=true and says why otherwise.
ROOT_RELEASES ?= debian-13
roots: tools
	@for r in $(ROOT_RELEASES); do \
	  $(GO) run ./internal/debroot/ensure_main.go $$r || { [ "$$CI" != true ] && echo "make: no $$r root; its tests will skip"; } || exit 1; \
	done
	@$(GO) run ./internal/debroot/ensure_main.go debian-13 -verifier || { [ "$$CI" != true ] && echo "make: no debian-13 root with skopeo; TestSkopeoVerifies will skip"; } || exit 1

# go test runs every package but the system test's; make systest runs
# that one after, alone (and runs whether go test passed or not, so one
# run reports both): its broken variants boot containers two at a
# time, which beside the other packages' tests starves headless Chromium.
test: tools roots
	@rc=0; \
	$(GO) test -count=1 $$($(GO) list ./... | grep -v '/internal/systest$$') || rc=1; \
	$(MAKE) --no-print-directory systest || rc=1; \
	exit $$rc

# The system test: every example stack booted as systemd containers from
# its cloud-init (hacompile test, three stacks at a time), then the broken
# variants (go test ./internal/systest: stacks built not to survive a
# fault must fail its scenario). It needs root for namespaces and
# containers; without it, it is skipped here and fails under CI=true.
SYSTEST_PARALLEL ?= 3
systest: tools
	@if [ "$$(id -u)" != 0 ] && [ "$$CI" != true ]; then \
	  echo "make: hacompile test needs root; skipped (run: sudo make systest)"; \
	  exec $(GO) test -count=1 -timeout 30m ./internal/systest; \
	fi; \
	$(GO) build -o .hacompile-systest ./cmd/hacompile && ./.hacompile-systest test -j $(SYSTEST_PARALLEL); rc=$$?; rm -f .hacompile-systest; \
	$(GO) test -count=1 -timeout 30m -parallel $(SYSTEST_PARALLEL) ./internal/systest || rc=1; \
	exit $$rc

check: tools roots
	$(GO) mod tidy -diff
	$(GO) vet ./...
	$(GO) test -count=1 -race ./...
	$(GO) run ./cmd/hacompile build --check

fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Fleet benchmarks: 10 to 10,000 hosts, whole-process build/rebuild/check/vet
# against cue export, cue export + Hugo chained (Debian's hugo, installed when
# missing; the bench fails without it) and a plain file writer; writes
# bench.json. Not part of make test. BENCH_SIZES=10,100 for a quick run;
# BENCH_DIR=/dev/shm writes the fleets to memory instead of the disk;
# BENCH_RUNS is the number of runs each median is taken over;
# BENCH_BASE=REV measures that git revision's hacompile beside this one's
# in the same run (full, no-op, one host changed, one stack of two
# changed, --check, vet), each case's runs alternating between the two,
# and prints the ratios (the median of each run's ratio).
BENCH_SIZES ?= 10,100,1000,10000
BENCH_DIR ?=
# Hosts of the delivery benchmarks: converging from the registry, and
# sshd instances for push and Ansible.
BENCH_PULL_HOSTS ?= 1000
BENCH_SSH_HOSTS ?= 10
BENCH_RUNS ?= 3
BENCH_BASE ?=
bench:
	@if ! { command -v hugo && command -v ansible-playbook; } >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "make: installing hugo and ansible"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hugo ansible; \
	  else \
	    sudo -n sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hugo ansible' || \
	      echo "make: the bench needs hugo and ansible: sudo apt-get install -y --no-install-recommends hugo ansible"; \
	  fi; \
	fi
	$(GO) run ./internal/bench -sizes $(BENCH_SIZES) -runs $(BENCH_RUNS) -dir "$(BENCH_DIR)" -base "$(BENCH_BASE)" -json bench.json
	# Delivery: hosts converging from one publish --oci to a local registry,
	# and the same files by push and by Ansible to sshd on loopback.
	HACOMPILE_BENCH_PULL_HOSTS=$(BENCH_PULL_HOSTS) HACOMPILE_BENCH_SSH_HOSTS=$(BENCH_SSH_HOSTS) \
	  $(GO) test -run '^$$' -bench 'PullFleet|PushFleet' -benchtime 1x -timeout 60m ./internal/oci/
	$(GO) test -run '^$$' -bench . -benchmem ./schema/ ./generators/... ./internal/compile/ ./site/
