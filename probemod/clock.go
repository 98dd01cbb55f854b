package probemod

import (
	"context"
	"time"

	"github.com/drainfx/drainfx/lifecycle"
)

// realClock is the default [lifecycle.Clock] of the checks: the time
// package. Tests pass a fake clock ([WithClock]); none is linked into a
// service.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// contextUntil is a context that ends at deadline on clk: on the real clock
// a plain [context.WithDeadline], on another [lifecycle.ContextUntil].
func contextUntil(parent context.Context, clk lifecycle.Clock, deadline time.Time) (context.Context, context.CancelFunc) {
	if _, ok := clk.(realClock); ok {
		return context.WithDeadline(parent, deadline)
	}
	return lifecycle.ContextUntil(parent, clk, deadline)
}
