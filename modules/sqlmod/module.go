package sqlmod

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/clockctx"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// Module provides the [*Pool] and its [*sql.DB] for the [Config] in the
// graph (zero Config if none: embedded SQLite in ./data), and the readiness
// check "db" to probemod. The pool is built when something needs it (a
// handler, a worker, the probes), so fx starts it after its dependencies
// and the coordinator closes it after everything that uses it: OnStart
// pings until the database answers; the teardown hook "sql"
// ([lifecycle.Coordinator.AtTeardown]) closes it within its own deadline.
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
// ([lifecycle.Telemetry.RecordCut]).
const CutKind lifecycle.CutKind = "queries"

// NewFx builds the pool, registers [Pool.Close] as the teardown hook "sql"
// ([lifecycle.Coordinator.AtTeardown]) and appends its fx hooks:
// [Pool.Start] in OnStart; in OnStop, the coordinator's stop
// ([lifecycle.Coordinator.Stop]), after which the hook's outcome is
// returned. Queries still running at the hook's deadline are counted as cut
// ("queries") and the hook as overrun; the next hook still runs. The hook
// is registered here, in the constructor, after those of the pool's own
// dependencies and before those of everything built on the pool, so the
// coordinator runs it after the hooks of everything built on the pool.
func NewFx(p Params) (Result, error) {
	pool, err := New(p.Config, WithLogger(p.Logger))
	if err != nil {
		return Result{}, err
	}
	c := p.Coordinator
	h := &closeHook{pool: pool, c: c, done: make(chan struct{})}
	c.AtTeardown("sql", h.run)
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			ctx, stop := cancelAtDrain(ctx, c)
			err := pool.Start(ctx)
			stop()
			if err != nil {
				// fx runs no OnStop for a hook whose OnStart failed; the
				// teardown hook still runs and finds the pool closed.
				_ = pool.DB().Close()
				return err
			}
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if err := c.Stop(ctx); err != nil {
				return err
			}
			return h.result(ctx)
		},
	})
	return Result{Pool: pool, DB: pool.DB()}, nil
}

// closeHook is the teardown hook "sql": [Pool.Close] within the hook's
// deadline, counting the queries it cuts.
type closeHook struct {
	pool  *Pool
	c     *lifecycle.Coordinator
	began atomic.Bool
	done  chan struct{} // closed once err is written
	err   error
}

// cutLead is how long, at most, before its deadline the hook gives up
// waiting for the queries running and counts them as cut (a tenth of its
// share if that is less).
const cutLead = 10 * time.Millisecond

// run closes the pool and waits for the queries running, until shortly
// before ctx's deadline. If queries still run then, it counts them as cut
// ("queries", at least one) and waits for the deadline itself, so that the
// coordinator reports the hook as overrun. The cut is counted before the
// deadline, not at it nor once Close has returned: the coordinator moves on
// from a hook as its deadline strikes, leaving a hook that has not returned
// running, and writes the report as soon as the last hook is done — a cut
// counted at that moment or later could be missing from the report. A
// query that ends in those last moments still ends well: the pool is
// closed, and the connection closes when the query is done.
func (h *closeHook) run(ctx context.Context) error {
	h.began.Store(true)
	closeCtx := ctx
	if dl, ok := ctx.Deadline(); ok {
		clock := h.c.Clock()
		lead := min(dl.Sub(clock.Now())/10, cutLead)
		var cancel context.CancelFunc
		closeCtx, cancel = clockctx.Until(ctx, clock, dl.Add(-lead))
		defer cancel()
	}
	err := h.pool.Close(closeCtx)
	if errors.Is(err, ErrInUse) {
		h.c.Telemetry().RecordCut(CutKind, int64(max(h.pool.InUse(), 1)))
		<-ctx.Done()
		// Matched by the OnStop's error, as the other drainfx hooks' are;
		// the error wraps a deadline error (through ErrInUse), which the
		// coordinator takes for an overrun.
		err = fmt.Errorf("%w: %w", lifecycle.ErrHookOverran, err)
	}
	h.err = err
	close(h.done)
	return err
}

// result returns the outcome of the hook once the coordinator has
// stopped; nil if the coordinator never ran it.
func (h *closeHook) result(ctx context.Context) error {
	if !h.began.Load() {
		return nil
	}
	select {
	case <-h.done:
		return h.err
	case <-ctx.Done():
		return ctx.Err()
	}
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
		case <-c.Reached(lifecycle.StateDraining):
			reason := c.Telemetry().Report().Reason
			cancel(fmt.Errorf("%w: the drain began (%s)", ErrStartCut, reason))
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
	}
}
