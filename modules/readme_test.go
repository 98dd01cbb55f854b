package modules_test

// The Go snippets of the README, compiled here (TestReadmeSnippets checks
// that the README shows them as written): the service of "Use", its routes,
// the coordinator without fx, an http.Server of the app's own, and the test
// kit's test — which runs.

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/demo"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/lifecycle/lifecycletest"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
	"github.com/drainfx/drainfx/wsmod"
)

// main is the README's service ("Use"). It is compiled, not run.
func main() {
	cfg, err := modules.FromEnv(os.LookupEnv) // PORT, ADMIN_PORT, SHUTDOWN_*, PRESTOP_TOKEN, HTTP_MAX_CONNS
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	log, _ := zap.NewProduction()
	fx.New(
		modules.Web(cfg),           // lifecycle + httpmod + probemod, fx events via zap (debug), StopTimeout from the budget
		wsmod.Module,               // WebSocket and SSE sessions: closed with 1001 / a final event at the stop phase
		fx.Supply(log),             // or modules.Slog(logger) for a log/slog app
		httpmod.AsRoute(newRoutes), // routes on the server's http.ServeMux, no tag strings
		probemod.AsCheck("cache", pingCache),
	).Run() // plain app.Run drains correctly
}

var _ = main

func newRoutes(reg *wsmod.Registry) httpmod.Route {
	return httpmod.RouteFunc(func(mux *http.ServeMux) {
		mux.HandleFunc("GET /{$}", hello)
		mux.Handle("GET /ws", reg.WebSocket(chat)) // closed with 1001 at the stop phase
	})
}

func pingCache(context.Context) error { return nil }

func hello(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

// chat is the WebSocket handler of newRoutes (the README does not show
// it): an echo.
var chat = demo.Echo

// What the snippets without fx take as given.
var (
	log = zap.NewNop()
	mux = http.NewServeMux()
	db  *sql.DB
)

// Example_withoutFx is the README's coordinator without fx: the same
// timeline, the admin server (probes, /prestop) stopping last. It is
// compiled, not run (it listens on :8080 and :9090 and waits for a signal).
func Example_withoutFx() {
	c, _ := lifecycle.New(lifecycle.Config{GracePeriod: 30 * time.Second}, lifecycle.WithLogger(log))
	srv, _ := httpmod.New(httpmod.Config{Addr: ":8080"}, c, mux, httpmod.WithLogger(log))      // a stop participant
	admin, _ := probemod.New(probemod.Config{Addr: ":9090"}, c, nil, probemod.WithLogger(log)) // probes, /prestop
	c.AtTeardown("db", func(ctx context.Context) error { return db.Close() })                  // your own teardown
	_ = srv.Start(context.Background())
	_ = admin.Start(context.Background())
	c.MarkStarted()                      // logs the plan; from now on SIGTERM drains, then stops
	<-c.Reached(lifecycle.StateStopped)  // draining, drained, stopping, tearing down, report (logged)
	_ = admin.Stop(context.Background()) // last: the kubelet probes until the end
	if r := c.Telemetry().Report(); r.ExitCode != 0 {
		os.Exit(1) // work was cut
	}
}

// Example_ownServer is the README's drain for an http.Server of the app's
// own. It is compiled, not run.
func Example_ownServer() {
	var c *lifecycle.Coordinator                 // from lifecycle.New, or the graph
	d, _ := httpmod.NewDrain(c)                  // in-flight count, arrivals, the stop participant
	srv := &http.Server{Handler: d.Handler(mux)} // Connection: close while draining, counts
	ln, _ := net.Listen("tcp", ":8080")
	_ = d.Serve(srv, ln) // connection-following listener; Shutdown/Close at the stop phase
}

// myapp is the app under test in TestNothingLost: the README's service on
// a test configuration, with the routes the test's clients use.
var myapp = struct{ Module fx.Option }{Module: fx.Options(
	modules.Web(modules.TestConfig()),
	wsmod.Module,
	httpmod.AsRoute(func(reg *wsmod.Registry) httpmod.Route {
		return httpmod.RouteFunc(func(mux *http.ServeMux) {
			mux.HandleFunc("GET /{$}", hello)
			mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Content-Type") != "application/json" {
					http.Error(w, "want JSON", http.StatusUnsupportedMediaType)
					return
				}
				w.WriteHeader(http.StatusCreated)
			})
			mux.Handle("GET /ws", reg.WebSocket(chat))
			mux.Handle("GET /events", reg.SSE(demo.Ticks(50*time.Millisecond)))
		})
	}),
)}

// TestNothingLost is the README's test of an app with the test kit.
func TestNothingLost(t *testing.T) {
	var (
		coord *lifecycle.Coordinator
		srv   *httpmod.Server
		admin *probemod.Admin
	)
	app := fxtest.New(t, myapp.Module, fx.Populate(&coord, &srv, &admin)) // myapp.Module: modules.Web(modules.TestConfig()), …
	k, err := lifecycletest.Start(context.Background(), app, coord)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	base := "http://" + srv.Addr().String()
	order := []byte(`{"item": 1}`)
	for _, err := range []error{
		k.HTTP(http.MethodGet, base+"/", nil), // keep-alive client, one request after another
		k.HTTP(http.MethodPost, base+"/orders", order, // a body is never replayed
			lifecycletest.Header("Content-Type", "application/json")),
		k.WebSocket("ws://" + srv.Addr().String() + "/ws"), // echo round trips; must end 1000/1001/1012
		k.SSE(base + "/events"),                            // must end cleanly (io.EOF)
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	res := k.Terminate(context.Background(), lifecycletest.Prestop("http://"+admin.Addr().String()+"/prestop", nil))
	if err := res.Err(); err != nil { // every loss, states other than serving → draining → drained → stopping → tearing down → stopped
		t.Fatalf("%v\n%v", err, res) // res prints a summary per client
	}
}
