package sqlmod

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// Module provides the [*Pool] and its [*sql.DB] for the [Config] in the
// graph (zero Config if none: embedded SQLite in ./data), and the readiness
// check "db" to probemod. The pool is built when something needs it (a
// handler, a worker, the probes), so fx starts it after its dependencies
// and stops it after everything that uses it: OnStart pings until the
// database answers, OnStop closes it within its own deadline
// ([lifecycle.Coordinator.StopHook] "sql").
var Module = fx.Module("sql",
	fx.Provide(NewFx),
	probemod.AsCheck("db", func(p *Pool) func(context.Context) error { return p.Check }),
)

// Params are the pool's dependencies under fx.
type Params struct {
	fx.In

	Config      Config      `optional:"true"`
	Logger      *zap.Logger `optional:"true"`
	Coordinator *lifecycle.Coordinator
	Lifecycle   fx.Lifecycle
}

// Result is what [Module] provides.
type Result struct {
	fx.Out

	Pool *Pool
	DB   *sql.DB
}

// ErrStartCut is matched (with [errors.Is]) by the error of the pool's
// OnStart when the drain began while it was still pinging the database: a
// SIGTERM during start-up ends the start at once, not at fx's start timeout
// (by which time the kubelet may have sent SIGKILL).
var ErrStartCut = errors.New("sqlmod: start cut short")

// CutKind is the kind under which queries still running at the close
// deadline are counted in the shutdown report
// ([lifecycle.Coordinator.RecordCut]).
const CutKind = "queries"

// NewFx builds the pool and appends its hooks: [Pool.Start] in OnStart,
// [Pool.Close] in OnStop as the stop hook "sql". Queries still running at
// that hook's deadline are counted as cut ("queries") and the hook as
// overrun; the next hook still runs.
func NewFx(p Params) (Result, error) {
	pool, err := New(p.Config, WithLogger(p.Logger))
	if err != nil {
		return Result{}, err
	}
	hook := p.Coordinator.StopHook("sql", pool.Close)
	stop := func(ctx context.Context) error {
		err := hook(ctx)
		// Counted here, once the hook has returned, not in the function it
		// wraps: that one may still be running, its result dropped, after
		// the hook was cut — and after the report was written.
		if errors.Is(err, lifecycle.ErrHookOverran) {
			p.Coordinator.RecordCut(CutKind, int64(max(pool.InUse(), 1)))
		}
		return err
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			ctx, stop := cancelAtDrain(ctx, p.Coordinator)
			err := pool.Start(ctx)
			stop()
			if err != nil {
				// fx runs no OnStop for a hook whose OnStart failed.
				_ = pool.DB().Close()
				return err
			}
			return nil
		},
		OnStop: stop,
	})
	return Result{Pool: pool, DB: pool.DB()}, nil
}

// cancelAtDrain returns ctx cancelled, with a cause matching [ErrStartCut]
// and naming the drain's reason, when the coordinator's drain begins. The
// lifecycle module's OnStart, which installs the signal handler, has run by
// then: every module that takes the coordinator starts after it. stop ends
// the watch and waits for its goroutine.
func cancelAtDrain(ctx context.Context, c *lifecycle.Coordinator) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-c.DrainStarted():
			_, reason := c.D0()
			cancel(fmt.Errorf("%w: the drain began (%s)", ErrStartCut, reason))
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
	}
}
