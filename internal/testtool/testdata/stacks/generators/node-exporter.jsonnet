// node_exporter (Debian: prometheus-node-exporter) listens on the host's
// private address only, where the stack's monitoring/prometheus.yml
// scrapes it, instead of on every interface. A per-host generator: it
// runs once for each host, with the host as an argument.
function(stack, host) {
  '/etc/default/prometheus-node-exporter': {
    content: std.join('\n', [
      '# ' + stack.header,
      '# Read by prometheus-node-exporter.service as its $ARGS.',
      'ARGS="--web.listen-address=' + host.address + ':9100 --collector.systemd"',
      '',
    ]),
    reload: 'systemctl restart prometheus-node-exporter',
  },
}
