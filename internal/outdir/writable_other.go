//go:build !unix

package outdir

// writable is a no-op here: a directory files cannot be made in fails
// the build at its first write.
func writable(dir string) error { return nil }
