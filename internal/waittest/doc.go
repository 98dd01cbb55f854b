// Package waittest holds the waits that the drainfx tests share, so that no
// test package keeps its own copy:
//
//   - [Recv] receives a value from a channel,
//   - [Eventually] polls a condition until it holds,
//   - [Closed] tells, without blocking, whether a channel is closed,
//   - [BlockUntil] waits until a fake clock has n waiters.
//
// # Timeouts
//
// Every wait is bounded by a timeout that the caller passes, as each test
// package picks its own (5s in most, 10s where real processes or sockets are
// involved). Reaching it fails the test with [testing.TB.Fatalf] and a
// message naming the timeout and what was awaited ("timed out after 5s
// waiting for the drain timer"). A timeout is a safety net against a hung
// test, never the thing a test measures: timing claims belong in benchmarks.
//
// # Limits
//
// The helpers that can fail call Fatalf, so, like [testing.T.FailNow], they
// must be called from the goroutine running the test, not from one it
// started.
package waittest
