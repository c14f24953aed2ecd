package site

// SetSourcePageLines sets how many lines of a stack file one source page
// lists, for a test, and returns what restores it.
func SetSourcePageLines(n int) (restore func()) {
	old := sourcePageLines
	sourcePageLines = n
	return func() { sourcePageLines = old }
}
