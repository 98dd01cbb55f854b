package httpmod_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
)

// hello is an app's handler: a type that implements httpmod.Route.
type hello struct{ name string }

func newHello() *hello { return &hello{name: "drainfx"} }

func (h *hello) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "hello from ", h.name)
	})
}

// fetch prints the status and body of GET url, on a connection of its own.
func fetch(url string) {
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		fmt.Println("get:", err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
}

// An app serves its routes through the module and drains when it stops.
func Example() {
	var srv *httpmod.Server
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		lifecycle.AppOptions, // serving once started (the bundle in package modules has it)
		httpmod.Module,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Supply(httpmod.Config{Addr: "127.0.0.1:0"}),
		httpmod.AsRoute(newHello),
		fx.Populate(&srv),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		fmt.Println("start:", err)
		return
	}
	fetch("http://" + srv.Addr().String() + "/hello")
	if err := app.Stop(ctx); err != nil {
		fmt.Println("stop:", err)
		return
	}
	fmt.Println("stopped, in flight:", srv.InFlight())
	// Output:
	// 200 hello from drainfx
	// stopped, in flight: 0
}

// Without fx: build the coordinator and the server, then start and stop.
func ExampleNew() {
	coord, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None})
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	srv, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, coord, mux)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	coord.MarkStarted()
	fetch("http://" + srv.Addr().String() + "/")

	if err := srv.Stop(ctx); err != nil { // drains, stops, tears down: the report is out
		fmt.Println(err)
	}
	report := coord.Telemetry().Report()
	fmt.Println("clean:", report.ExitCode == 0, "drain ended by:", report.DrainEndedBy)
	// Output:
	// 200 ok
	// clean: true drain ended by: delay
}

// An app that runs its own http.Server wires the drain by hand: the
// middleware around its handler, the listener wrapper, and the stop
// participant.
func ExampleDrain() {
	coord, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := httpmod.NewDrain(coord)
	if err != nil {
		fmt.Println(err)
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	srv := &http.Server{Handler: d.Handler(mux), ReadHeaderTimeout: 5 * time.Second}
	if err := d.Manage(srv); err != nil { // its stop participant: Shutdown at the stop phase
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(d.Listener(ln)) }()
	coord.MarkStarted()
	fetch("http://" + ln.Addr().String() + "/")

	if err := coord.Stop(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println("serve:", <-served)
	report := coord.Telemetry().Report()
	fmt.Println("clean:", report.ExitCode == 0, "stop participants:", len(report.Hooks))
	// Output:
	// 200 ok
	// serve: http: Server closed
	// clean: true stop participants: 1
}

// Under fx, an app that builds its own http.Server lets the drain serve it
// (Drain.Serve: a goroutine the stop participant waits for); the
// coordinator's OnStop stops it.
func ExampleDrain_fx() {
	var addr net.Addr
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		lifecycle.AppOptions,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Invoke(func(lc fx.Lifecycle, coord *lifecycle.Coordinator) error {
			d, err := httpmod.NewDrain(coord)
			if err != nil {
				return err
			}
			mux := http.NewServeMux()
			mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
			srv := &http.Server{Handler: d.Handler(mux), ReadHeaderTimeout: 5 * time.Second}
			if err := d.Manage(srv); err != nil { // in the constructor: the stop participant is registered
				return err
			}
			lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
				var lc net.ListenConfig
				ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
				if err != nil {
					return err
				}
				addr = ln.Addr()
				return d.Serve(srv, ln)
			}})
			return nil
		}),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		fmt.Println("start:", err)
		return
	}
	fetch("http://" + addr.String() + "/")
	if err := app.Stop(ctx); err != nil {
		fmt.Println("stop:", err)
		return
	}
	fmt.Println("stopped")
	// Output:
	// 200 ok
	// stopped
}

// The app's whole handler — here a ServeMux; a chi, gin or gorilla/mux
// router the same way — is served as it is.
func ExampleAsHandler() {
	var srv *httpmod.Server
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		httpmod.Module,
		httpmod.AsHandler(func() *http.ServeMux {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "pong") })
			return mux
		}),
		fx.Populate(&srv),
	)
	if err := app.Err(); err != nil {
		fmt.Println(err)
		return
	}
	_, pattern := srv.Handler().(*http.ServeMux).Handler(httptest.NewRequest(http.MethodGet, "/ping", nil))
	fmt.Println(pattern)
	// Output: GET /ping
}

// A route can be a plain function; routes are registered when the server
// is built.
func ExampleAsRoute() {
	var srv *httpmod.Server
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		httpmod.Module,
		httpmod.AsRoute(func() httpmod.RouteFunc {
			return func(mux *http.ServeMux) {
				mux.HandleFunc("GET /ping", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "pong") })
			}
		}),
		fx.Populate(&srv),
	)
	if err := app.Err(); err != nil {
		fmt.Println(err)
		return
	}
	_, pattern := srv.Handler().(*http.ServeMux).Handler(httptest.NewRequest(http.MethodGet, "/ping", nil))
	fmt.Println(pattern)
	// Output: GET /ping
}
