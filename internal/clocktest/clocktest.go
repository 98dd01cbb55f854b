// Package clocktest adapts a [clockwork.FakeClock] to [lifecycle.Clock], so
// that tests drive the drain timeline on a fake clock: a 30 s drain takes
// no time, and a test waits for the coordinator's timers with
// [clockwork.FakeClock.BlockUntilContext] before it advances the clock.
package clocktest

import (
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/drainfx/drainfx/lifecycle"
)

// Clock is a fake clock usable as a [lifecycle.Clock]; the embedded
// FakeClock advances it.
type Clock struct {
	*clockwork.FakeClock
}

var _ lifecycle.Clock = Clock{}

// New returns a fake clock at an arbitrary fixed time.
func New() Clock { return Clock{clockwork.NewFakeClock()} }

// NewAt returns a fake clock at t.
func NewAt(t time.Time) Clock { return Clock{clockwork.NewFakeClockAt(t)} }

// AfterFunc implements [lifecycle.Clock].
func (c Clock) AfterFunc(d time.Duration, f func()) func() bool {
	return c.FakeClock.AfterFunc(d, f).Stop
}
