package modules_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
)

// A service built from the bundle: routes through httpmod.AsRoute, a
// readiness check through probemod.AsCheck, and a stop that drains first.
// Without a *zap.Logger in the graph the bundle logs nothing but fx's
// errors, on stderr.
func ExampleWeb() {
	var (
		srv   *httpmod.Server
		admin *probemod.Admin
		c     *lifecycle.Coordinator
	)
	app := fx.New(
		modules.Web(modules.Config{
			Lifecycle: lifecycle.Config{DrainDelay: 20 * time.Millisecond, IgnoreSignals: true},
			HTTP:      httpmod.Config{Addr: "127.0.0.1:0"},
			Probe:     probemod.Config{Addr: "127.0.0.1:0"},
		}),
		httpmod.AsRoute(func() httpmod.Route {
			return httpmod.RouteFunc(func(mux *http.ServeMux) {
				mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
			})
		}),
		probemod.AsCheck("cache", func(context.Context) error { return nil }),
		fx.Populate(&srv, &admin, &c),
	)
	if err := app.Start(context.Background()); err != nil {
		fmt.Println("start:", err)
		return
	}
	fmt.Println("GET /:", get("http://"+srv.Addr().String()+"/"))
	fmt.Print("readyz: ", get("http://"+admin.Addr().String()+"/readyz?verbose"))

	if err := app.Stop(context.Background()); err != nil {
		fmt.Println("stop:", err)
	}
	r := c.Telemetry().Report()
	fmt.Println("drain began:", r.Reason, "- exit code", r.ExitCode)
	// Output:
	// GET /: ok
	// readyz: [+]serving ok
	// [+]cache ok
	// readyz check passed
	// drain began: app stopping - exit code 0
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
