package workermod_test

import (
	"context"
	"fmt"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/workermod"
)

func Example() {
	app := fx.New(fx.NopLogger,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, IgnoreSignals: true}),
		lifecycle.Module,
		workermod.Module,
		// Stops taking messages at D0, when the pod begins to leave.
		workermod.AsWorker("consumer", workermod.AtDrain, func(ctx context.Context) error {
			<-ctx.Done()
			fmt.Println("consumer: no new messages")
			return nil
		}),
		// Runs until the teardown, after the servers have stopped.
		workermod.AsWorker("outbox", workermod.AtTeardown, func(ctx context.Context) error {
			<-ctx.Done()
			fmt.Println("outbox: flushed")
			return nil
		}),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	if err := app.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// consumer: no new messages
	// outbox: flushed
}

func ExampleSupervisor_Add() {
	c, _ := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None})
	s, _ := workermod.New(workermod.Config{}, c)
	_ = s.Add(workermod.Worker{
		Name: "refresher",
		Run: func(ctx context.Context) error {
			<-ctx.Done()
			return ctx.Err() // the context's own error is a normal stop
		},
	})
	ctx := context.Background()
	_ = s.Start(ctx)
	fmt.Println(s.Running())
	fmt.Println(s.Stop(ctx), s.Running()) // the coordinator's stop: the report is out
	r := c.Telemetry().Report()
	fmt.Println(r.ExitCode == 0)
	// Output:
	// [refresher]
	// <nil> []
	// true
}
