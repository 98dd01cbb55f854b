//go:build unix

package httpmod

import "syscall"

// openFileLimit returns the process's soft limit on open files. (Go raises
// the soft limit to the hard one at start-up, on Linux since Go 1.19: this
// is the limit the process runs with.)
func openFileLimit() (uint64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, false
	}
	return uint64(rl.Cur), true // a conversion: int64 on some BSDs
}
