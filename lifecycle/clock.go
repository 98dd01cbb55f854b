package lifecycle

import "time"

// Clock is the time the timeline runs on. The real clock is the default;
// tests pass a fake one ([WithClock]) so that a 30 s drain takes no time.
// A context that ends at a time on it: [context.WithDeadline] on the real
// clock; the participants of drainfx's modules get theirs from
// [Coordinator.AtStop] and [Coordinator.AtTeardown].
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed. stop
	// cancels the call if it has not begun, and reports whether it did.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}
