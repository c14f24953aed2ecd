// Package releasetest proves the rendered stacks against each target
// release's own tools: every example stack is rendered for every
// release the tests can reach (this machine's own, and Debian 13 from a
// debootstrapped root cached by internal/debroot) and nginx -t,
// haproxy -c, keepalived -t, mtail --compile_only, systemd-analyze
// verify, cloud-init schema, promtool and amtool run on the result, the root's tools under chroot. A live handshake test checks
// the TLS each release's nginx and HAProxy offer on loopback. The
// package has tests only; those running the tools (in private namespaces,
// under chroot) are Linux only.
package releasetest
