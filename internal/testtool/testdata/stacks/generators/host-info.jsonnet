// A static metric for node_exporter's textfile collector (the built-in
// node-exporter generator enables it on every host): the host's name and
// roles as Prometheus sees them, for dashboards that group by role. A
// per-host generator: it runs once for each host, with the host as an
// argument.
function(stack, host) {
  '/var/lib/prometheus/node-exporter/hacompile_host.prom': {
    content: std.join('\n', [
      '# ' + stack.header,
      '# HELP hacompile_host_info The stack host this machine is, from ' + stack.name + '.',
      '# TYPE hacompile_host_info gauge',
      'hacompile_host_info{host="' + host.name + '",roles="' + std.join(',', host.roles) + '"} 1',
      '',
    ]),
  },
}
