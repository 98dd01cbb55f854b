package lifecycletest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/lifecycle/lifecycletest"
	"github.com/drainfx/drainfx/probemod"
)

const waitTimeout = 10 * time.Second

// startKit starts app under a kit with opts; the kit is closed at cleanup.
// The context it returns bounds the test's waits (waitTimeout).
func startKit(t *testing.T, app *fxtest.App, c *lifecycle.Coordinator, opts ...lifecycletest.Option) (context.Context, *lifecycletest.Kit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	k, err := lifecycletest.Start(ctx, app, c, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	return ctx, k
}

// attachAll attaches one client of every kind to a webApp.
func attachAll(t *testing.T, k *lifecycletest.Kit, a *webApp) {
	t.Helper()
	for _, err := range []error{
		k.HTTP(http.MethodGet, a.url("/"), nil),
		k.HTTP(http.MethodPost, a.url("/echo"), []byte("hello")),
		k.HTTP(http.MethodGet, a.url("/slow?ms=150"), nil),
		k.WebSocket(a.wsURL("/ws")),
		k.SSE(a.url("/events")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A drainfx app loses nothing, whichever way it is terminated, and goes
// through the phases in order.
func TestTerminations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		giveToken  string
		give       func(a *webApp) lifecycletest.Termination
		wantReason lifecycle.Reason
	}{
		{"prestop", "", func(a *webApp) lifecycletest.Termination {
			return lifecycletest.Prestop(a.adminURL("/prestop"), nil)
		}, "prestop"},
		{"prestop with token", "s3cret", func(a *webApp) lifecycletest.Termination {
			return lifecycletest.Prestop(a.adminURL("/prestop"), http.Header{probemod.PrestopHeader: {"s3cret"}})
		}, "prestop"},
		{"signal", "", func(*webApp) lifecycletest.Termination { return lifecycletest.Signal() }, "signal terminated"},
		{"app stop", "", func(*webApp) lifecycletest.Termination { return lifecycletest.AppStop() }, "app stopping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var a webApp
			app := fxtest.New(t, webOptions(lifecycle.Config{DrainDelay: 200 * time.Millisecond, PrestopToken: tt.giveToken}), a.populate())
			ctx, k := startKit(t, app, a.Coord)
			attachAll(t, k, &a)

			res := k.Terminate(ctx, tt.give(&a))
			if err := res.Err(); err != nil {
				t.Fatalf("%v\n%v", err, res)
			}
			if got := res.Report.Reason; got != tt.wantReason {
				t.Errorf("drain began by %q, want %q", got, tt.wantReason)
			}
			if l := res.Lost(); l.Total() != 0 {
				t.Errorf("lost %v", l)
			}
			if ws := res.WebSocket[0]; ws.CloseCode != websocket.CloseGoingAway || ws.Echoed == 0 {
				t.Errorf("websocket: %+v, want echoes then 1001", ws)
			}
			if sse := res.SSE[0]; sse.LastEvent != "shutdown" || sse.Events < 2 {
				t.Errorf("sse: %+v, want events then the final one", sse)
			}
			if get := res.HTTP[0]; get.ConnClose == 0 || !get.Moved {
				t.Errorf("GET /: %+v, want answers with Connection: close in the drain, then moved", get)
			}
			if res.Report.ExitCode != 0 || res.Report.Reason != tt.wantReason {
				t.Errorf("report %+v", res.Report)
			}
			t.Log(res)
		})
	}
}

// naiveOptions is a service without drainfx's servers: a plain
// http.Server that is closed when the app stops, beside the coordinator
// the kit needs. POST /work answers the first request and holds the others.
func naiveOptions(addr *string, held chan<- struct{}) fx.Option {
	return fx.Options(
		lifecycle.Module,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Invoke(func(lc fx.Lifecycle) {
			mux := http.NewServeMux()
			calls := 0
			mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
				// The body read in full: net/http watches the connection (and
				// ends the context when it closes) only from then on.
				_, _ = io.Copy(io.Discard, r.Body)
				if calls++; calls > 1 { // one client: no race
					held <- struct{}{}
					<-r.Context().Done()
					return
				}
				fmt.Fprint(w, "ok")
			})
			up := websocket.Upgrader{}
			mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
				conn, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer conn.Close()
				for {
					mt, p, err := conn.ReadMessage()
					if err != nil || conn.WriteMessage(mt, p) != nil {
						return
					}
				}
			})
			mux.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for n := 0; ; n++ {
					fmt.Fprintf(w, "data: %d\n\n", n)
					w.(http.Flusher).Flush()
					select {
					case <-r.Context().Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
			})
			srv := &http.Server{Handler: mux}
			served := make(chan struct{})
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						return err
					}
					*addr = ln.Addr().String()
					go func() { defer close(served); _ = srv.Serve(ln) }()
					return nil
				},
				OnStop: func(context.Context) error {
					err := srv.Close() // cuts what is in flight; leaves WebSockets open
					<-served
					return err
				},
			})
		}),
	)
}

// The kit reports what a service without a drain loses: the request in
// flight, the WebSocket session (left open, never closed), the SSE stream
// (cut): the losses show what the states, which the coordinator passes
// through all the same, cannot.
func TestReportsLosses(t *testing.T) {
	t.Parallel()
	var (
		addr  string
		coord *lifecycle.Coordinator
	)
	held := make(chan struct{}, 1)
	app := fxtest.New(t, naiveOptions(&addr, held), fx.Populate(&coord))
	ctx, k := startKit(t, app, coord, lifecycletest.WithEndTimeout(200*time.Millisecond))
	for _, err := range []error{
		// POST: net/http would retry a GET cut on a reused connection.
		k.HTTP(http.MethodPost, "http://"+addr+"/work", []byte("job")),
		k.WebSocket("ws://" + addr + "/ws"),
		k.SSE("http://" + addr + "/events"),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-held: // the second request is in the handler
	case <-ctx.Done():
		t.Fatal("the second request never arrived")
	}

	res := k.Terminate(ctx, lifecycletest.AppStop())
	want := lifecycletest.Lost{Requests: 1, WebSockets: 1, Streams: 1}
	if got := res.Lost(); got != want {
		t.Errorf("lost %v, want %v\n%v", got, want, res)
	}
	err := res.Err()
	if err == nil {
		t.Fatal("Err() = nil for a service that lost everything")
	}
	for _, want := range []string{
		"1 requests lost",
		"websocket ws://" + addr + "/ws: still open after the app had stopped",
		"sse http://" + addr + "/events: unexpected EOF",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Err() does not say %q:\n%v", want, err)
		}
	}
	// The coordinator went through its timeline, but the service's own
	// server was closed before it: the losses are the kit's evidence.
	if got := res.States(); !slices.Equal(got, lifecycletest.CleanStates) {
		t.Errorf("states %v", got)
	}
}

// A refused preStop call is reported; the app is stopped all the same.
func TestPrestopRefused(t *testing.T) {
	t.Parallel()
	var a webApp
	app := fxtest.New(t, webOptions(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, PrestopToken: "s3cret"}), a.populate())
	ctx, k := startKit(t, app, a.Coord)
	res := k.Terminate(ctx, lifecycletest.Prestop(a.adminURL("/prestop"), http.Header{probemod.PrestopHeader: {"guess"}}))
	if err := res.Err(); err == nil || !strings.Contains(err.Error(), "preStop: 401") {
		t.Errorf("Err() = %v, want the refused preStop", err)
	}
	if a.Coord.State() != lifecycle.StateStopped {
		t.Errorf("state %v after Terminate, want stopped", a.Coord.State())
	}
	if again := k.Terminate(ctx, lifecycletest.AppStop()); again.Termination != "prestop" {
		t.Errorf("a second Terminate ran %q, want the first result", again.Termination)
	}
	if err := k.HTTP(http.MethodGet, a.url("/"), nil); !errors.Is(err, lifecycletest.ErrTerminated) {
		t.Errorf("attach after Terminate = %v, want ErrTerminated", err)
	}
}

// Close, for a test that fails half-way, cuts the clients and stops the app.
func TestCloseStopsEverything(t *testing.T) {
	t.Parallel()
	var a webApp
	app := fxtest.New(t, webOptions(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None}), a.populate())
	_, k := startKit(t, app, a.Coord)
	attachAll(t, k, &a)
	k.Close()
	k.Close() // harmless
	if a.Coord.State() != lifecycle.StateStopped {
		t.Errorf("state %v after Close, want stopped", a.Coord.State())
	}
}

// Attaching to a route that does not answer 2xx fails at once.
func TestAttachFails(t *testing.T) {
	t.Parallel()
	var a webApp
	app := fxtest.New(t, webOptions(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None}), a.populate())
	_, k := startKit(t, app, a.Coord)
	tests := []struct {
		name string
		give error
		want string
	}{
		{"http 404", k.HTTP(http.MethodGet, a.url("/missing"), nil), "404"},
		{"websocket on a plain route", k.WebSocket(a.wsURL("/")), "bad handshake"},
		{"sse 404", k.SSE(a.url("/missing")), "404"},
	}
	for _, tt := range tests {
		if tt.give == nil || !strings.Contains(tt.give.Error(), tt.want) {
			t.Errorf("%s: %v, want an error with %q", tt.name, tt.give, tt.want)
		}
	}
}

// When the proxies take longer than the drain to catch up, the clients
// that still open connections after the listener closed are refused: the
// kit counts them, as the rollout check does.
func TestPropagationLongerThanDrainLoses(t *testing.T) {
	t.Parallel()
	const drain, propagation = 100 * time.Millisecond, 400 * time.Millisecond
	var a webApp
	app := fxtest.New(t,
		// A teardown that lasts past the propagation delay keeps the app
		// (and the clients) running while the listener is closed: the
		// coordinator runs it after the HTTP server's stop.
		fx.Module("slow teardown", fx.Invoke(func(c *lifecycle.Coordinator) {
			c.AtTeardown("slow", func(context.Context) error {
				d0 := c.Telemetry().Report().D0
				time.Sleep(time.Until(d0.Add(propagation + 50*time.Millisecond))) // a point on the timeline
				return nil
			})
		})),
		webOptions(lifecycle.Config{DrainDelay: drain, MaxDrainDelay: drain}), a.populate()) // a fixed drain, shorter than the propagation
	ctx, k := startKit(t, app, a.Coord, lifecycletest.WithPropagation(propagation))
	if err := k.HTTP(http.MethodGet, a.url("/"), nil); err != nil {
		t.Fatal(err)
	}
	res := k.Terminate(ctx, lifecycletest.Signal())
	err := res.Err()
	if res.Lost().Requests == 0 || err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("lost %v, Err() = %v; want refused requests\n%v", res.Lost(), err, res)
	}
}
