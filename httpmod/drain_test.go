package httpmod_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

func newCoordinator(t *testing.T, cfg lifecycle.Config) *lifecycle.Coordinator {
	t.Helper()
	c, err := lifecycle.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewDrainRequiresCoordinator(t *testing.T) {
	t.Parallel()
	if _, err := httpmod.NewDrain(nil); err == nil {
		t.Error("NewDrain with a nil coordinator succeeded")
	}
}

// An app's own http.Server, wired by hand: the middleware drains it, the
// listener tells the adaptive drain of its connections, and the stop
// participant shuts it down; the app's Serve returns ErrServerClosed.
func TestDrainOwnServer(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, quick)
	d, err := httpmod.NewDrain(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d.Handler(okMux()), ReadHeaderTimeout: time.Minute}
	if err := d.Manage(srv); err != nil {
		t.Fatal(err)
	}
	if err := d.Manage(srv); err != nil {
		t.Errorf("Manage again with the same server: %v", err)
	}
	if err := d.Manage(&http.Server{ReadHeaderTimeout: time.Minute}); err == nil {
		t.Error("Manage with a second server succeeded")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(d.Listener(ln)) }()
	c.MarkStarted()

	rc := servertest.Dial(t, ln.Addr())
	if resp := rc.Do("GET", "/"); resp.StatusCode != http.StatusOK || resp.Close {
		t.Fatalf("serving: %d close=%v, want 200 keep-alive", resp.StatusCode, resp.Close)
	}
	c.BeginDrain("test")
	if resp := rc.Do("GET", "/"); resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("draining: %d close=%v, want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if d.InFlight() != 0 {
		t.Errorf("InFlight = %d, want 0", d.InFlight())
	}
	r := servertest.WaitReport(t, c)
	if err := waittest.Recv(t, served, waitTimeout, "the app's Serve"); !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve = %v, want http.ErrServerClosed", err)
	}
	if r.ExitCode != 0 || len(r.Hooks) != 1 || r.Hooks[0].Name != "http" || r.Drain.Arrivals != 0 {
		t.Errorf("report: clean %v, hooks %+v, arrivals after D0 %d", r.ExitCode == 0, r.Hooks, r.Drain.Arrivals)
	}
}

// Drain.Serve serves once, and not once the stop phase has begun.
func TestDrainServe(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, quick)
	d, err := httpmod.NewDrain(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d.Handler(nil), ReadHeaderTimeout: time.Minute}
	listen := func() net.Listener {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	if err := d.Serve(srv, nil); err == nil {
		t.Error("Serve with a nil listener succeeded")
	}
	ln := listen()
	if err := d.Serve(srv, ln); err != nil {
		t.Fatal(err)
	}
	if err := d.Serve(srv, listen()); err == nil {
		t.Error("second Serve succeeded")
	}
	c.MarkStarted()
	client := servertest.NewClient(t)
	if status, _ := servertest.Get(t, client, "http://"+ln.Addr().String()+"/"); status != http.StatusNotFound {
		t.Errorf("a nil handler answered %d, want 404", status)
	}
	client.CloseIdleConnections()
	if r := servertest.WaitReport(t, c); r.ExitCode != 0 {
		t.Errorf("report not clean: %+v", r)
	}
	if err := d.Serve(srv, listen()); err == nil {
		t.Error("Serve after the stop succeeded")
	}
}

// A request still in the middleware of an app's own server at the stop
// deadline is cut and counted, as the Server's are.
func TestDrainOwnServerCutsAtTheDeadline(t *testing.T) {
	t.Parallel()
	h := newStuck()
	c := newCoordinator(t, lifecycle.Config{GracePeriod: time.Second, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None,
		TeardownReserve: 200 * time.Millisecond, Margin: 100 * time.Millisecond})
	d, err := httpmod.NewDrain(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d.Handler(h.mux()), ReadHeaderTimeout: time.Minute}
	if err := d.Manage(srv); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	c.MarkStarted()
	client := servertest.NewClient(t)
	clientErr := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + ln.Addr().String() + "/block")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	waittest.Recv(t, h.entered, waitTimeout, "the blocked handler")
	r := servertest.WaitReport(t, c)
	if r.Cut[httpmod.CutRequests] != 1 {
		t.Errorf("cut %v, want requests=1", r.Cut)
	}
	if err := waittest.Recv(t, clientErr, waitTimeout, "the client"); err == nil {
		t.Error("the cut request succeeded")
	}
	close(h.release)
	waittest.Recv(t, served, waitTimeout, "the app's Serve")
}

func TestModuleHandler(t *testing.T) {
	t.Parallel()
	var (
		srv *httpmod.Server
		mux *http.ServeMux
	)
	fxtest.New(t,
		lifecycle.Module,
		httpmod.Module,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Supply(httpmod.Config{Addr: "127.0.0.1:0"}),
		httpmod.AsHandler(func() *http.ServeMux { mux = okMux(); return mux }),
		fx.Populate(&srv),
	).RequireStart().RequireStop()
	if got, ok := srv.Handler().(*http.ServeMux); !ok || got != mux {
		t.Errorf("Handler() = %T %p, want the ServeMux of AsHandler %p", srv.Handler(), got, mux)
	}
}

// An interface-typed constructor result works as well as a concrete one.
func TestModuleHandlerServes(t *testing.T) {
	t.Parallel()
	var srv *httpmod.Server
	app := fxtest.New(t,
		lifecycle.Module,
		httpmod.Module,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Supply(httpmod.Config{Addr: "127.0.0.1:0"}),
		httpmod.AsHandler(func() http.Handler { return http.HandlerFunc(okHandler) }),
		fx.Populate(&srv),
	).RequireStart()
	client := servertest.NewClient(t)
	if status, body := servertest.Get(t, client, "http://"+srv.Addr().String()+"/any"); status != http.StatusOK || body != "ok" {
		t.Errorf("GET = %d %q, want 200 ok", status, body)
	}
	client.CloseIdleConnections()
	app.RequireStop()
}

func TestModuleHandlerChoice(t *testing.T) {
	t.Parallel()
	route := httpmod.AsRoute(func() httpmod.RouteFunc {
		return func(mux *http.ServeMux) { mux.HandleFunc("GET /{$}", okHandler) }
	})
	handler := httpmod.AsHandler(okMux)
	tests := []struct {
		name    string
		give    []fx.Option
		wantErr string // empty: the app builds
		wantGet int    // GET / with no error
	}{
		{"neither: an empty ServeMux", nil, "", http.StatusNotFound},
		{"routes", []fx.Option{route}, "", http.StatusOK},
		{"handler", []fx.Option{handler}, "", http.StatusOK},
		{"handler and routes", []fx.Option{handler, route}, "a handler provided with AsHandler (*http.ServeMux) and 1 routes with AsRoute", 0},
		{"two handlers", []fx.Option{handler, httpmod.AsHandler(okMux)}, "2 handlers provided with AsHandler", 0},
		{"conflicting routes", []fx.Option{route, route}, "httpmod: route httpmod.RouteFunc: pattern", 0},
		{"nil handler", []fx.Option{httpmod.AsHandler(func() http.Handler { return nil })}, "handler provided with AsHandler is nil", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var srv *httpmod.Server
			app := fx.New(append([]fx.Option{
				fx.NopLogger,
				lifecycle.Module,
				httpmod.Module,
				fx.Populate(&srv),
			}, tt.give...)...)
			err := app.Err()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("fx.New error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != tt.wantGet {
				t.Errorf("GET / = %d, want %d", w.Code, tt.wantGet)
			}
		})
	}
}
