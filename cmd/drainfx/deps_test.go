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

// Each module brings only what it needs: a service on lifecycle and the
// net/http server (examples/minimal) links no router, no WebSocket
// library, no gRPC and no database driver; the net/http example with
// sessions links gorilla/websocket but no echo; sqlmod links no driver.
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
		{"github.com/drainfx/drainfx/examples/minimal",
			[]string{"github.com/labstack/", "github.com/gorilla/", "google.golang.org/grpc", "modernc.org/", "github.com/jackc/"},
			[]string{"github.com/drainfx/drainfx/httpmod", "go.uber.org/fx"}},
		{"github.com/drainfx/drainfx/examples/nethttp",
			[]string{"github.com/labstack/", "google.golang.org/grpc", "modernc.org/", "github.com/jackc/"},
			[]string{"github.com/gorilla/websocket"}},
		{"github.com/drainfx/drainfx/modules/sqlmod",
			[]string{"modernc.org/", "github.com/jackc/", "github.com/labstack/"},
			[]string{"database/sql"}},
		{"github.com/drainfx/drainfx/httpmod",
			[]string{"github.com/labstack/", "github.com/gorilla/"},
			[]string{"net/http"}},
		// One REST GET with net/http: no client-go, no Kubernetes types.
		{"github.com/drainfx/drainfx/modules/kubemod",
			[]string{"k8s.io/", "sigs.k8s.io/", "github.com/labstack/", "github.com/gorilla/"},
			[]string{"net/http", "encoding/json"}},
	}
	for _, tt := range tests {
		out, err := exec.Command("go", "list", "-deps", tt.give).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", tt.give, err)
		}
		deps := string(out)
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
