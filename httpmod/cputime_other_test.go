//go:build !unix

package httpmod_test

import "time"

// processCPU: not read here.
func processCPU() (time.Duration, bool) { return 0, false }
