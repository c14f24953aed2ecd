// Package generators is the table of artifact kinds. Adding a kind means
// adding one package under generators/ and one row here; nothing
// registers itself from init().
package generators

import (
	"github.com/hacompile/hacompile/generators/appenv"
	"github.com/hacompile/hacompile/generators/artifact"
	"github.com/hacompile/hacompile/generators/aws"
	"github.com/hacompile/hacompile/generators/celery"
	"github.com/hacompile/hacompile/generators/cloudinit"
	"github.com/hacompile/hacompile/generators/digitalocean"
	"github.com/hacompile/hacompile/generators/gunicorn"
	"github.com/hacompile/hacompile/generators/haproxy"
	"github.com/hacompile/hacompile/generators/instance"
	"github.com/hacompile/hacompile/generators/keepalived"
	"github.com/hacompile/hacompile/generators/limits"
	"github.com/hacompile/hacompile/generators/memcached"
	"github.com/hacompile/hacompile/generators/monitoring"
	"github.com/hacompile/hacompile/generators/mtail"
	"github.com/hacompile/hacompile/generators/nginx"
	"github.com/hacompile/hacompile/generators/nodeexporter"
	"github.com/hacompile/hacompile/generators/pgbouncer"
	"github.com/hacompile/hacompile/generators/pull"
	"github.com/hacompile/hacompile/generators/rabbitmq"
	"github.com/hacompile/hacompile/generators/redis"
	"github.com/hacompile/hacompile/generators/redisexporter"
	"github.com/hacompile/hacompile/generators/sysctl"
	"github.com/hacompile/hacompile/generators/systemd"
)

// table lists every built-in generator, in the order their files are
// produced (the order never shows in output, which is sorted by path).
var table = []artifact.Generator{
	nginx.Gen{},
	haproxy.Gen{},
	keepalived.Gen{},
	gunicorn.Gen{},
	systemd.Gen{},
	sysctl.Gen{},
	limits.Gen{},
	monitoring.Gen{},
	appenv.Gen{},
	pgbouncer.Gen{},
	celery.Gen{},
	redis.Gen{},
	rabbitmq.Gen{},
	memcached.Gen{},
	instance.Gen{},
	digitalocean.Gen{},
	nodeexporter.Gen{},
	redisexporter.Gen{},
	mtail.Gen{},
	pull.Gen{},
}

// assemblers run after the table, over the files it produced.
var assemblers = []artifact.Assembler{
	cloudinit.Gen{},
	// After cloud-init's own documents: the launch template's user data
	// is the template host's cloud-init (built again from the same files).
	aws.Gen{},
}

// All returns the built-in generators.
func All() []artifact.Generator { return append([]artifact.Generator(nil), table...) }

// Assemblers returns the built-in assemblers.
func Assemblers() []artifact.Assembler { return append([]artifact.Assembler(nil), assemblers...) }
