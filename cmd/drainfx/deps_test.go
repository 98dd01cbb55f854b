package main

import (
	"os/exec"
	"strings"
	"testing"
)

// Helm's Go library and the Prometheus Operator's types are for the tests
// of the example's chart and monitoring objects only: no library package,
// and not the drainfx command, may link them.
func TestLibraryDependencies(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("go list: skipped in -short mode")
	}
	cmd := exec.Command("go", "list", "-deps",
		"github.com/drainfx/drainfx/lifecycle/...",
		"github.com/drainfx/drainfx/httpmod/...",
		"github.com/drainfx/drainfx/wsmod/...",
		"github.com/drainfx/drainfx/probemod/...",
		"github.com/drainfx/drainfx/modules/...",
		"github.com/drainfx/drainfx/cmd/drainfx/...",
	)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var n int
	for pkg := range strings.Lines(string(out)) {
		n++
		for _, banned := range []string{"helm.sh/", "github.com/prometheus-operator/"} {
			if strings.HasPrefix(pkg, banned) {
				t.Errorf("%s is in the dependency graph", strings.TrimSpace(pkg))
			}
		}
	}
	if n < 10 {
		t.Fatalf("go list listed %d packages:\n%s", n, out)
	}
}
