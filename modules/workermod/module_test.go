package workermod_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/workermod"
)

type queue struct{ name string }

func TestModuleBoot(t *testing.T) {
	t.Parallel()
	var (
		rec recorder
		s   *workermod.Supervisor
	)
	app := fxtest.New(t,
		fx.Supply(roomy),
		lifecycle.Module,
		workermod.Module,
		fx.Supply(&queue{name: "jobs"}),
		workermod.AsWorker("ticker", workermod.AtTeardown, untilDone(&rec, "ticker")),
		workermod.AsWorker("consumer", workermod.AtDrain, func(q *queue) func(context.Context) error {
			return untilDone(&rec, "consumer "+q.name)
		}),
		workermod.AsWorker("relay", workermod.AtTeardown, func(q *queue) (func(context.Context) error, error) {
			return untilDone(&rec, "relay "+q.name), nil
		}),
		fx.Populate(&s),
	)
	app.RequireStart()
	if got := s.Running(); len(got) != 3 {
		t.Fatalf("Running() = %v, want 3 workers", got)
	}
	app.RequireStop()
	got := rec.get()
	if len(got) != 3 || got[0] != "consumer jobs" {
		t.Fatalf("stopped %v, want the drain worker first, then the other two", got)
	}
	if len(s.Running()) != 0 {
		t.Fatalf("Running() after stop = %v", s.Running())
	}
}

func TestModuleFailedWorkerShutsAppDownWithExitCode1(t *testing.T) {
	t.Parallel()
	app := fxtest.New(t,
		fx.Supply(roomy),
		lifecycle.Module,
		workermod.Module,
		workermod.AsWorker("bad", workermod.AtTeardown, func(context.Context) error { return errors.New("boom") }),
	)
	app.RequireStart()
	sig := waittest.Recv(t, app.Wait(), waitTimeout, "the shutdown signal")
	if sig.ExitCode != 1 {
		t.Fatalf("exit code %d, want 1", sig.ExitCode)
	}
	app.RequireStop()
}

// A component that adds its worker in its constructor registers the
// worker's teardown hook at that point: the coordinator stops the worker
// after what depends on the component (a handler: a stop participant) and
// before what the component depends on (a pool: a teardown hook registered
// before the worker's).
func TestModuleWorkerAddedByConstructorStopsInDependencyOrder(t *testing.T) {
	t.Parallel()
	var rec recorder
	type pool struct{}
	type jobs struct{}
	type handler struct{}
	record := func(name string) func(context.Context) error {
		return func(context.Context) error { rec.add(name); return nil }
	}
	app := fxtest.New(t,
		fx.Supply(roomy),
		lifecycle.Module,
		workermod.Module,
		fx.Provide(
			func(c *lifecycle.Coordinator) *pool { c.AtTeardown("pool", record("pool")); return &pool{} },
			func(_ *pool, s *workermod.Supervisor) (*jobs, error) {
				return &jobs{}, s.Add(workermod.Worker{Name: "jobs", Run: untilDone(&rec, "jobs worker")})
			},
			func(c *lifecycle.Coordinator, _ *jobs) *handler {
				c.AtStop("handler", record("handler"))
				return &handler{}
			},
		),
		fx.Invoke(func(*handler) {}),
	)
	app.RequireStart().RequireStop()
	if got, want := rec.get(), []string{"handler", "jobs worker", "pool"}; !slices.Equal(got, want) {
		t.Fatalf("stop order %v, want %v", got, want)
	}
}

func TestAsWorkerRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give any
	}{
		{"nil", nil},
		{"not a func", 42},
		{"wrong result", func() int { return 0 }},
		{"wrong second result", func() (func(context.Context) error, int) { return nil, 0 }},
	}
	for _, tt := range tests {
		err := fx.New(fx.NopLogger, fx.Supply(roomy), lifecycle.Module, workermod.Module,
			workermod.AsWorker("w", workermod.AtTeardown, tt.give)).Err()
		if !errors.Is(err, workermod.ErrConfig) {
			t.Errorf("%s: fx.New error %v, want ErrConfig", tt.name, err)
		}
	}
	ctorErr := errors.New("no queue")
	err := fx.New(fx.NopLogger, fx.Supply(roomy), lifecycle.Module, workermod.Module,
		workermod.AsWorker("w", workermod.AtTeardown, func() (func(context.Context) error, error) { return nil, ctorErr })).Err()
	if !errors.Is(err, ctorErr) {
		t.Errorf("constructor error: fx.New error %v, want %v", err, ctorErr)
	}
}
