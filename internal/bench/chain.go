//go:build unix

package main

// The comparison the benchmark exists for: what hacompile does in one
// process, done by chaining the tools one would otherwise use — `cue
// export` computing every host's config files with CUE templates over the
// same stack data, then Hugo rendering a page per host that shows them.

import (
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// writeHugoSites writes two Hugo sites with a page per host: its name,
// address, roles and size as front matter and its files as fenced code
// blocks. dir/hugo shows the files hostFilesCUE computes; dir/hugo-same
// shows, for each app, worker and cache host, the files samefiles.cue
// computes, which must be exactly the files hacompile wrote for it
// (checked here). Exporting the files
// and writing the pages (the glue between the two tools) is not timed.
func writeHugoSites(dir, cueBin string) error {
	cmd := exec.Command(cueBin, "export", "--out", "json", "cue/fleet.cue", "cue/hostfiles.cue", "cue/samefiles.cue")
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			err = fmt.Errorf("%v\n%s", err, ee.Stderr)
		}
		return fmt.Errorf("cue export of the per-host files: %w", err)
	}
	var v struct {
		Hosts map[string]struct {
			Address string   `json:"address"`
			Roles   []string `json:"roles"`
			Size    string   `json:"size"`
		} `json:"hosts"`
		Files map[string]map[string]string `json:"files"`
		Same  map[string]struct {
			Files map[string]string `json:"files"`
		} `json:"same"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	for name, h := range v.Hosts {
		s, ok := v.Same[name]
		if !ok {
			if slices.ContainsFunc(h.Roles, func(r string) bool { return slices.Contains(sameRoles, r) }) {
				return fmt.Errorf("samefiles.cue: no files for %s", name)
			}
			continue
		}
		want, err := hostFiles(dir, name)
		if err != nil {
			return err
		}
		if !maps.Equal(s.Files, want) {
			return fmt.Errorf("samefiles.cue: %s: the files are not those hacompile wrote (%d files, hacompile %d)", name, len(s.Files), len(want))
		}
	}
	for _, site := range []string{"hugo", "hugo-same"} {
		for name, text := range hugoSkeleton {
			if err := writeFile(filepath.Join(dir, site, name), []byte(text)); err != nil {
				return err
			}
		}
		for name, h := range v.Hosts {
			roles, _ := json.Marshal(h.Roles) // a JSON array is a YAML flow sequence
			var p strings.Builder
			fmt.Fprintf(&p, "---\ntitle: %q\nname: %q\naddress: %q\nroles: %s\nsize: %q\n---\n", name, name, h.Address, roles, h.Size)
			files := v.Files[name]
			if s, ok := v.Same[name]; ok && site == "hugo-same" {
				files = s.Files
			}
			for _, path := range slices.Sorted(maps.Keys(files)) {
				fmt.Fprintf(&p, "\n## /%s\n\n```%s\n%s```\n", path, lang(path), files[path])
			}
			if err := writeFile(filepath.Join(dir, site, "content", "hosts", name+".md"), []byte(p.String())); err != nil {
				return err
			}
		}
	}
	return nil
}

// lang is the fenced code block's language, for Hugo's highlighting.
func lang(path string) string {
	switch {
	case strings.Contains(path, "nginx"):
		return "nginx"
	case strings.HasSuffix(path, ".py"):
		return "python"
	case strings.HasSuffix(path, ".service"), strings.Contains(path, "sysctl"):
		return "ini"
	case strings.Contains(path, "haproxy"):
		return "haproxy"
	}
	return "text"
}

// hugoSkeleton is the Hugo site around the host pages: the least a
// runbook needs (a layout, a host page, a host list). Feeds, sitemap and
// taxonomies are off, as nothing here uses them.
var hugoSkeleton = map[string]string{
	"hugo.toml": `baseURL = "https://fleet.example.com/"
title = "fleet runbook"
disableKinds = ["RSS", "sitemap", "taxonomy", "term"]

[markup.highlight]
noClasses = false
`,
	// hugo-plain.toml is the same site with fenced code left unhighlighted:
	// the cheapest Hugo page per host, the one the chain is held to.
	"hugo-plain.toml": `baseURL = "https://fleet.example.com/"
title = "fleet runbook"
disableKinds = ["RSS", "sitemap", "taxonomy", "term"]

[markup.highlight]
codeFences = false
`,
	"content/hosts/_index.md": "---\ntitle: Hosts\n---\n",
	"layouts/_default/baseof.html": `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{{ .Title }} · {{ .Site.Title }}</title></head>
<body>
<nav><a href="{{ "/" | relURL }}">{{ .Site.Title }}</a> · <a href="{{ "/hosts/" | relURL }}">hosts</a></nav>
<main>{{ block "main" . }}{{ end }}</main>
</body>
</html>
`,
	"layouts/_default/single.html": `{{ define "main" }}<h1>{{ .Params.name }}</h1>
<table>
<tr><th>address</th><td>{{ .Params.address }}</td></tr>
<tr><th>roles</th><td>{{ delimit .Params.roles ", " }}</td></tr>
<tr><th>size</th><td>{{ .Params.size }}</td></tr>
</table>
{{ .TableOfContents }}
{{ .Content }}{{ end }}
`,
	"layouts/_default/list.html": `{{ define "main" }}<h1>{{ .Title }}</h1>
<ul>{{ range .Pages }}
<li><a href="{{ .RelPermalink }}">{{ .Title }}</a> {{ .Params.address }}</li>{{ end }}
</ul>{{ end }}
`,
}

// hostFilesCUE computes, in CUE alone, a handful of config files for every
// host of the fleet (exported as "files": host → path → text) by string
// interpolation over the stack's fields: what one would write to get
// per-host files out of CUE without hacompile. It is unified with a copy
// of the fleet's stack file that gains the same package clause (files
// without one cannot refer to each other's fields).
const hostFilesCUE = `package fleet

import (
	"list"
	"strings"
)

// Cores per droplet size, for gunicorn's worker count.
_cores: {"s-2vcpu-4gb": 2, "s-4vcpu-8gb": 4}

_apps: [for n, h in hosts if list.Contains(h.roles, "app") {name: n, address: h.address}]
_caches: [for n, h in hosts if list.Contains(h.roles, "cache") {h.address}]
_cacheAddr: [if len(_caches) > 0 {_caches[0]}, if len(_caches) == 0 {cache.host}][0]

_sysctl: strings.Join([for k, v in tuning.sysctl {"\(k) = \(v)"}], "\n")

files: {
	for hn, h in hosts {
		(hn): {
			"etc/sysctl.d/60-tuning.conf": """
				# \(name): kernel tuning for \(hn) (\(h.address)).
				\(_sysctl)
				net.ipv4.ip_local_port_range = 1024 65535
				net.ipv4.tcp_tw_reuse = 1
				fs.file-max = 2097152

				"""
			"etc/security/limits.d/60-nofile.conf": """
				# \(name): open file limits for \(hn).
				*    soft nofile 65536
				*    hard nofile 65536
				root soft nofile 65536
				root hard nofile 65536

				"""
			if list.Contains(h.roles, "lb") {
				"etc/haproxy/haproxy.cfg": """
					# \(name): HAProxy on \(hn) (\(h.address)), \(h.size).
					global
					    log /dev/log local0
					    maxconn \(balancer.maxconn)
					    user haproxy
					    group haproxy
					    daemon
					    stats socket /run/haproxy/admin.sock mode 660 level admin
					    ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256
					    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets

					defaults
					    log global
					    mode http
					    option httplog
					    option dontlognull
					    option forwardfor
					    timeout connect 5s
					    timeout client 30s
					    timeout server 30s

					frontend www
					    bind :80
					    bind :443 ssl crt /etc/haproxy/certs/\(domain).pem alpn h2,http/1.1
					    http-request redirect scheme https unless { ssl_fc } || { path_beg /.well-known/acme-challenge/ }
					    default_backend app

					backend app
					    balance roundrobin
					    option httpchk GET /healthz
					    http-check expect status 200
					\(strings.Join([for a in _apps {"    server \(a.name) \(a.address):80 check inter 2s fall 3 rise 2"}], "\n"))

					"""
			}
			if list.Contains(h.roles, "app") {
				"etc/nginx/conf.d/\(app.name).conf": """
					# \(name): nginx in front of gunicorn on \(hn) (\(h.address)).
					upstream \(app.name) {
					    server unix:/run/\(app.name)/gunicorn.sock fail_timeout=0;
					    keepalive 32;
					}

					server {
					    listen \(h.address):80 default_server;
					    server_name \(domain) \(hn).\(domain);
					    client_max_body_size 10m;
					    keepalive_timeout 65;
					    gzip on;
					    gzip_types text/css application/javascript application/json image/svg+xml;

					    location = /healthz {
					        access_log off;
					        proxy_pass http://\(app.name);
					    }
					\(strings.Join([for s in app.static {"""
						    location \(s.url) {
						        alias \(s.dir)/;
						        expires 30d;
						        access_log off;
						    }
						"""}], "\n"))
					    location / {
					        proxy_http_version 1.1;
					        proxy_set_header Connection "";
					        proxy_set_header Host $host;
					        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
					        proxy_set_header X-Forwarded-Proto $scheme;
					        proxy_read_timeout 30s;
					        proxy_pass http://\(app.name);
					    }
					}

					"""
				"etc/\(app.name)/gunicorn.conf.py": """
					# \(name): gunicorn settings for \(app.name) on \(hn) (\(h.size)).
					bind = ["unix:/run/\(app.name)/gunicorn.sock"]
					umask = 0o007
					workers = \(2*_cores[h.size]+1)
					worker_class = "\(app.worker_class)"
					threads = \(app.threads)
					timeout = 30
					graceful_timeout = 30
					keepalive = 5
					max_requests = 1000
					max_requests_jitter = 100
					backlog = 2048
					chdir = "\(app.working_dir)"
					proc_name = "\(app.name)"
					worker_tmp_dir = "/dev/shm"
					accesslog = "-"
					errorlog = "-"
					loglevel = "info"
					forwarded_allow_ips = "127.0.0.1"
					raw_env = [
					    "DATABASE_HOST=\(database.host)",
					    "DATABASE_NAME=\(database.name)",
					    "DATABASE_REPLICAS=\(strings.Join(database.replicas, ","))",
					    "DATABASE_REPLICA_POOL_SIZE=\(database.replica_pool_size)",
					    "CACHE_URL=\(cache.engine)://\(_cacheAddr):6379/0",
					    "ALLOWED_HOSTS=\(domain),\(hn).\(domain)",
					]

					"""
				"etc/systemd/system/\(app.name).service": """
					# \(name): \(app.name) on \(hn).
					[Unit]
					Description=\(app.name) (gunicorn \(app.module))
					Wants=network-online.target
					After=network-online.target

					[Service]
					Type=notify
					User=\(app.name)
					Group=www-data
					WorkingDirectory=\(app.working_dir)
					EnvironmentFile=/etc/\(app.name)/env
					ExecStart=\(app.virtualenv)/bin/gunicorn --config /etc/\(app.name)/gunicorn.conf.py \(app.module)
					ExecReload=/bin/kill -s HUP $MAINPID
					KillMode=mixed
					TimeoutStopSec=35s
					Restart=always
					RestartSec=5s
					LimitNOFILE=65536
					RuntimeDirectory=\(app.name)
					RuntimeDirectoryMode=0750
					NoNewPrivileges=yes
					PrivateTmp=yes
					ProtectSystem=strict
					ProtectHome=yes
					ProtectKernelTunables=yes
					ProtectControlGroups=yes
					RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
					SystemCallFilter=@system-service

					[Install]
					WantedBy=multi-user.target

					"""
			}
		}
	}
}
`
