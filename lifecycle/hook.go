package lifecycle

import (
	"context"
	"errors"
	"fmt"
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
// dropped.
func (c *Coordinator) StopHook(name string, fn func(context.Context) error) func(context.Context) error {
	c.mu.Lock()
	c.pendingHooks++
	c.mu.Unlock()
	return func(ctx context.Context) error {
		_ = c.DrainAndWait(ctx)
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
}
