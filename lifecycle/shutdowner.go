package lifecycle

import (
	"sync/atomic"

	"go.uber.org/fx"
)

// DrainOnShutdown is an fx option for the top level of an app (not inside
// an fx.Module, whose decorations stay in the module): it decorates
// [fx.Shutdowner] so that a call to Shutdown begins the drain at once, with
// reason [ReasonShutdowner], before fx begins to stop the app. The bundle in
// package modules includes it.
//
// Without it a Shutdown call still drains, but D0 is a little later — when
// the app's stop reaches the HTTP module's OnStop — and the report's reason
// is [ReasonAppStopping].
var DrainOnShutdown = fx.Decorate(func(s fx.Shutdowner) fx.Shutdowner {
	return &drainShutdowner{next: s}
})

// drainShutdowner is the decorated [fx.Shutdowner]. It cannot take the
// coordinator as a dependency — the coordinator's constructor takes the
// Shutdowner — so [NewFx] binds it.
type drainShutdowner struct {
	next fx.Shutdowner
	c    atomic.Pointer[Coordinator]
}

func (s *drainShutdowner) Shutdown(opts ...fx.ShutdownOption) error {
	if c := s.c.Load(); c != nil && c.BeginDrain(ReasonShutdowner) {
		c.log.Info("shutdown requested: draining")
	}
	return s.next.Shutdown(opts...)
}

// bindShutdowner lets a decorated Shutdowner begin c's drain.
func bindShutdowner(s fx.Shutdowner, c *Coordinator) {
	if ds, ok := s.(*drainShutdowner); ok {
		ds.c.Store(c)
	}
}
