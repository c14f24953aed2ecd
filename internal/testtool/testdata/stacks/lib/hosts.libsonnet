// Helpers for writing hacompile stacks in Jsonnet.
{
  // fleet returns n hosts named prefix1 … prefixN on consecutive
  // addresses of a /24 (net, starting at first), all with the same roles
  // and size, ready to add to a stack's hosts.
  fleet(prefix, n, net, first, roles, size):: {
    [prefix + i]: {
      address: net + '.' + (first + i - 1),
      roles: roles,
      size: size,
    }
    for i in std.range(1, n)
  },
}
