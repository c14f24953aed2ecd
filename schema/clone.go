package schema

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
)

// Clone copies a stack deeply enough that a procedure may add, remove
// or change hosts, the database's replicas and the aliases without
// touching the original.
func (s *Stack) Clone() *Stack {
	c := *s
	c.index = nil
	c.Hosts = make(map[string]*Host, len(s.Hosts))
	for n, h := range s.Hosts {
		hc := *h
		hc.Roles = slices.Clone(h.Roles)
		c.Hosts[n] = &hc
	}
	if s.Database != nil {
		db := *s.Database
		db.Replicas = slices.Clone(db.Replicas)
		c.Database = &db
	}
	c.Aliases = slices.Clone(s.Aliases)
	// The apps are the copy's own: &c.App for one, copies for several.
	if s.AppsByName == nil {
		c.Apps = []*App{&c.App}
	} else {
		c.AppsByName = make(map[string]*App, len(s.AppsByName))
		c.Apps = nil
		for _, a := range s.Apps {
			ac := *a
			ac.Hosts = slices.Clone(a.Hosts)
			c.AppsByName[a.Name] = &ac
			c.Apps = append(c.Apps, &ac)
		}
	}
	return &c
}

// RunLike makes host name run the apps that host like runs, where the
// apps list their hosts (apps.<name>.hosts): a host added as a copy of
// another serves what it serves.
func (s *Stack) RunLike(name, like string) {
	for _, a := range s.Apps {
		if len(a.Hosts) > 0 && slices.Contains(a.Hosts, like) && !slices.Contains(a.Hosts, name) {
			a.Hosts = append(a.Hosts, name)
		}
	}
}

var numbered = regexp.MustCompile(`^(.*?)(\d+)$`)

// NextHost proposes a new host like the last host with role (nil when
// there is none): the next number of those hosts' name pattern, the
// first free address after the highest of their addresses, the same
// roles and size. The runbook's "add a host" procedure shows it, and
// the system test adds it.
func (s *Stack) NextHost(role string) *Host {
	hosts := s.HostsWithRole(role)
	if len(hosts) == 0 {
		return nil
	}
	last := hosts[len(hosts)-1]
	name := last.Name + "-2"
	if m := numbered.FindStringSubmatch(last.Name); m != nil {
		n, _ := strconv.Atoi(m[2])
		for {
			n++
			name = m[1] + strconv.Itoa(n)
			if s.Hosts[name] == nil {
				break
			}
		}
	}
	for s.Hosts[name] != nil {
		name += "-2"
	}
	var maxAddr netip.Addr
	for _, h := range hosts {
		if a, err := netip.ParseAddr(h.Address); err == nil && a.Compare(maxAddr) > 0 {
			maxAddr = a
		}
	}
	addr := maxAddr.Next()
	for used := true; used; {
		used = false
		for _, h := range s.Hosts {
			if h.Address == addr.String() {
				used = true
				addr = addr.Next()
			}
		}
	}
	h := *last
	h.Name, h.Address, h.Notes = name, addr.String(), ""
	h.Roles = slices.Clone(last.Roles)
	return &h
}
