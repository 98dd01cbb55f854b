package lifecycle_test

import (
	"context"
	"sync"
	"testing"

	"github.com/drainfx/drainfx/lifecycle"
)

// BeforeStop functions run once, before the stop phase is visible to anyone
// waiting on Stopping, however many callers enter the stop phase at once.
func TestBeforeStopRunsOnceBeforeStopping(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.NoDelay})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		calls int
		early bool // Stopping had closed when the function ran
	)
	c.BeforeStop(func() {
		mu.Lock()
		defer mu.Unlock()
		calls++
		select {
		case <-c.Stopping():
			early = true
		default:
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _ = c.DrainAndWait(context.Background()) })
	}
	wg.Wait()
	c.Finish()
	if calls != 1 || early {
		t.Errorf("BeforeStop ran %d times (want 1); after Stopping closed: %v", calls, early)
	}
}

// A coordinator that finishes without a stop phase still runs them, once.
func TestBeforeStopRunsAtFinish(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	c.BeforeStop(func() { calls++ })
	c.Finish()
	c.Finish()
	if calls != 1 {
		t.Errorf("BeforeStop ran %d times, want 1", calls)
	}
}
