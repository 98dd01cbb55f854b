package lifecycle

import (
	"context"
	"errors"

	"github.com/jonboulle/clockwork"
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// Module provides the [*Coordinator] for a [Config] in the graph (zero
// Config if none), logs the plan at start, handles signals, and writes the
// shutdown report from its OnStop — the last to run, since every module
// that drains depends on the coordinator.
var Module = fx.Module("lifecycle", fx.Provide(NewFx))

// Params are the coordinator's dependencies under fx.
type Params struct {
	fx.In

	Config     Config          `optional:"true"`
	Logger     *zap.Logger     `optional:"true"`
	Clock      clockwork.Clock `optional:"true"`
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
}

// NewFx builds the coordinator and registers its hooks.
func NewFx(p Params) (*Coordinator, error) {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c, err := New(p.Config, WithLogger(log.With(zap.String("component", "lifecycle"))), WithClock(p.Clock))
	if err != nil {
		return nil, err
	}
	// With DrainOnShutdown in the app, a Shutdown call begins the drain.
	bindShutdowner(p.Shutdowner, c)
	c.teardown.enabled = true // this module's OnStop runs the queued teardown hooks
	var stopSignals func()
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			c.log.Info("shutdown plan", zap.Object("plan", c.plan))
			if !c.plan.IgnoreSignals {
				stopSignals = c.HandleSignals(func() error { return p.Shutdowner.Shutdown() })
			}
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if stopSignals != nil {
				stopSignals()
			}
			qerr := c.runQueuedTeardown(ctx)
			err := errors.Join(c.Finish().err(), qerr)
			err = errors.Join(err, c.runFinishers(ctx))
			_ = c.log.Sync() // the finishers' last lines too
			return err
		},
	})
	return c, nil
}

func (c *Coordinator) runFinishers(ctx context.Context) error {
	c.mu.Lock()
	fs := c.finishers
	c.mu.Unlock()
	var errs []error
	for i := len(fs) - 1; i >= 0; i-- {
		errs = append(errs, fs[i](ctx))
	}
	return errors.Join(errs...)
}
