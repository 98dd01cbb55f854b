package modules_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// maxCoreGraph bounds the module graph of an app on the core modules:
// every requirement in drainfx's go.mod lands in that graph, so the
// integrations (echo, gRPC, SQL, Prometheus, Kubernetes types, the rollout
// check) live in modules of their own (README, "Modules").
const maxCoreGraph = 30

// coreApp is a service on the core packages, as a user writes it.
const coreApp = `package main

import (
	"context"
	"net/http"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
	"github.com/drainfx/drainfx/wsmod"
)

func main() {
	fx.New(
		modules.Web(modules.Config{}),
		wsmod.Module,
		httpmod.AsRoute(func(reg *wsmod.Registry) httpmod.Route {
			return httpmod.RouteFunc(func(mux *http.ServeMux) {
				mux.Handle("GET /ws", reg.WebSocket(func(context.Context, wsmod.Conn) error { return nil }))
			})
		}),
		probemod.AsCheck("db", func(context.Context) error { return nil }),
	).Run()
}
`

// An app that imports modules, httpmod, probemod and wsmod gets a module
// graph (go list -m all, what lands in its go.sum and in a dependency
// scanner's report) of at most maxCoreGraph modules, and links no test
// helper: no fake clock, no leak checker.
func TestCoreModuleGraph(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("go mod tidy: skipped in -short mode")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	goMod := "module example.com/app\n\ngo 1.26.0\n\nreplace github.com/drainfx/drainfx => " + root + "\n"
	// drainfx's go.sum holds every checksum the app needs: tidy looks
	// nothing up in the checksum database.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(goMod), "go.sum": sum, "main.go": []byte(coreApp)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		// The app stands alone (no go.work); GOPROXY as the environment
		// has it, the module cache holds what drainfx's tests need.
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.Output()
		if err != nil {
			var stderr []byte
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = ee.Stderr
			}
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return string(out)
	}
	run("mod", "tidy")

	graph := strings.Fields(run("list", "-m", "-f", "{{.Path}}", "all"))
	if len(graph) > maxCoreGraph || len(graph) < 5 {
		t.Errorf("the app's module graph has %d modules, want at most %d (and the basics):\n%s",
			len(graph), maxCoreGraph, strings.Join(graph, "\n"))
	}
	t.Logf("module graph of an app on modules, httpmod, probemod, wsmod: %d modules", len(graph))

	deps := strings.Fields(run("list", "-deps", "."))
	for _, pkg := range deps {
		for _, banned := range []string{
			"github.com/jonboulle/clockwork",
			"go.uber.org/goleak",
			"github.com/drainfx/drainfx/internal/clocktest",
			"github.com/drainfx/drainfx/internal/waittest",
		} {
			if pkg == banned || strings.HasPrefix(pkg, banned+"/") {
				t.Errorf("the app links %s, a test helper", pkg)
			}
		}
	}
	if !strings.Contains("\n"+strings.Join(deps, "\n")+"\n", "\ngithub.com/drainfx/drainfx/wsmod\n") {
		t.Fatalf("go list -deps lists no wsmod:\n%s", strings.Join(deps, "\n"))
	}
}
