// Command service is the drainfx example service: the route contract that
// the rollout check and the Kubernetes manifests in k8s/ are written for.
//
//	go run ./examples/service
//
// Public port PORT (8080):
//
//	GET  /            200 "ok"
//	POST /echo        200 with the request body
//	GET  /slow?ms=N   sleeps N ms, 0 to 60000 (or until the client leaves), 200 "ok"; 400 for another N
//	GET  /ws          WebSocket echo: every message (up to 1 MiB; larger: close 1009) is sent back
//	GET  /events      SSE: "data: N" every 100 ms until the stream ends
//	POST /hits        increments a counter row in the database, 200 with the count
//	GET  /hits        200 with the count
//	GET  /instances   the instances with a presence row, one a line
//
// Admin port ADMIN_PORT (9090): /livez, /healthz, /readyz (with the
// readiness check "db"), /startupz, /prestop.
//
// Environment: PORT, ADMIN_PORT, SHUTDOWN_GRACE_PERIOD (30s),
// SHUTDOWN_DRAIN_DELAY (5s), SHUTDOWN_DRAIN_QUIET (1s; 0s: a fixed drain),
// SHUTDOWN_MAX_DRAIN_DELAY, SHUTDOWN_DRAIN_MISS_PROBABILITY (0.001),
// SHUTDOWN_TEARDOWN_RESERVE (3s), SHUTDOWN_SESSION_CLOSE_RATE (1000
// WebSocket and SSE sessions ended per second in the stop phase; 0: all at
// once), PRESTOP_TOKEN
// (empty = none), POD_NAME and POD_NAMESPACE (from the downward API: with
// POD_NAME set, the pod's deletion is read from the Kubernetes API at D0,
// see modules/kubemod), DATABASE_URL (empty = an embedded SQLite file; or
// postgres://…), DATA_DIR (where that file lives; default
// $TMPDIR/drainfx-service). A bad value exits 1 with one line naming the
// variable, as does a DATA_DIR that cannot be written. Logs are JSON on
// stderr.
//
// A background worker ("presence") keeps a row for this process in the
// database while it runs and removes it in the teardown phase, after the
// servers have stopped and before the pool closes.
package main

import (
	// The database drivers this service uses: sqlmod imports none.
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"context"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/httpmod/echoroute"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/modules/kubemod"
	"github.com/drainfx/drainfx/modules/metricsmod"
	"github.com/drainfx/drainfx/modules/sqlmod"
	"github.com/drainfx/drainfx/modules/workermod"
	"github.com/drainfx/drainfx/wsmod"
)

// The variables the service reads beside those of [modules.FromEnv].
const (
	EnvDatabaseURL = "DATABASE_URL" // empty: embedded SQLite in DATA_DIR
	EnvDataDir     = "DATA_DIR"     // default $TMPDIR/drainfx-service
)

// config is everything the service reads from its environment.
type config struct {
	Web  modules.Config
	WS   wsmod.Config // SHUTDOWN_SESSION_CLOSE_RATE
	SQL  sqlmod.Config
	Kube kubemod.Config // POD_NAME, POD_NAMESPACE; off without a pod name
}

// loadConfig reads the service's configuration through lookup (pass
// os.LookupEnv). The error names the variable at fault; a database URL is
// shown with its password masked.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	web, err := modules.FromEnv(lookup)
	if err != nil {
		return config{}, err
	}
	ws, err := wsmod.FromEnv(lookup)
	if err != nil {
		return config{}, err
	}
	cfg := config{Web: web, WS: ws, Kube: kubemod.FromEnv(lookup)}
	cfg.SQL.DSN, _ = lookup(EnvDatabaseURL)
	cfg.SQL.DataDir, _ = lookup(EnvDataDir)
	if cfg.SQL.DataDir == "" {
		cfg.SQL.DataDir = filepath.Join(os.TempDir(), "drainfx-service")
	}
	// Validated apart, so that the error names the variable at fault; the
	// sqlmod error quotes the URL with its password masked.
	if err := (sqlmod.Config{DSN: cfg.SQL.DSN}).Validate(); err != nil {
		return config{}, fmt.Errorf("%s: %w", EnvDatabaseURL, err)
	}
	if err := cfg.SQL.Validate(); err != nil {
		return config{}, fmt.Errorf("%s=%q: %w", EnvDataDir, cfg.SQL.DataDir, err)
	}
	return cfg, nil
}

// app is the whole service as fx options, for main and for the in-process
// tests.
//
// The order of the options does not matter for the stop: the coordinator
// stops the servers and sessions first, then runs the teardown hooks in
// reverse order of registration — the worker (built after the pool it
// uses) before the pool.
func app(cfg config) fx.Option {
	return fx.Options(
		workermod.Module,
		workermod.AsWorker("presence", workermod.AtTeardown, newPresence),
		sqlmod.Module,
		fx.Supply(cfg.SQL),
		modules.Web(cfg.Web), // lifecycle + httpmod + probemod, StopTimeout from the budget
		metricsmod.Module,    // /metrics on the admin port
		wsmod.Module,
		fx.Supply(cfg.WS),
		fx.Provide(newStore),
		echoroute.Module, // the public routes on echo
		echoroute.AsRoute(newRoutes),
		// The real deadline of a pod deleted with a shorter grace period,
		// read at D0: on with POD_NAME set (the manifests in k8s/).
		kubemod.Module,
		fx.Supply(cfg.Kube),
	)
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "prestop" {
		// The preStop hook as an exec command: `/service prestop` drains the
		// running service through its admin port, with PRESTOP_TOKEN from
		// the container's environment (a Secret), and returns when the
		// drain has ended.
		r, err := modules.Prestop(context.Background(), os.LookupEnv)
		if err != nil {
			fmt.Fprintln(os.Stderr, "service prestop:", err)
			os.Exit(1)
		}
		fmt.Printf("service prestop: drained (%s, ended by %s, waited %s)\n", r.Reason, r.DrainEndedBy, r.Waited)
		return
	}
	cfg, err := loadConfig(os.LookupEnv)
	if err == nil {
		// A DATA_DIR that cannot be written is a bad value too: said here
		// in one line, not retried by the pool as an unreachable database.
		if derr := cfg.SQL.PrepareDataDir(); derr != nil {
			err = fmt.Errorf("%s=%q: %w", EnvDataDir, cfg.SQL.DataDir, derr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "service:", err)
		os.Exit(1)
	}
	log, err := zap.NewProduction() // JSON on stderr
	if err != nil {
		fmt.Fprintln(os.Stderr, "service: logger:", err)
		os.Exit(1)
	}
	fx.New(app(cfg), fx.Supply(log)).Run() // exits 1 if start-up failed or the shutdown cut anything
}
