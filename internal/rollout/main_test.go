package rollout_test

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/internal/proctest"
)

// binDir holds the binaries the tests build (without -race: they are
// separate processes, and the race detector would distort their timing).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rollout-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

var (
	buildMu sync.Mutex
	built   = map[string]string{}
)

// binary builds the main package at pkg (relative to this directory) once.
func binary(t *testing.T, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	bin, err := proctest.BuildErr(pkg, binDir)
	if err != nil {
		t.Fatal(err)
	}
	built[pkg] = bin
	return bin
}
