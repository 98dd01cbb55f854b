package lifecycle

import (
	"context"
	"sync"
	"time"
)

// Clock is the time the timeline runs on. The real clock is the default;
// tests pass a fake one ([WithClock]) so that a 30 s drain takes no time.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed. stop
	// cancels the call if it has not begun, and reports whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// sleepUntil waits on clk until t; false if done closed first.
func sleepUntil(clk Clock, t time.Time, done <-chan struct{}) bool {
	d := t.Sub(clk.Now())
	if d <= 0 {
		return true
	}
	fired := make(chan struct{})
	stop := clk.AfterFunc(d, func() { close(fired) })
	defer stop()
	select {
	case <-fired:
		return true
	case <-done:
		return false
	}
}

// deadlineCtx is a context that ends at a time on a [Clock]: its Err is
// [context.DeadlineExceeded] then, as a context from
// [context.WithDeadline] would be on the real clock.
type deadlineCtx struct {
	context.Context
	deadline time.Time
	mu       sync.Mutex
	expired  bool
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Err() error {
	err := c.Context.Err()
	if err == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.expired {
		return context.DeadlineExceeded
	}
	return err
}

// ContextUntil returns a context that ends at deadline on clk, or when
// parent ends, whichever is first; its Err is [context.DeadlineExceeded]
// once the deadline has passed. Call cancel when done with it. On the real
// clock it is [context.WithDeadline].
func ContextUntil(parent context.Context, clk Clock, deadline time.Time) (context.Context, context.CancelFunc) {
	if _, ok := clk.(realClock); ok {
		return context.WithDeadline(parent, deadline)
	}
	inner, cancel := context.WithCancel(parent)
	c := &deadlineCtx{Context: inner, deadline: deadline}
	expire := func() {
		c.mu.Lock()
		if inner.Err() == nil {
			c.expired = true
		}
		c.mu.Unlock()
		cancel()
	}
	d := deadline.Sub(clk.Now())
	if d <= 0 {
		expire()
		return c, cancel
	}
	stop := clk.AfterFunc(d, expire)
	return c, func() {
		stop()
		cancel()
	}
}
