//go:build unix

package systest

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// Fabric is the test network of one stack: a namespace holding a
// bridge, and one namespace per host (and per test client) joined to
// it by a veth pair. The stack's own addresses live only inside these
// namespaces; the machine's namespace gets no address and no route to
// them, so nothing the test sends can leave the machine.
type Fabric struct {
	prefix  string // namespace name prefix, unique per run
	bridge  string // the fabric namespace
	mu      sync.Mutex
	n       int
	spaces  []string
	network netip.Prefix
}

// NewFabric creates the fabric namespace and its bridge for addresses
// in network.
func NewFabric(id string, network netip.Prefix) (*Fabric, error) {
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("the test network needs ip (apt-get install iproute2)")
	}
	f := &Fabric{prefix: "hct" + id, network: network}
	f.bridge = f.prefix + "-fab"
	if err := f.addNS(f.bridge); err != nil {
		return nil, err
	}
	if err := ipRun("-n", f.bridge, "link", "add", "br0", "type", "bridge"); err != nil {
		f.Close()
		return nil, err
	}
	if err := ipRun("-n", f.bridge, "link", "set", "br0", "up"); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Fabric) addNS(name string) error {
	if err := ipRun("netns", "add", name); err != nil {
		return err
	}
	f.mu.Lock()
	f.spaces = append(f.spaces, name)
	f.mu.Unlock()
	return ipRun("-n", name, "link", "set", "lo", "up")
}

// Attach creates a namespace for a host (or client) named name with the
// given addresses on its eth0, joined to the bridge. It returns the
// namespace's name and the bridge-side interface.
func (f *Fabric) Attach(name string, addrs ...netip.Addr) (ns, port string, err error) {
	return f.AttachAs(name, "eth0", addrs...)
}

// AttachAs is Attach with the host's interface named ifname (the
// provider's name for its private network, which keepalived names).
func (f *Fabric) AttachAs(name, ifname string, addrs ...netip.Addr) (ns, port string, err error) {
	f.mu.Lock()
	f.n++
	port = fmt.Sprintf("p%d", f.n)
	f.mu.Unlock()
	ns = f.prefix + "-" + name
	if err := f.addNS(ns); err != nil {
		return "", "", err
	}
	steps := [][]string{
		{"-n", f.bridge, "link", "add", port, "type", "veth", "peer", "name", ifname, "netns", ns},
		{"-n", f.bridge, "link", "set", port, "master", "br0", "up"},
		{"-n", ns, "link", "set", ifname, "up"},
	}
	for _, a := range addrs {
		steps = append(steps, []string{"-n", ns, "addr", "add", fmt.Sprintf("%s/%d", a, f.network.Bits()), "dev", ifname})
	}
	for _, s := range steps {
		if err := ipRun(s...); err != nil {
			return "", "", err
		}
	}
	return ns, port, nil
}

// SetLink takes a host's cable out (down) or puts it back: a host that
// is lost drops packets rather than refusing connections.
func (f *Fabric) SetLink(port string, up bool) error {
	state := "down"
	if up {
		state = "up"
	}
	return ipRun("-n", f.bridge, "link", "set", port, state)
}

// Close removes every namespace the fabric made (their interfaces go
// with them).
func (f *Fabric) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.spaces) - 1; i >= 0; i-- {
		_ = ipRun("netns", "del", f.spaces[i])
	}
	f.spaces = nil
}

func ipRun(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsDialer opens sockets inside a network namespace: the socket is
// created on a thread switched into the namespace and keeps belonging
// to it after the thread switches back, so one process drives clients
// in several namespaces.
type nsDialer struct {
	ns string
	d  net.Dialer
}

func (d *nsDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := inNS(d.ns, func() (net.Conn, error) { return d.d.DialContext(ctx, network, addr) })
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// listenIn opens a TCP listener inside a namespace.
func listenIn(ns, addr string) (net.Listener, error) {
	return inNS(ns, func() (net.Listener, error) { return net.Listen("tcp", addr) })
}

// waitTCP waits until addr accepts a connection from inside ns.
func waitTCP(ctx context.Context, ns, addr string) error {
	d := &nsDialer{ns: ns, d: net.Dialer{Timeout: time.Second}}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", addr, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
