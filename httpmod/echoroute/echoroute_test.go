package echoroute_test

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/echoroute"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

func okHandler(c echo.Context) error { return c.String(http.StatusOK, "ok") }

// greeter is a route with a dependency, as an app's handler struct is.
type greeter struct{ greeting string }

func newGreeter(greeting string) *greeter { return &greeter{greeting} }

func (g *greeter) Register(e *echo.Echo) {
	e.GET("/greet", func(c echo.Context) error { return c.String(http.StatusOK, g.greeting) })
}

func TestModule(t *testing.T) {
	t.Parallel()
	var (
		srv   *httpmod.Server
		coord *lifecycle.Coordinator
	)
	app := fxtest.New(t,
		lifecycle.Module,
		httpmod.Module,
		echoroute.Module,
		fx.Supply(lifecycle.Config{DrainDelay: 50 * time.Millisecond, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		lifecycle.AppOptions, // serving once started: the drain is a drain
		fx.Supply(httpmod.Config{Addr: "127.0.0.1:0"}),
		fx.Supply("hello"),
		echoroute.AsRoute(newGreeter),
		echoroute.AsRoute(func() echoroute.RouteFunc {
			return func(e *echo.Echo) { e.GET("/", okHandler) }
		}),
		fx.Populate(&srv, &coord),
	).RequireStart()
	e, ok := srv.Handler().(*echo.Echo)
	if !ok {
		t.Fatalf("the server's handler is a %T, want *echo.Echo", srv.Handler())
	}
	if !e.HideBanner || !e.HidePort {
		t.Error("echo's banner or port message is not hidden")
	}

	client := servertest.NewClient(t)
	tests := []struct {
		givePath   string
		wantStatus int
		wantBody   string
	}{
		{"/", http.StatusOK, "ok"},
		{"/greet", http.StatusOK, "hello"},
		{"/nope", http.StatusNotFound, `{"message":"Not Found"}` + "\n"}, // echo's own 404
	}
	for _, tt := range tests {
		status, body := servertest.Get(t, client, "http://"+srv.Addr().String()+tt.givePath)
		if status != tt.wantStatus || body != tt.wantBody {
			t.Errorf("GET %s = %d %q, want %d %q", tt.givePath, status, body, tt.wantStatus, tt.wantBody)
		}
	}
	client.CloseIdleConnections()
	app.RequireStop()
	if got := srv.InFlight(); got != 0 {
		t.Errorf("InFlight after stop = %d, want 0", got)
	}
	r := coord.Telemetry().Report()
	if r.DrainEndedBy != lifecycle.DrainEndedDelay || len(r.Hooks) != 1 || r.Hooks[0].Name != "http" || r.ExitCode != 0 {
		t.Errorf("report: drain ended by %q, hooks %+v, clean %v; want delay, the http stop participant, clean", r.DrainEndedBy, r.Hooks, r.ExitCode == 0)
	}
}

// echoroute's routes and httpmod's are two ways to the one handler: both
// at once fail with httpmod's error.
func TestModuleWithHTTPModRoutes(t *testing.T) {
	t.Parallel()
	err := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		httpmod.Module,
		echoroute.Module,
		httpmod.AsRoute(func() httpmod.RouteFunc { return func(*http.ServeMux) {} }),
	).Err()
	if err == nil {
		t.Fatal("echoroute.Module with httpmod.AsRoute routes built")
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	e := echoroute.New(nil, echoroute.RouteFunc(func(e *echo.Echo) { e.GET("/a", okHandler) }),
		echoroute.RouteFunc(func(e *echo.Echo) { e.POST("/b", okHandler) }))
	got := make(map[string]bool)
	for _, r := range e.Routes() {
		got[r.Method+" "+r.Path] = true
	}
	if len(got) != 2 || !got["GET /a"] || !got["POST /b"] {
		t.Errorf("routes = %v, want GET /a and POST /b", got)
	}
	if !e.HideBanner || !e.HidePort {
		t.Error("echo's banner or port message is not hidden")
	}
}

// A protocol switch through echo's Response during the drain keeps
// Connection: Upgrade: echo's Response hijacks through
// http.ResponseController as wsmod's handlers do.
func TestDrainKeepsUpgrade(t *testing.T) {
	t.Parallel()
	s, c := servertest.Start(t, servertest.Quick, httpmod.Config{},
		echoroute.New(echoroute.RouteFunc(func(e *echo.Echo) { e.GET("/ws", switchProtocols) })))
	c.BeginDrain("test")

	rc := servertest.Dial(t, s.Addr())
	resp := rc.Do("GET", "/ws", "Connection: Upgrade", "Upgrade: websocket")
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d, want 101", resp.StatusCode)
	}
	if got := resp.Header.Values("Connection"); len(got) != 1 || got[0] != "Upgrade" {
		t.Errorf("Connection = %q, want [Upgrade]", got)
	}
	if _, err := io.WriteString(rc.Conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	line, err := rc.R.ReadString('\n')
	if err != nil || line != "ping\n" {
		t.Errorf("echo = %q, %v; want ping", line, err)
	}
}

// switchProtocols answers 101 and echoes one line on the raw connection.
func switchProtocols(c echo.Context) error {
	h := c.Response().Header()
	h.Add("Upgrade", "websocket")
	h.Add("Connection", "Upgrade")
	conn, brw, err := http.NewResponseController(c.Response()).Hijack()
	if err != nil {
		return err
	}
	defer conn.Close()
	res := &http.Response{StatusCode: http.StatusSwitchingProtocols, ProtoMajor: 1, ProtoMinor: 1, Header: h}
	if err := res.Write(brw); err != nil {
		return err
	}
	if err := brw.Flush(); err != nil {
		return err
	}
	line, err := brw.ReadString('\n')
	if err != nil {
		return err
	}
	if _, err := brw.WriteString(line); err != nil {
		return err
	}
	return brw.Flush()
}

// Through echo: an error returned goes to echo's error handler; a panic
// becomes the drain middleware's 500; an abort through echo's Response
// drops the response; the server serves on.
func TestErrorsAndPanics(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	s, c := servertest.Start(t, servertest.Quick, httpmod.Config{},
		echoroute.New(echoroute.RouteFunc(func(e *echo.Echo) {
			e.GET("/", okHandler)
			e.GET("/error", func(echo.Context) error { return errors.New("boom") })
			e.GET("/teapot", func(echo.Context) error { return echo.NewHTTPError(http.StatusTeapot) })
			e.GET("/panic", func(echo.Context) error { panic("boom") })
			e.GET("/abort", func(c echo.Context) error {
				c.Response().Header().Set("Content-Length", "10")
				c.Response().WriteHeader(http.StatusOK)
				_, _ = c.Response().Write([]byte("part"))
				c.Response().Flush()
				panic(http.ErrAbortHandler)
			})
		})),
		httpmod.WithLogger(zap.New(core)))
	base := "http://" + s.Addr().String()
	client := servertest.NewClient(t)

	tests := []struct {
		givePath   string
		wantStatus int
		wantErr    bool // the response is aborted: reading the body fails
	}{
		{"/error", http.StatusInternalServerError, false},
		{"/teapot", http.StatusTeapot, false},
		{"/panic", http.StatusInternalServerError, false},
		{"/", http.StatusOK, false},
		{"/abort", http.StatusOK, true},
		{"/", http.StatusOK, false},
	}
	for _, tt := range tests {
		resp, err := client.Get(base + tt.givePath)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.givePath, err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.wantStatus || (err != nil) != tt.wantErr {
			t.Errorf("GET %s = %d, body error %v; want %d, error %v", tt.givePath, resp.StatusCode, err, tt.wantStatus, tt.wantErr)
		}
	}
	waittest.Eventually(t, servertest.WaitTimeout, func() bool { return s.InFlight() == 0 }, "in-flight back to 0")
	if panics := logs.FilterMessage("handler panic").All(); len(panics) != 1 || panics[0].ContextMap()["path"] != "/panic" {
		t.Errorf("handler panic logs = %v, want one for /panic", panics)
	}
	if n := c.Telemetry().Report().InFlight[httpmod.InFlightGauge]; n != 0 {
		t.Errorf("in-flight gauge = %d, want 0", n)
	}
}
