// Package idle is the one wait of drainfx for a set of work in progress
// to become empty — connections to close, sessions to end, goroutines to
// return — bounded by a context, as [net/http.Server.Shutdown] waits for
// its connections.
//
// The set stays the owner's, under the owner's own lock and in its own
// shape (a count, a map, sharded lists): a [Signal] only wakes the waiter
// when the set may have become empty, and [Signal.Wait] asks the owner
// whether it has. So the path that adds and removes work keeps its cost:
// a removal adds one [Signal.Notify], an atomic load when nobody waits,
// which is most of the time (BenchmarkNotify).
package idle

import (
	"context"
	"sync"
	"sync/atomic"
)

// Signal wakes the waiters of [Signal.Wait] when the set they wait on may
// have become empty. The zero value is ready to use. It is safe for
// concurrent use, by any number of waiters.
type Signal struct {
	// waiting: ch is not nil. Notify reads it without the lock; it is
	// written under it.
	waiting atomic.Bool

	mu sync.Mutex
	ch chan struct{} // closed by Notify; nil: no waiter since the last Notify
}

// Notify wakes every waiter: call it after each change that may leave the
// set empty (a removal), once empty would see the change. It may be called
// with the set's lock held. Without a waiter it is one atomic load.
func (s *Signal) Notify() {
	// A waiter sets waiting before it reads the set; the change was made
	// before this load. So either this load sees waiting, or the waiter's
	// read sees the change.
	if !s.waiting.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
		s.waiting.Store(false)
	}
}

// Wait returns nil once empty reports true, or ctx.Err() if ctx ends
// first. empty is asked at once, after every Notify, and once more when
// ctx ends, so that an ended ctx does not hide a set that has just become
// empty. It is called without the Signal's lock; it reads the set under
// the set's own.
func (s *Signal) Wait(ctx context.Context, empty func() bool) error {
	for {
		// The channel is taken before the set is read: a removal after the
		// read closes it.
		ch := s.wake()
		if empty() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if empty() {
				return nil
			}
			return ctx.Err()
		}
	}
}

// wake returns the channel that the next Notify closes.
func (s *Signal) wake() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
		s.waiting.Store(true)
	}
	return s.ch
}
