// Command minimal is the smallest drainfx service: GET / answers "ok" on
// PORT (8080); probes, preStop and /metrics live on ADMIN_PORT (9090).
//
//	go run ./examples/minimal
//
// Environment: PORT, ADMIN_PORT, SHUTDOWN_GRACE_PERIOD (30s),
// SHUTDOWN_DRAIN_DELAY (5s), SHUTDOWN_DRAIN_QUIET (1s; 0s: a fixed drain),
// SHUTDOWN_MAX_DRAIN_DELAY, SHUTDOWN_DRAIN_MISS_PROBABILITY (0.001),
// PRESTOP_TOKEN (empty = none). A bad value exits
// 1 with one line naming the variable.
package main

import (
	"fmt"
	"net/http"
	"os"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/modules/metricsmod"
)

func main() {
	cfg, err := modules.FromEnv(os.LookupEnv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "minimal:", err)
		os.Exit(1)
	}
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "minimal: logger:", err)
		os.Exit(1)
	}
	fx.New(
		modules.Web(cfg),
		metricsmod.Module, // /metrics on the admin port
		fx.Supply(log),
		httpmod.AsRoute(newRoutes),
	).Run() // exits 1 if start-up failed or the shutdown cut anything
}

// newRoutes serves GET / on the standard library's ServeMux: the service
// links no router, no WebSocket library, no database driver.
func newRoutes() httpmod.Route {
	return httpmod.RouteFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte("ok"))
		})
	})
}
