package metricsmod_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/metricsmod"
	"github.com/drainfx/drainfx/probemod"
)

// Without fx: the metrics' route is one more admin route.
func Example() {
	c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true})
	if err != nil {
		panic(err)
	}
	defer c.Stop(context.Background())
	m, err := metricsmod.New(metricsmod.Config{NoRuntimeMetrics: true}, c)
	if err != nil {
		panic(err)
	}
	admin, err := probemod.New(probemod.Config{}, c, nil, probemod.WithRoutes(m.Route()))
	if err != nil {
		panic(err)
	}
	c.MarkStarted()

	rec := httptest.NewRecorder()
	admin.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	for line := range strings.SplitSeq(rec.Body.String(), "\n") {
		if strings.HasPrefix(line, "drainfx_state") {
			fmt.Println(line)
		}
	}
	// Output:
	// drainfx_state{state="drained"} 0
	// drainfx_state{state="draining"} 0
	// drainfx_state{state="serving"} 1
	// drainfx_state{state="starting"} 0
	// drainfx_state{state="stopped"} 0
	// drainfx_state{state="stopping"} 0
	// drainfx_state{state="tearing_down"} 0
	// drainfx_state_number 1
}

// Under fx, with the app's own registry: its metrics and drainfx's are
// served together on the admin server's /metrics.
func ExampleModule() {
	reg := prometheus.NewRegistry()
	orders := prometheus.NewCounter(prometheus.CounterOpts{Name: "app_orders_total", Help: "Orders taken."})
	reg.MustRegister(orders)

	var m *metricsmod.Metrics
	app := fx.New(fx.NopLogger,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}, probemod.Config{Addr: "127.0.0.1:0"}, reg),
		lifecycle.Module,
		probemod.Module,
		metricsmod.Module,
		fx.Populate(&m),
	)
	if err := app.Start(context.Background()); err != nil {
		panic(err)
	}
	defer app.Stop(context.Background())

	fams, err := m.Registry().Gather()
	if err != nil {
		panic(err)
	}
	for _, f := range fams {
		if name := f.GetName(); strings.HasPrefix(name, "app_") || strings.HasPrefix(name, "drainfx_state") {
			fmt.Println(name)
		}
	}
	// Output:
	// app_orders_total
	// drainfx_state
	// drainfx_state_number
}
