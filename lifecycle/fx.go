package lifecycle

import (
	"context"
	"errors"
	"sync/atomic"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/multierr"
	"go.uber.org/zap"
)

// This file is the whole of the fx wiring of the package: the rest of it
// knows nothing of fx, and the same coordinator works without it.

// Module provides the [*Coordinator] for a [Config] in the graph (zero
// Config if none), on the *zap.Logger and the [Clock] in the graph if
// there are. Its OnStart begins handling the signals (unless
// IgnoreSignals); its OnStop asks for the stop ([Coordinator.Stop]), waits for the report,
// and returns [ErrUnclean] if work was cut, so that fx exits 1.
//
// Pair it with [AppOptions] at the top level of the app (the bundle in
// package modules does).
var Module = fx.Module("lifecycle", fx.Provide(newFx))

// params are the coordinator's dependencies under fx.
type params struct {
	fx.In

	Config     Config      `optional:"true"`
	Logger     *zap.Logger `optional:"true"`
	Clock      Clock       `optional:"true"`
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
}

// newFx builds the coordinator and registers its hooks.
func newFx(p params) (*Coordinator, error) {
	log := p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	c, err := New(p.Config,
		WithLogger(log.With(zap.String("component", "lifecycle"))),
		WithClock(p.Clock),
		withShutdown(func() error { return p.Shutdowner.Shutdown() }),
	)
	if err != nil {
		return nil, err
	}
	// With AppOptions in the app, a Shutdown call begins the drain.
	if ds, ok := p.Shutdowner.(*drainShutdowner); ok {
		ds.c.Store(c)
	}
	p.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			// From here, not from MarkStarted: a signal during the rest
			// of the start begins the drain (not the default action's
			// kill), and the OnStart hooks of drainfx's modules still to
			// come give up ("start cut short").
			c.mu.Lock()
			c.handleSignalsLocked()
			c.mu.Unlock()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			if err := c.Stop(ctx); err != nil {
				return err
			}
			r := c.telemetry.Report()
			return r.err()
		},
	})
	return c, nil
}

// AppOptions are the lifecycle's options for the top level of an app (not
// inside an fx.Module, whose decorations stay in the module):
//
//   - Serving once every OnStart hook has run: fx reports the end of
//     app.Start as an event to the app's [fxevent.Logger]; AppOptions
//     decorates whichever logger the app uses (the bundle's, or one given
//     with fx.WithLogger or fx.NopLogger) to hear it and call
//     [Coordinator.MarkStarted]. Every hook of every module and invoke has
//     run by then, wherever it is listed in fx.New.
//   - the drain's reason for a signal that app.Run caught, before fx's stop
//     reaches a Stop.
//   - a call to [fx.Shutdowner] begins the drain at once ([ReasonShutdowner]).
//
// fx allows one decoration of a type per module: an app that decorates
// fxevent.Logger or fx.Shutdowner at the top level itself cannot use
// AppOptions.
var AppOptions = fx.Options(
	fx.Decorate(func(s fx.Shutdowner) fx.Shutdowner { return &drainShutdowner{next: s} }),
	fx.Decorate(func(l fxevent.Logger, c *Coordinator) fxevent.Logger { return fxWatch{Logger: l, c: c} }),
)

// drainShutdowner is the decorated [fx.Shutdowner]. It cannot take the
// coordinator as a dependency — the coordinator's constructor takes the
// Shutdowner — so [newFx] binds it.
type drainShutdowner struct {
	next fx.Shutdowner
	c    atomic.Pointer[Coordinator]
}

func (s *drainShutdowner) Shutdown(opts ...fx.ShutdownOption) error {
	if c := s.c.Load(); c != nil {
		c.expectStop(ReasonShutdowner)
		if c.BeginDrain(ReasonShutdowner) {
			c.log.Info("shutdown requested: draining")
		}
	}
	return s.next.Shutdown(opts...)
}

// fxWatch passes every fx event on, and tells the coordinator when every
// OnStart hook has run and when app.Run caught a signal.
type fxWatch struct {
	fxevent.Logger
	c *Coordinator
}

func (l fxWatch) LogEvent(e fxevent.Event) {
	if uncleanOnly(e) {
		// The shutdown report has said it, in one ERROR line: fx's own
		// lines for the same error (with stack traces) add nothing.
		return
	}
	if s, ok := e.(*fxevent.Stopping); ok {
		// app.Run caught a signal and is about to stop the app; name it
		// before the first OnStop begins the drain as "app stopping".
		// (After a Shutdowner call fx reports SIGTERM too, but the drain
		// has begun already and this does nothing.)
		reason := l.c.signalled(s.Signal)
		// The stop that follows is the signal's too (unless a Shutdowner
		// call, which fx reports as SIGTERM, came first and said so).
		l.c.expectStop(reason)
	}
	l.Logger.LogEvent(e)
	if s, ok := e.(*fxevent.Started); ok && s.Err == nil {
		l.c.MarkStarted()
	}
}

// uncleanOnly reports whether e is fx's report of the lifecycle module's
// [ErrUnclean] and of nothing else.
func uncleanOnly(e fxevent.Event) bool {
	var err error
	switch e := e.(type) {
	case *fxevent.OnStopExecuted:
		err = e.Err
	case *fxevent.Stopped:
		err = e.Err
	}
	if err == nil {
		return false
	}
	for _, one := range multierr.Errors(err) {
		if !errors.Is(one, ErrUnclean) {
			return false
		}
	}
	return true
}
