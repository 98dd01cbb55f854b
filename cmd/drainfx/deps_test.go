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
	// The library's modules and this one (README, "Modules"): go list
	// runs in each, so that each module's own go.mod and go.sum answer.
	for _, dir := range []string{
		"../..", "../../httpmod/echoroute", "../../modules/grpcmod", "../../modules/metricsmod",
		"../../modules/sqlmod", "../../modules/workermod", ".",
	} {
		out := goListDeps(t, dir, "./...")
		var n int
		for pkg := range strings.Lines(out) {
			n++
			for _, banned := range []string{"helm.sh/", "github.com/prometheus-operator/"} {
				if strings.HasPrefix(pkg, banned) {
					t.Errorf("%s: %s is in the dependency graph", dir, strings.TrimSpace(pkg))
				}
			}
		}
		if n < 10 {
			t.Fatalf("go list in %s listed %d packages:\n%s", dir, n, out)
		}
	}
}

// goListDeps runs go list -deps pattern in dir, in the module that holds
// dir (or the workspace).
func goListDeps(t *testing.T, dir, pattern string) string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pattern)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps %s in %s: %v\n%s", pattern, dir, err, stderr)
	}
	return string(out)
}

// Each module brings only what it needs: a service on lifecycle and the
// net/http server (examples/minimal) links no router, no WebSocket
// library, no gRPC and no database driver; the net/http example with
// sessions links gorilla/websocket but no echo; sqlmod links no driver.
// (The module graph of an app on the core: modules' TestCoreModuleGraph.)
func TestEachModuleBringsOnlyWhatItNeeds(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("go list: skipped in -short mode")
	}
	tests := []struct {
		give    string
		wantNot []string
		want    []string // sanity: what it does link
	}{
		{"../../examples/minimal",
			[]string{"github.com/labstack/", "github.com/gorilla/", "google.golang.org/grpc", "modernc.org/", "github.com/jackc/"},
			[]string{"github.com/drainfx/drainfx/httpmod", "go.uber.org/fx"}},
		{"../../examples/nethttp",
			[]string{"github.com/labstack/", "google.golang.org/grpc", "modernc.org/", "github.com/jackc/"},
			[]string{"github.com/gorilla/websocket"}},
		{"../../modules/sqlmod",
			[]string{"modernc.org/", "github.com/jackc/", "github.com/labstack/"},
			[]string{"database/sql"}},
		// No test clock in a service; the bundle without metricsmod links no
		// Prometheus client.
		{"../../probemod",
			[]string{"github.com/jonboulle/clockwork", "go.uber.org/goleak"},
			[]string{"github.com/drainfx/drainfx/lifecycle"}},
		{"../../modules",
			[]string{"github.com/prometheus/", "github.com/labstack/", "google.golang.org/grpc"},
			[]string{"github.com/drainfx/drainfx/probemod"}},
		{"../../httpmod",
			[]string{"github.com/labstack/", "github.com/gorilla/"},
			[]string{"net/http"}},
		// One REST GET with net/http: no client-go, no Kubernetes types.
		{"../../modules/kubemod",
			[]string{"k8s.io/", "sigs.k8s.io/", "github.com/labstack/", "github.com/gorilla/"},
			[]string{"net/http", "encoding/json"}},
	}
	for _, tt := range tests {
		deps := goListDeps(t, tt.give, ".")
		for _, bad := range tt.wantNot {
			if strings.Contains(deps, "\n"+bad) || strings.HasPrefix(deps, bad) {
				t.Errorf("%s links %s*", tt.give, bad)
			}
		}
		for _, good := range tt.want {
			if !strings.Contains(deps, good) {
				t.Errorf("%s does not link %s: the check would prove nothing", tt.give, good)
			}
		}
	}
}
