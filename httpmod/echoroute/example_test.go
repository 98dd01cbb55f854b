package echoroute_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/echoroute"
	"github.com/drainfx/drainfx/lifecycle"
)

// hello is an app's handler: a type that implements echoroute.Route.
type hello struct{ name string }

func newHello() *hello { return &hello{name: "drainfx"} }

func (h *hello) Register(e *echo.Echo) {
	e.GET("/hello", func(c echo.Context) error {
		return c.String(http.StatusOK, "hello from "+h.name)
	})
}

// An echo app served by httpmod, which drains it when the app stops.
func Example() {
	var srv *httpmod.Server
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		lifecycle.AppOptions, // serving once started (the bundle in package modules has it)
		httpmod.Module,
		echoroute.Module,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Supply(httpmod.Config{Addr: "127.0.0.1:0"}),
		echoroute.AsRoute(newHello),
		fx.Populate(&srv),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := app.Start(ctx); err != nil {
		fmt.Println("start:", err)
		return
	}

	tr := &http.Transport{}
	resp, err := (&http.Client{Transport: tr}).Get("http://" + srv.Addr().String() + "/hello")
	if err != nil {
		fmt.Println("get:", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}
	tr.CloseIdleConnections()

	if err := app.Stop(ctx); err != nil {
		fmt.Println("stop:", err)
		return
	}
	fmt.Println("stopped, in flight:", srv.InFlight())
	// Output:
	// 200 hello from drainfx
	// stopped, in flight: 0
}

// Without fx: the echo instance is the handler of httpmod.New.
func ExampleNew() {
	coord, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None})
	if err != nil {
		fmt.Println(err)
		return
	}
	e := echoroute.New(echoroute.RouteFunc(func(e *echo.Echo) {
		e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	}))
	srv, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, coord, e)
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
	if err := srv.Stop(ctx); err != nil { // drains, stops, tears down: the report is out
		fmt.Println(err)
	}
	report := coord.Telemetry().Report()
	fmt.Println("clean:", report.ExitCode == 0, "drain ended by:", report.DrainEndedBy)
	// Output:
	// clean: true drain ended by: delay
}

// A route can be a plain function; routes are registered when the echo
// instance is built.
func ExampleAsRoute() {
	var srv *httpmod.Server
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		httpmod.Module,
		echoroute.Module,
		echoroute.AsRoute(func() echoroute.RouteFunc {
			return func(e *echo.Echo) {
				e.GET("/ping", func(c echo.Context) error { return c.String(http.StatusOK, "pong") })
			}
		}),
		fx.Populate(&srv),
	)
	if err := app.Err(); err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range srv.Handler().(*echo.Echo).Routes() {
		fmt.Println(r.Method, r.Path)
	}
	// Output: GET /ping
}
