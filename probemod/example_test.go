package probemod_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

type cache struct{}

func (cache) Ping(context.Context) error { return nil }

func newCacheCheck(c cache) func(context.Context) error { return c.Ping }

func Example() {
	var (
		c     *lifecycle.Coordinator
		admin *probemod.Admin
	)
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		probemod.Module,
		fx.Supply(
			lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true},
			probemod.Config{Addr: "127.0.0.1:0"}, // default :9090
			cache{},
		),
		probemod.AsCheck("cache", newCacheCheck), // a constructor: its parameters are injected
		fx.Populate(&c, &admin),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	c.MarkStarted() // modules.Web does this when fx reports the start

	for _, path := range []string{"/livez", "/readyz?verbose"} {
		resp, err := http.Get("http://" + admin.Addr().String() + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d\n%s\n", path, resp.StatusCode, body)
	}
	http.DefaultClient.CloseIdleConnections()
	if err := app.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// /livez 200
	// ok
	// /readyz?verbose 200
	// [+]serving ok
	// [+]cache ok
	// readyz check passed
}

func ExampleProbes_Register() {
	c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Stop(context.Background())
	db := probemod.Check{Name: "db", Check: func(context.Context) error {
		// The whole error goes to the log (password masked); the probe
		// output shows the reason alone.
		err := errors.New("connect to " + probemod.RedactURL("postgres://app:s3cret@db:5432/app") + ": connection refused")
		return probemod.WithReason(err, "not reachable")
	}}
	p, err := probemod.NewProbes(probemod.Config{}, c, []probemod.Check{db})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close(context.Background())
	mux := http.NewServeMux() // any ServeMux, such as the public server's
	p.Register(mux)
	c.MarkStarted()

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	fmt.Print(rec.Code, "\n", rec.Body)
	// Output:
	// 503
	// [-]db failed: not reachable
	// readyz check failed
}
