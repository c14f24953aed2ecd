// Every service of the stack logs to the journal (gunicorn's access and
// error logs go to stderr): bound the journal's disk use. It runs once
// (per_host: false) and its file goes to every host.
function(stack) {
  '/etc/systemd/journald.conf.d/60-hacompile.conf': {
    content: std.join('\n', [
      '# ' + stack.header,
      '[Journal]',
      'SystemMaxUse=1G',
      'MaxRetentionSec=1month',
      '',
    ]),
    reload: 'systemctl restart systemd-journald',
  },
}
