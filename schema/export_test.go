package schema

// SetSplitMin sets the number of hosts from which stacks are evaluated
// in parts, and returns the previous setting's restorer.
func SetSplitMin(n int) func() {
	old := splitMin
	splitMin = n
	return func() { splitMin = old }
}

// PartsLoaded counts the stacks this loader evaluated in parts.
func (l *Loader) PartsLoaded() int64 { return l.partsLoaded.Load() }

// HostsLike counts the hosts this loader evaluated as another host
// written alike.
func (l *Loader) HostsLike() int64 { return l.hostsLike.Load() }

// SchemaCompiled reports whether the loader has compiled the schema in
// its own context (for a stack evaluated whole).
func (l *Loader) SchemaCompiled() bool { return l.ctx != nil }
