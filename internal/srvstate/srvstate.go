// Package srvstate is the start and stop bookkeeping that the drainfx
// servers (httpmod, grpcmod) share: a server starts once and stops once,
// and a Start after its stop fails ([State]). What is still in flight at
// the stop deadline is counted and logged the same way ([RecordCut]), and
// the work a server begins and ends is counted the same way ([Work]).
//
// What a server does to start and stop (listen, serve, shut down) stays in
// the server: [State] only runs it at most once, in order. The server's
// stop is its stop participant ([lifecycle.Coordinator.AtStop]), which the
// coordinator calls whether or not the server ever started.
package srvstate

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// State tracks whether a server has started and stopped. It is safe for
// concurrent use. Build it with [New].
type State struct {
	errStarted error
	cutShort   func() error

	mu       sync.Mutex
	started  bool
	stopping bool          // Stop has been called: no Start from now on
	stopDone chan struct{} // closed when the first Stop has returned
}

// New returns the state of a server that has not started. errStarted is
// the error of a Start after the first successful one; cutShort gives the
// error of a Start after Stop, when the server never started ([StartCut]).
func New(errStarted error, cutShort func() error) *State {
	return &State{errStarted: errStarted, cutShort: cutShort, stopDone: make(chan struct{})}
}

// StartCut is the error of a server's start that comes after its stop
// phase: the service was told to stop (a signal during an earlier OnStart
// hook, a preStop call) and the coordinator ran the shutdown before this
// server listened. It says so, with what began the drain, rather than
// that the server started already.
func StartCut(c *lifecycle.Coordinator, pkg string) error {
	return fmt.Errorf("%s: start cut short: the stop phase came first (the drain began: %s)", pkg, c.Telemetry().Report().Reason)
}

// Start calls start, unless the server has started already or Stop has
// been called: then it returns errStarted. If start fails, Start returns
// its error and the server may start again (until Stop). start runs with
// State's lock held, so a concurrent Start or Stop waits for it.
func (st *State) Start(ctx context.Context, start func(context.Context) error) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.started {
		return st.errStarted
	}
	if st.stopping {
		return st.cutShort()
	}
	if err := start(ctx); err != nil {
		return err
	}
	st.started = true
	return nil
}

// Stop calls stop once, for a server that has started, and returns its
// error. A Stop before Start (or after a failed one) returns nil without
// calling stop. In either case no Start succeeds after it: the stop phase
// has come for this server, and nothing would stop a server started after
// it. A later Stop, while the first runs or after it has returned, waits
// for the first and returns nil, or ctx.Err() if ctx ends first.
func (st *State) Stop(ctx context.Context, stop func(context.Context) error) error {
	st.mu.Lock()
	if st.stopping {
		st.mu.Unlock()
		select {
		case <-st.stopDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	st.stopping = true
	started := st.started
	st.mu.Unlock()
	defer close(st.stopDone)
	if !started {
		return nil
	}
	return stop(ctx)
}

// RecordCut records that a server gave up at the stop deadline with n units
// of kind (its in-flight gauge: httpmod's "requests", grpcmod's "rpcs")
// still in flight, named by names as far as known ([Cut]): it counts them
// with [lifecycle.Telemetry.RecordCut] and logs once, a warning "<kind>
// cut" if n > 0, else that the connections were closed at the deadline.
func RecordCut(c *lifecycle.Coordinator, log *zap.Logger, kind lifecycle.CutKind, n int64, deadline time.Time, names ...string) {
	c.Telemetry().RecordCut(kind, n, names...)
	if n > 0 {
		log.Warn(string(kind)+" cut", zap.Int64("count", n), zap.Time("deadline", deadline),
			zap.Strings("names", names), zap.Int64("unnamed", n-int64(len(names))))
	} else {
		log.Info("connections closed at the stop deadline", zap.Time("deadline", deadline))
	}
}

// Work counts the requests (or RPCs) a server has begun and finished. The
// in-flight count is their difference and the begun count is the arrival
// counter of the adaptive drain ([lifecycle.Telemetry.TrackArrivals]):
// one atomic add when work begins and one when it ends, as a plain
// in-flight gauge costs, so the arrival count is free. The zero value is
// ready to use.
type Work struct {
	begun, done atomic.Int64
}

// Begin counts work that begins.
func (w *Work) Begin() { w.begun.Add(1) }

// End counts work that ends.
func (w *Work) End() { w.done.Add(1) }

// Begun returns the work begun so far (it only grows).
func (w *Work) Begun() int64 { return w.begun.Load() }

// InFlight returns the work begun and not yet ended. The ended count is
// read first, so the result is never below the truth at the moment of the
// first read.
func (w *Work) InFlight() int64 {
	done := w.done.Load()
	return w.begun.Load() - done
}

// Cut names the work a server cuts at the stop deadline. The server's
// request path asks [Cut.Cutting] as each request or RPC ends (one atomic
// load) and, once the server has given up ([Cut.Begin]), names the work
// that ends then ([Cut.Add]: its route pattern or method, known once it
// has been routed, in the goroutine that routed it). The server closes its
// connections, waits a moment for the handlers to see it ([Cut.Wait]) and
// records the cut with the names it got: a handler that ignores its
// context stays unnamed. The zero value is ready to use.
type Cut struct {
	cutting atomic.Bool

	mu    sync.Mutex
	want  int64         // the work in flight at Begin
	names []string      // at most want
	done  chan struct{} // closed once want names have come
}

// Begin marks the start of the cut of n units of work in flight.
func (c *Cut) Begin(n int64) {
	c.mu.Lock()
	c.want, c.done = n, make(chan struct{})
	if n <= 0 {
		close(c.done)
	}
	c.mu.Unlock()
	c.cutting.Store(true)
}

// Cutting reports whether the cut has begun: work that ends from now on
// was cut.
func (c *Cut) Cutting() bool { return c.cutting.Load() }

// Add names one unit of cut work.
func (c *Cut) Add(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if int64(len(c.names)) >= c.want {
		return
	}
	c.names = append(c.names, name)
	if int64(len(c.names)) == c.want {
		close(c.done)
	}
}

// Wait waits until every unit of work cut has been named, or at most d
// (on the real clock: it waits for goroutines, not for the timeline), and
// returns the names so far.
func (c *Cut) Wait(d time.Duration) []string {
	c.mu.Lock()
	done := c.done
	c.mu.Unlock()
	if done != nil {
		t := time.NewTimer(d)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.names)
}
