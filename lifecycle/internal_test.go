package lifecycle

import (
	"errors"
	"math"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestExitCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give os.Signal
		want int
	}{
		{syscall.SIGTERM, 143},
		{syscall.SIGINT, 130},
		{os.Interrupt, 130},
		{fakeSignal{}, 1},
	}
	for _, tt := range tests {
		if got := exitCode(tt.give); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.give, got, tt.want)
		}
	}
}

type fakeSignal struct{}

func (fakeSignal) String() string { return "fake" }
func (fakeSignal) Signal()        {}

func TestReportErr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give Report
		want string // empty: nil
	}{
		{name: "clean", give: Report{Cut: map[string]int64{}}},
		{name: "cut", give: Report{Cut: map[string]int64{"requests": 2}, ExitCode: 1}, want: "lifecycle: shutdown was not clean: cut map[requests:2]"},
	}
	for _, tt := range tests {
		err := tt.give.err()
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: err() = %v", tt.name, err)
			}
			continue
		}
		if err == nil || err.Error() != tt.want || !errors.Is(err, ErrUnclean) {
			t.Errorf("%s: err() = %v, want %q matching ErrUnclean", tt.name, err, tt.want)
		}
	}
}

func TestBudgetErrorIs(t *testing.T) {
	t.Parallel()
	err := &budgetError{"x"}
	if !errors.Is(err, ErrBudget) || errors.Is(err, ErrUnclean) {
		t.Errorf("budgetError matches the wrong sentinels")
	}
	if err.Error() != "lifecycle: x" {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestSumDurations(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give   []time.Duration
		want   time.Duration
		wantOK bool
	}{
		{nil, 0, true},
		{[]time.Duration{time.Second, 2 * time.Second}, 3 * time.Second, true},
		{[]time.Duration{math.MaxInt64, 0}, math.MaxInt64, true},
		{[]time.Duration{math.MaxInt64, 1}, 0, false},
		{[]time.Duration{math.MaxInt64 / 2, math.MaxInt64/2 + 2}, 0, false},
	}
	for _, tt := range tests {
		got, ok := sumDurations(tt.give...)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("sumDurations(%v) = %v, %v; want %v, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}

// The drain timer's goroutine is owned: Close waits for it, and a drain
// begun after Close starts none.
func TestCloseWaitsForTheDrainTimer(t *testing.T) {
	t.Parallel()
	c, err := New(Config{GracePeriod: time.Minute, DrainDelay: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.MarkStarted() // serving: a service that never served has nothing to drain
	c.BeginDrain("test")
	c.Close()
	c.mu.Lock()
	ended, by := c.drainEnded, c.drainEndedBy
	c.mu.Unlock()
	if !ended || by != DrainEndedAbort {
		t.Errorf("after Close: drain ended %v by %q", ended, by)
	}
	c.wg.Wait() // returns at once: nothing is left
}
