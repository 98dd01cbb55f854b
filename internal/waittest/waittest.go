package waittest

import (
	"context"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

// PollInterval is how long [Eventually] sleeps between two checks of its
// condition: short, so that a wait ends soon after the condition holds and a
// state that holds only briefly is still seen.
const PollInterval = time.Millisecond

// Recv waits for a value on ch and returns it: the zero value at once if ch
// is closed. If none arrives within timeout, it fails the test with
// "timed out after <timeout> waiting for <what>".
func Recv[T any](tb testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	tb.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
		var zero T
		return zero
	}
}

// Eventually calls cond every [PollInterval] until it returns true. If it
// still returns false once timeout has passed, Eventually fails the test
// with "timed out after <timeout> waiting for <what>". cond runs on the
// calling goroutine, so it may itself fail the test.
func Eventually(tb testing.TB, timeout time.Duration, cond func() bool, what string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s", timeout, what)
			return
		}
		time.Sleep(PollInterval) // polling with a deadline
	}
}

// Closed reports whether ch is closed, without blocking. It is meant for
// channels that are closed and never sent on (context.Context.Done and the
// like): a value ready on ch would be received, and so lost, and Closed
// would report false.
func Closed[T any](ch <-chan T) bool {
	select {
	case _, ok := <-ch:
		return !ok
	default:
		return false
	}
}

// BlockUntil waits until n goroutines wait on clk (its timers, tickers and
// sleepers). If that does not happen within timeout, it fails the test with
// "timed out after <timeout> waiting for <n> timer(s) on the fake clock".
func BlockUntil(tb testing.TB, clk *clockwork.FakeClock, n int, timeout time.Duration) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := clk.BlockUntilContext(ctx, n); err != nil {
		tb.Fatalf("timed out after %v waiting for %d timer(s) on the fake clock: %v", timeout, n, err)
	}
}
