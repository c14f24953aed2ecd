package site

// SetSourcePageLines sets how many lines of a stack file one source page
// lists, for a test, and returns what restores it.
func SetSourcePageLines(n int) (restore func()) {
	old := sourcePageLines
	sourcePageLines = n
	return func() { sourcePageLines = old }
}

// SetHostsPerSearchPart sets how many hosts' entries a stack's part of
// the search index holds before they go to host parts, for a test, and
// returns what restores it.
func SetHostsPerSearchPart(n int) (restore func()) {
	old := hostsPerSearchPart
	hostsPerSearchPart = n
	return func() { hostsPerSearchPart = old }
}

// SearchHostPartOf is the path of the host part of the search index that
// holds host's entries, on a stack named stack of hosts hosts.
func SearchHostPartOf(stack, host string, hosts int) string {
	return searchHostPartPath(stack, searchHostPart(host, searchHostParts(hosts)))
}
