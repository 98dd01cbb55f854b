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
	err := lifecycle.Config{GracePeriod: 8 * time.Second}.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, lifecycle.ErrBudget))

	err = lifecycle.Config{DrainDelay: -time.Second}.Validate()
	fmt.Println(err)
	// Output:
	// lifecycle: DrainDelay=5s + TeardownReserve=3s + Margin=1s = 9s must be below GracePeriod=8s
	// true
	// lifecycle: DrainDelay=-1s is negative
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

// Under fx, the module provides the coordinator; an OnStop that drains (as
// the HTTP module's does) makes a plain stop go through the whole timeline.
func ExampleModule() {
	var c *lifecycle.Coordinator
	app := fx.New(
		fx.NopLogger,
		fx.Supply(lifecycle.Config{
			GracePeriod:     time.Second,
			DrainDelay:      lifecycle.NoDelay,
			IgnoreSignals:   true,
			TeardownReserve: 100 * time.Millisecond,
			Margin:          100 * time.Millisecond,
		}),
		lifecycle.Module,
		fx.Populate(&c),
		fx.Invoke(func(lc fx.Lifecycle, c *lifecycle.Coordinator) {
			lc.Append(fx.Hook{OnStop: c.DrainAndWait})
		}),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	c.MarkStarted()
	fmt.Println(c.State(), c.Ready())
	fmt.Println("stop:", app.Stop(ctx))
	r, _ := c.Report()
	fmt.Println(c.State(), r.Reason, r.DrainEndedBy, r.ExitCode)
	// Output:
	// serving true
	// stop: <nil>
	// stopped app stopping delay 0
}
