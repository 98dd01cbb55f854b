package workermod

import (
	"context"
	"fmt"
	"reflect"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// Module provides the [*Supervisor] and runs the workers registered with
// [AsWorker]. Workers added with [Supervisor.Add] from a component's
// constructor are run too. It needs the [*lifecycle.Coordinator]
// ([lifecycle.Module]), which stops the workers.
var Module = fx.Module("workers",
	fx.Provide(NewFx),
	fx.Invoke(func(*Supervisor) {}),
)

// groupTag is the value group of [AsWorker]; users never write it.
const groupTag = `group:"drainfx.workers"`

// Params are the supervisor's dependencies under fx.
type Params struct {
	fx.In

	Config      Config      `optional:"true"`
	Logger      *zap.Logger `optional:"true"`
	Coordinator *lifecycle.Coordinator
	Lifecycle   fx.Lifecycle
	Shutdowner  fx.Shutdowner
	Workers     []Worker `group:"drainfx.workers"`
}

// NewFx builds the supervisor, adds the workers of the value group, and
// gives every worker added (now or later, from a constructor) hooks of its
// own: OnStart starts it; OnStop asks the coordinator for the stop, waits
// for the shutdown to be over and returns that worker's outcome (see
// [Supervisor.Stop]). A failed worker stops the app through fx.Shutdowner
// with exit code 1.
func NewFx(p Params) (*Supervisor, error) {
	s, err := New(p.Config, p.Coordinator,
		WithLogger(p.Logger),
		WithShutdown(func(code int) error { return p.Shutdowner.Shutdown(fx.ExitCode(code)) }),
	)
	if err != nil {
		return nil, err
	}
	// Appended before any worker's hooks: its OnStart closes the
	// supervisor to new workers before the first one starts.
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error { s.markStarted(); return nil },
		OnStop:  p.Coordinator.Stop,
	})
	s.onAdd = func(e *entry) {
		p.Lifecycle.Append(fx.Hook{
			OnStart: func(context.Context) error { s.startEntry(e); return nil },
			OnStop:  func(ctx context.Context) error { return s.stopEntry(ctx, e) },
		})
	}
	for _, w := range p.Workers {
		if err := s.Add(w); err != nil {
			return nil, err
		}
	}
	return s, nil
}

var (
	runType    = reflect.TypeFor[func(context.Context) error]()
	workerType = reflect.TypeFor[Worker]()
	errorType  = reflect.TypeFor[error]()
)

// AsWorker registers a worker with [Module] through a value group. fn is
// the worker's Run function — a func(context.Context) error — or an fx
// constructor that returns one (and optionally an error), so the worker can
// take dependencies:
//
//	workermod.AsWorker("outbox", workermod.AtTeardown, newOutbox) // func(db *sql.DB) func(context.Context) error
//	workermod.AsWorker("consumer", workermod.AtDrain, consume)    // func(ctx context.Context) error
//
// AsWorker is for workers nothing else depends on. They are added when the
// module builds the supervisor, after the dependencies of their
// constructors. The order of the modules in fx.New does not matter to the
// stop: the coordinator runs every teardown hook, these workers' included,
// only after every stop participant (the servers) has returned, so a
// teardown worker never stops while requests still use it. A worker that
// the handlers feed or read from belongs to a component: add it with
// [Supervisor.Add] in that component's constructor, and its teardown hook
// runs before those of the component's own dependencies.
func AsWorker(name string, stop When, fn any) fx.Option {
	v := reflect.ValueOf(fn)
	if !v.IsValid() || v.Kind() != reflect.Func || v.IsNil() {
		return fx.Error(configErrorf("AsWorker(%q): fn is %T, not a func", name, fn))
	}
	t := v.Type()
	if t.ConvertibleTo(runType) {
		// The run function itself: a constructor without inputs returns it.
		run := v.Convert(runType).Interface().(func(context.Context) error)
		return provideWorker(func() Worker { return Worker{Name: name, Run: run, Stop: stop} })
	}
	if t.IsVariadic() || t.NumOut() < 1 || t.NumOut() > 2 || !t.Out(0).ConvertibleTo(runType) ||
		(t.NumOut() == 2 && t.Out(1) != errorType) {
		return fx.Error(configErrorf(
			"AsWorker(%q): fn is %v; want func(context.Context) error or a constructor returning one (and an error)", name, t))
	}
	ins := make([]reflect.Type, t.NumIn())
	for i := range ins {
		ins[i] = t.In(i)
	}
	ctor := reflect.MakeFunc(reflect.FuncOf(ins, []reflect.Type{workerType, errorType}, false),
		func(args []reflect.Value) []reflect.Value {
			out := v.Call(args)
			fail := func(err error) []reflect.Value {
				return []reflect.Value{reflect.Zero(workerType), reflect.ValueOf(&err).Elem()}
			}
			if len(out) == 2 && !out[1].IsNil() {
				return fail(fmt.Errorf("worker %q: %w", name, out[1].Interface().(error)))
			}
			if out[0].IsNil() {
				return fail(configErrorf("worker %q: constructor returned a nil func", name))
			}
			run := out[0].Convert(runType).Interface().(func(context.Context) error)
			w := Worker{Name: name, Run: run, Stop: stop}
			return []reflect.Value{reflect.ValueOf(w), reflect.Zero(errorType)}
		})
	return provideWorker(ctor.Interface())
}

func provideWorker(ctor any) fx.Option {
	return fx.Provide(fx.Annotate(ctor, fx.ResultTags(groupTag)))
}
