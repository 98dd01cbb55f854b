package waittest_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/internal/waittest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// safety bounds the waits of these tests themselves; reaching it is a
// failure. short is the timeout of the waits that are meant to fail.
const (
	safety = 5 * time.Second
	short  = 10 * time.Millisecond
)

// fakeTB records a failure and ends its goroutine, as testing.T.FailNow
// does. Any method the helpers are not expected to call panics.
type fakeTB struct {
	testing.TB // nil
	msg        string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f with a fakeTB on a goroutine of its own and returns the
// failure message ("" if none) and whether f returned rather than failed.
func run(t *testing.T, f func(tb testing.TB)) (msg string, returned bool) {
	t.Helper()
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tb)
		returned = true
	}()
	select {
	case <-done:
	case <-time.After(safety):
		t.Fatal("the helper neither returned nor failed")
	}
	return tb.msg, returned
}

func TestRecv(t *testing.T) {
	t.Parallel()
	t.Run("value ready", func(t *testing.T) {
		t.Parallel()
		ch := make(chan int, 1)
		ch <- 42
		if got := waittest.Recv(t, ch, safety, "the answer"); got != 42 {
			t.Errorf("Recv = %d, want 42", got)
		}
	})
	t.Run("value sent later", func(t *testing.T) {
		t.Parallel()
		ch := make(chan string) // unbuffered: the send waits for Recv
		go func() { ch <- "late" }()
		if got := waittest.Recv(t, ch, safety, "the late value"); got != "late" {
			t.Errorf("Recv = %q, want \"late\"", got)
		}
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		ch := make(chan int)
		close(ch)
		if got := waittest.Recv(t, ch, safety, "the close"); got != 0 {
			t.Errorf("Recv = %d, want the zero value", got)
		}
	})
	t.Run("bidirectional channel", func(t *testing.T) {
		t.Parallel()
		done := make(chan struct{})
		close(done)
		waittest.Recv(t, done, safety, "done") // the value is dropped
	})
}

func TestRecvTimesOut(t *testing.T) {
	t.Parallel()
	start := time.Now()
	msg, returned := run(t, func(tb testing.TB) {
		var never chan int // nil: a receive blocks for ever
		waittest.Recv(tb, never, short, "the answer")
	})
	if waited := time.Since(start); waited < short {
		t.Errorf("Recv gave up after %v, before its timeout %v", waited, short)
	}
	if returned {
		t.Error("Recv returned, want a failure")
	}
	if want := "timed out after 10ms waiting for the answer"; msg != want {
		t.Errorf("failure %q, want %q", msg, want)
	}
}

func TestEventually(t *testing.T) {
	t.Parallel()
	calls := 0
	waittest.Eventually(t, safety, func() bool { calls++; return calls == 3 }, "the third call")
	if calls != 3 {
		t.Errorf("cond called %d times, want 3", calls)
	}
}

func TestEventuallyHoldsAtOnce(t *testing.T) {
	t.Parallel()
	calls := 0
	waittest.Eventually(t, safety, func() bool { calls++; return true }, "nothing")
	if calls != 1 {
		t.Errorf("cond called %d times, want 1", calls)
	}
}

func TestEventuallyTimesOut(t *testing.T) {
	t.Parallel()
	calls := 0
	start := time.Now()
	msg, returned := run(t, func(tb testing.TB) {
		waittest.Eventually(tb, short, func() bool { calls++; return false }, "the impossible")
	})
	if waited := time.Since(start); waited < short {
		t.Errorf("Eventually gave up after %v, before its timeout %v", waited, short)
	}
	if returned {
		t.Error("Eventually returned, want a failure")
	}
	if want := "timed out after 10ms waiting for the impossible"; msg != want {
		t.Errorf("failure %q, want %q", msg, want)
	}
	if calls == 0 {
		t.Error("cond never called")
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	closed := make(chan struct{})
	close(closed)
	ready := make(chan int, 1)
	ready <- 1
	tests := []struct {
		name string
		give func() bool
		want bool
	}{
		{"open", func() bool { return waittest.Closed(make(chan struct{})) }, false},
		{"closed", func() bool { return waittest.Closed(closed) }, true},
		{"nil", func() bool { var ch chan struct{}; return waittest.Closed(ch) }, false},
		{"value ready", func() bool { return waittest.Closed(ready) }, false},
	}
	for _, tt := range tests {
		if got := tt.give(); got != tt.want {
			t.Errorf("%s: Closed = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestBlockUntil(t *testing.T) {
	t.Parallel()
	clk := clockwork.NewFakeClock()
	woke := make(chan struct{})
	go func() {
		clk.Sleep(time.Hour)
		close(woke)
	}()
	timer := clk.NewTimer(time.Minute)
	defer timer.Stop()
	waittest.BlockUntil(t, clk, 2, safety) // the sleeper and the timer
	clk.Advance(time.Hour)
	waittest.Recv(t, woke, safety, "the sleeper to wake")
	waittest.Recv(t, timer.Chan(), safety, "the timer to fire")
}

func TestBlockUntilTimesOut(t *testing.T) {
	t.Parallel()
	clk := clockwork.NewFakeClock()
	timer := clk.NewTimer(time.Minute)
	defer timer.Stop()
	start := time.Now()
	msg, returned := run(t, func(tb testing.TB) {
		waittest.BlockUntil(tb, clk, 2, short) // only one waiter
	})
	if waited := time.Since(start); waited < short {
		t.Errorf("BlockUntil gave up after %v, before its timeout %v", waited, short)
	}
	if returned {
		t.Error("BlockUntil returned, want a failure")
	}
	if want := "timed out after 10ms waiting for 2 timer(s) on the fake clock: context deadline exceeded"; msg != want {
		t.Errorf("failure %q, want %q", msg, want)
	}
}
