//go:build !unix

package httpmod

// openFileLimit: no limit to read here; the public connections are not
// bounded by default.
func openFileLimit() (uint64, bool) { return 0, false }
