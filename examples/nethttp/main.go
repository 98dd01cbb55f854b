// Command nethttp is the route contract of examples/service on the standard
// library's http.ServeMux alone — no echo in its dependency graph — with the
// same drain: the public routes on PORT, the probes, /prestop and /metrics
// on ADMIN_PORT, and the same environment (modules.FromEnv, wsmod.FromEnv).
//
// Public routes: GET / answers "ok"; POST /echo answers the request body (up
// to 1 MiB); GET /slow?ms=N answers "ok" after N ms (0–60000); GET /ws is a
// WebSocket echo, closed with 1001 at the stop phase; GET /events is an SSE
// stream of "data: N" every 100 ms, ended at the stop phase with a final
// event. There is no database: /hits and /instances are the echo example's.
//
// Environment: PORT, ADMIN_PORT, SHUTDOWN_GRACE_PERIOD (30s),
// SHUTDOWN_DRAIN_DELAY (5s), SHUTDOWN_DRAIN_QUIET (1s; 0s: a fixed drain),
// SHUTDOWN_MAX_DRAIN_DELAY, SHUTDOWN_DRAIN_MISS_PROBABILITY (0.001),
// SHUTDOWN_TEARDOWN_RESERVE (3s), SHUTDOWN_SESSION_CLOSE_RATE (1000 sessions
// ended per second in the stop phase; 0: all at once), PRESTOP_TOKEN (empty
// = none). A bad value exits 1 with one line naming the variable.
package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/demo"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/modules/metricsmod"
	"github.com/drainfx/drainfx/wsmod"
)

const (
	maxEchoBody   = 1 << 20 // POST /echo
	maxSlow       = 60 * time.Second
	eventInterval = 100 * time.Millisecond // GET /events
)

func main() {
	cfg, err := modules.FromEnv(os.LookupEnv)
	var ws wsmod.Config
	if err == nil {
		ws, err = wsmod.FromEnv(os.LookupEnv) // SHUTDOWN_SESSION_CLOSE_RATE
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nethttp:", err)
		os.Exit(1)
	}
	log, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nethttp: logger:", err)
		os.Exit(1)
	}
	fx.New(app(cfg), fx.Supply(ws), fx.Supply(log)).Run() // exits 1 if start-up failed or the shutdown cut anything
}

// app is the whole service as fx options.
func app(cfg modules.Config) fx.Option {
	return fx.Options(
		modules.Web(cfg),  // lifecycle + httpmod + probemod
		metricsmod.Module, // /metrics on the admin port
		wsmod.Module,
		httpmod.AsRoute(newRoutes),
	)
}

// newRoutes registers the public routes on the server's ServeMux.
func newRoutes(reg *wsmod.Registry) httpmod.Route {
	return httpmod.RouteFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { text(w, http.StatusOK, "ok") })
		mux.HandleFunc("POST /echo", echoBody)
		mux.HandleFunc("GET /slow", slow)
		mux.Handle("GET /ws", reg.WebSocket(demo.Echo))
		mux.Handle("GET /events", reg.SSE(demo.Ticks(eventInterval)))
	})
}

func text(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, s)
}

// echoBody answers with the request body (up to 1 MiB) and its content type.
func echoBody(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxEchoBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			text(w, http.StatusRequestEntityTooLarge, "body over 1 MiB")
			return
		}
		text(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	_, _ = w.Write(body)
}

// slow sleeps ms milliseconds, or until the client leaves.
func slow(w http.ResponseWriter, r *http.Request) {
	// The range is checked on the number, before it becomes a Duration: a
	// huge ms would overflow the multiplication and sleep for no time.
	q := r.URL.Query().Get("ms")
	ms, err := strconv.ParseInt(q, 10, 64)
	if err != nil || ms < 0 || ms > maxSlow.Milliseconds() {
		text(w, http.StatusBadRequest, fmt.Sprintf("ms=%q: want 0 to %d", q, maxSlow.Milliseconds()))
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		text(w, http.StatusOK, "ok")
	case <-r.Context().Done(): // the client left; nobody reads an answer
	}
}
