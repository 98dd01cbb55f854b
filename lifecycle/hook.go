package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// ErrHookOverran is matched by the error of a stop hook cut at its deadline.
var ErrHookOverran = errors.New("lifecycle: stop hook overran its deadline")

// HookReport is one teardown hook in the shutdown report.
type HookReport struct {
	Name    string        `json:"name"`
	Planned time.Duration `json:"planned"`
	Actual  time.Duration `json:"actual"`
	Overran bool          `json:"overran,omitempty"`
	Err     string        `json:"err,omitempty"`
}

// StopHook wraps a teardown OnStop function (closing a pool, stopping
// workers, a gRPC server) so that it gets a deadline of its own.
//
// fx runs every OnStop hook under one context and skips the remaining hooks
// once that context has expired, so one slow hook costs all the others their
// turn. A wrapped hook first waits for the drain to end ([Coordinator.DrainAndWait]),
// then gets an equal share of what is left of the teardown reserve among
// the wrapped hooks that have not run yet: a hook that overruns is cut,
// counted and reported, and the next one still gets its share.
//
// Call StopHook when the hook is registered (in a constructor), not when it
// runs: the count of registered hooks sizes the shares. A function that
// ignores its context is left running when it is cut; its result is
// dropped, and what it records after the cut (RecordCut) may miss the
// report.
//
// Under the lifecycle module, a wrapped hook that fx calls while a server of
// the stop phase (httpmod, grpcmod, wsmod: see [Coordinator.JoinStop]) is
// still stopping is queued, with every wrapped hook fx calls after it, and
// runs in order from the lifecycle module's OnStop, so teardown never
// releases what in-flight requests still use, whatever the order of the
// modules in fx.New. Plain fx hooks are not queued.
func (c *Coordinator) StopHook(name string, fn func(context.Context) error) func(context.Context) error {
	c.mu.Lock()
	c.pendingHooks++
	c.mu.Unlock()
	return func(ctx context.Context) error {
		_ = c.DrainAndWait(ctx)
		if c.deferTeardown(name, fn) {
			return nil
		}
		return c.runStopHook(ctx, name, fn)
	}
}

// teardownQueue keeps teardown hooks out of the stop phase. fx runs OnStop
// hooks one after another in reverse order of registration, and a hook
// registered after the HTTP server's (a worker that nothing depends on,
// listed after the bundle) would run — and release what requests still use
// — before the server has stopped. Such a hook is queued instead, with
// every wrapped hook after it, and the lifecycle module's OnStop (the last
// fx runs) runs the queue in order.
type teardownQueue struct {
	participants int  // stop-phase participants (servers) not yet stopped
	enabled      bool // someone runs the queue (the lifecycle module)
	running      bool // the queue is being run: no more deferring
	queue        []queuedHook
}

type queuedHook struct {
	name string
	fn   func(context.Context) error
}

// JoinStop registers a participant of the stop phase: a server whose OnStop
// drains traffic (httpmod, grpcmod, wsmod call it when they start). Until
// every participant has called its done function, hooks wrapped with
// [Coordinator.StopHook] that fx runs are queued and run after the last
// server has stopped. done may be called more than once.
func (c *Coordinator) JoinStop() (done func()) {
	c.mu.Lock()
	c.teardown.participants++
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.teardown.participants--
			c.mu.Unlock()
		})
	}
}

// deferTeardown queues a wrapped hook if servers are still stopping (or an
// earlier hook was queued, to keep fx's order); false means run it now.
func (c *Coordinator) deferTeardown(name string, fn func(context.Context) error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	q := &c.teardown
	if !q.enabled || q.running || (q.participants == 0 && len(q.queue) == 0) {
		return false
	}
	q.queue = append(q.queue, queuedHook{name, fn})
	c.log.Info("teardown hook queued until the servers have stopped", zap.String("hook", name))
	return true
}

// runQueuedTeardown runs the queued hooks in order; the lifecycle module
// calls it from its OnStop, before the report.
func (c *Coordinator) runQueuedTeardown(ctx context.Context) error {
	c.mu.Lock()
	c.teardown.running = true
	queue := c.teardown.queue
	c.teardown.queue = nil
	c.mu.Unlock()
	var errs []error
	for _, h := range queue {
		errs = append(errs, c.runStopHook(ctx, h.name, h.fn))
	}
	return errors.Join(errs...)
}

// runStopHook runs fn with its share of what is left of the teardown.
func (c *Coordinator) runStopHook(ctx context.Context, name string, fn func(context.Context) error) error {
	start := c.clock.Now()
	end := c.TeardownDeadline()
	c.mu.Lock()
	if c.teardownAt.IsZero() {
		c.teardownAt = start
	}
	share := end.Sub(start) / time.Duration(max(c.pendingHooks, 1))
	c.pendingHooks--
	c.mu.Unlock()
	share = max(share, 0)

	hctx, cancel := clockwork.WithTimeout(ctx, c.clock, share)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(hctx) }()

	var err error
	overran := false
	select {
	case err = <-done:
	case <-hctx.Done():
		select {
		case err = <-done: // returned as the deadline struck
		default:
			overran = true // still running: cut and left behind
		}
	}
	if !overran {
		// A hook that honours its context gives up at the deadline and
		// returns the context's error: it was cut all the same. (Done is
		// checked rather than Err, which blocks on a fake clock's context.)
		select {
		case <-hctx.Done():
			overran = errors.Is(err, context.DeadlineExceeded)
		default:
		}
	}
	if overran {
		err = fmt.Errorf("stop hook %q after %v: %w", name, share, ErrHookOverran)
	}
	hr := HookReport{Name: name, Planned: share, Actual: c.clock.Since(start), Overran: overran}
	if err != nil {
		hr.Err = err.Error()
	}
	c.mu.Lock()
	c.hooks = append(c.hooks, hr)
	if overran {
		c.cuts["hooks"]++
	}
	c.mu.Unlock()
	if overran {
		c.log.Warn("stop hook overran", zap.String("hook", name), zap.Duration("deadline", share))
		return err
	}
	if err != nil {
		return fmt.Errorf("stop hook %q: %w", name, err)
	}
	return nil
}
