package idle_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/internal/idle"
	"github.com/drainfx/drainfx/internal/waittest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait on an event; reaching it is a failure.
const waitTimeout = 5 * time.Second

// set is work in progress as the callers keep it: a count under a lock of
// its own, and the Signal beside it.
type set struct {
	mu    sync.Mutex
	n     int
	sig   idle.Signal
	asked chan int // if set, empty sends what it read
}

func newSet(n int) *set { return &set{n: n} }

func (s *set) remove() {
	s.mu.Lock()
	s.n--
	s.mu.Unlock()
	s.sig.Notify()
}

func (s *set) empty() bool {
	s.mu.Lock()
	n := s.n
	s.mu.Unlock()
	if s.asked != nil {
		s.asked <- n
	}
	return n == 0
}

func TestWaitEmptyReturnsAtOnce(t *testing.T) {
	t.Parallel()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	s := newSet(0)
	if err := s.sig.Wait(ended, s.empty); err != nil {
		t.Errorf("Wait on an empty set, ctx ended = %v, want nil", err)
	}
}

// The waiter asks the set again after each removal, and returns only when
// the last one has left.
func TestWaitUntilTheLastRemoval(t *testing.T) {
	t.Parallel()
	s := newSet(3)
	s.asked = make(chan int)
	done := make(chan error, 1)
	go func() { done <- s.sig.Wait(context.Background(), s.empty) }()
	if n := waittest.Recv(t, s.asked, waitTimeout, "the first look at the set"); n != 3 {
		t.Fatalf("first look saw %d, want 3", n)
	}
	for want := 2; want >= 0; want-- {
		s.remove()
		if n := waittest.Recv(t, s.asked, waitTimeout, "the look after a removal"); n != want {
			t.Fatalf("look after a removal saw %d, want %d", n, want)
		}
		if want > 0 {
			select {
			case err := <-done:
				t.Fatalf("Wait returned %v with %d left", err, want)
			default:
			}
		}
	}
	if err := waittest.Recv(t, done, waitTimeout, "Wait to return"); err != nil {
		t.Errorf("Wait = %v, want nil", err)
	}
}

// Removers and waiters in parallel, many rounds: every waiter returns
// once the set is empty, whichever removal comes between its taking the
// wake-up and its look at the set.
func TestWaitManyRemoversManyWaiters(t *testing.T) {
	t.Parallel()
	const rounds, items, removers, waiters = 200, 64, 8, 4
	for range rounds {
		s := newSet(items)
		done := make(chan error, waiters)
		for range waiters {
			go func() { done <- s.sig.Wait(context.Background(), s.empty) }()
		}
		var wg sync.WaitGroup
		for range removers {
			wg.Go(func() {
				for range items / removers {
					s.remove()
				}
			})
		}
		wg.Wait()
		for range waiters {
			if err := waittest.Recv(t, done, waitTimeout, "every waiter to return"); err != nil {
				t.Fatalf("Wait = %v, want nil", err)
			}
		}
	}
}

func TestWaitCtxEnds(t *testing.T) {
	t.Parallel()
	s := newSet(1)
	s.asked = make(chan int, 2)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.sig.Wait(ctx, s.empty) }()
	waittest.Recv(t, s.asked, waitTimeout, "the first look at the set")
	cancel()
	if err := waittest.Recv(t, done, waitTimeout, "Wait to return"); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with one left, ctx cancelled = %v, want context.Canceled", err)
	}
	if n := waittest.Recv(t, s.asked, waitTimeout, "the look at the end of ctx"); n != 1 {
		t.Errorf("look at the end of ctx saw %d, want 1", n)
	}
}

// A set that has become empty by the time ctx ends is empty: the end of
// ctx does not hide it.
func TestWaitEmptiedAsCtxEnds(t *testing.T) {
	t.Parallel()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	var looks int
	var sig idle.Signal
	err := sig.Wait(ended, func() bool { looks++; return looks > 1 })
	if err != nil || looks != 2 {
		t.Errorf("Wait = %v after %d looks, want nil after 2", err, looks)
	}
}

// Nobody waits most of the time: a removal's Notify then allocates
// nothing.
func TestNotifyWithoutWaiterAllocatesNothing(t *testing.T) {
	var sig idle.Signal
	if n := testing.AllocsPerRun(100, sig.Notify); n != 0 {
		t.Errorf("Notify without a waiter: %v allocations, want 0", n)
	}
}
