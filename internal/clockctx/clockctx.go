// Package clockctx holds the time helpers that drainfx's packages share
// over a clock that tests can replace: the real clock, a context that ends
// at a time on any clock, and a sleep that a channel interrupts. A fake
// clock lives in the tests only (internal/clocktest).
package clockctx

import (
	"context"
	"sync"
	"time"
)

// Clock is the method set of lifecycle.Clock: the time a timeline runs on.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Real is the real clock: the time package.
type Real struct{}

// Now is [time.Now].
func (Real) Now() time.Time { return time.Now() }

// AfterFunc is [time.AfterFunc]; it returns the timer's Stop.
func (Real) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// SleepUntil waits on clk until t; false if done closed first.
func SleepUntil(clk Clock, t time.Time, done <-chan struct{}) bool {
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

// Until returns a context that ends at deadline on clk, or when parent
// ends, whichever is first; its Err is [context.DeadlineExceeded] once the
// deadline has passed. Call cancel when done with it. On the real clock it
// is [context.WithDeadline].
func Until(parent context.Context, clk Clock, deadline time.Time) (context.Context, context.CancelFunc) {
	if _, ok := clk.(Real); ok {
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

// deadlineCtx is a context that ends at a time on a [Clock]: its Err is
// [context.DeadlineExceeded] then, as a context from
// [context.WithDeadline] would be on the real clock.
type deadlineCtx struct {
	context.Context
	deadline time.Time
	mu       sync.Mutex // guards expired
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
