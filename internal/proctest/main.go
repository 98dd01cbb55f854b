package proctest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// Main is the TestMain of a package whose tests run the binary of the main
// package at pkg (usually "."): it builds the binary into a temporary
// directory and sets *bin, runs the tests, removes the directory and, if
// the tests passed, fails the run on leaked goroutines ([goleak.Find]).
// It exits the process with the run's code (1 if the build failed).
//
//	var bin string
//
//	func TestMain(m *testing.M) { proctest.Main(m, ".", &bin) }
func Main(m *testing.M, pkg string, bin *string) {
	os.Exit(runMain(m, pkg, bin))
}

func runMain(m *testing.M, pkg string, bin *string) int {
	abs, err := filepath.Abs(pkg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", filepath.Base(abs))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := func() int {
		defer os.RemoveAll(dir)
		b, err := BuildErr(pkg, dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		*bin = b
		return m.Run()
	}()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	return code
}
