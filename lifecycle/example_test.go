package lifecycle_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/lifecycle"
)

// A budget that does not fit the grace period is refused with one error
// naming the fields and their values.
func ExampleConfig_Validate() {
	err := lifecycle.Config{GracePeriod: 8 * time.Second, DrainQuiet: lifecycle.None}.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, lifecycle.ErrBudget))

	err = lifecycle.Config{DrainDelay: -time.Second}.Validate()
	fmt.Println(err)
	// Output:
	// lifecycle: DrainDelay=5s + TeardownReserve=3s + Margin=1s = 9s must be below GracePeriod=8s
	// true
	// lifecycle: DrainDelay=-1s is negative (lifecycle.None is none)
}

// The plan turns the budget into deadlines counted from D0, the moment the
// drain begins.
func ExampleNewPlan() {
	plan, err := lifecycle.NewPlan(lifecycle.Config{
		GracePeriod: 30 * time.Second,
		DrainDelay:  3 * time.Second,
		DrainQuiet:  time.Second, // adaptive: MaxDrainDelay defaults to all the room the budget gives
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("drain:    D0 +", plan.DrainDelay, "to D0 +", plan.DrainEnd)
	fmt.Println("stop:     by D0 +", plan.StopDeadline)
	fmt.Println("teardown: by D0 +", plan.TeardownDeadline)
	fmt.Println("fx.StopTimeout:", plan.StopTimeout)
	// Output:
	// drain:    D0 + 3s to D0 + 21s
	// stop:     by D0 + 26s
	// teardown: by D0 + 29s
	// fx.StopTimeout: 30s
}

// Under fx, the module provides the coordinator; a module takes part in
// the shutdown by registering with it — a stop participant (a server) and
// a teardown hook (a pool) — and the coordinator runs them in order when
// the app stops, whatever order fx calls its OnStop hooks in.
func ExampleModule() {
	var c *lifecycle.Coordinator
	app := fx.New(
		fx.NopLogger,
		fx.Supply(lifecycle.Config{
			GracePeriod:     time.Second,
			DrainDelay:      lifecycle.None,
			DrainQuiet:      lifecycle.None,
			IgnoreSignals:   true,
			TeardownReserve: 100 * time.Millisecond,
			Margin:          100 * time.Millisecond,
		}),
		lifecycle.Module,
		lifecycle.AppOptions, // Serving once every OnStart hook has run
		fx.Populate(&c),
		fx.Invoke(func(c *lifecycle.Coordinator) {
			c.AtStop("server", func(context.Context) error { fmt.Println("server stops"); return nil })
			c.AtTeardown("pool", func(context.Context) error { fmt.Println("pool closes"); return nil })
		}),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.State())
	fmt.Println("stop:", app.Stop(ctx))
	r := c.Telemetry().Report()
	fmt.Println(c.State(), r.Reason, r.DrainEndedBy, r.ExitCode)
	// Output:
	// serving
	// server stops
	// pool closes
	// stop: <nil>
	// stopped app stopping delay 0
}

// Without fx: the coordinator drives the same participants. A preStop
// call (what the admin server's /prestop does) drains; the stop that the kubelet's SIGTERM would ask for is asked
// here with Stop; the report says whether anything was cut.
func Example_withoutFx() {
	c, err := lifecycle.New(lifecycle.Config{
		GracePeriod: 2 * time.Second, DrainDelay: 100 * time.Millisecond, DrainQuiet: lifecycle.None,
		TeardownReserve: 500 * time.Millisecond, Margin: 100 * time.Millisecond, IgnoreSignals: true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	c.AtStop("server", func(context.Context) error { fmt.Println("server stops"); return nil })
	c.AtTeardown("db", func(context.Context) error { fmt.Println("db closes"); return nil })
	c.MarkStarted()

	// The kubelet's preStop hook (probemod's /prestop): the drain begins,
	// and the call is answered when it is over.
	c.BeginDrain(lifecycle.ReasonPrestop)
	<-c.Reached(lifecycle.StateDrained)
	fmt.Println("preStop answered:", c.State())

	if err := c.Stop(context.Background()); err != nil { // SIGTERM
		fmt.Println(err)
		return
	}
	<-c.Reached(lifecycle.StateStopped)
	r := c.Telemetry().Report()
	fmt.Println(r.Reason, "→", c.State(), "clean:", r.ExitCode == 0)
	// Output:
	// preStop answered: drained
	// server stops
	// db closes
	// prestop → stopped clean: true
}
