package lifecycle_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// eventTimeout bounds every wait on an event; it is a safety net against a
// hung test, never the thing a test measures.
const eventTimeout = 5 * time.Second

// testConfig is a budget that fits and keeps its round numbers under the fake
// clock: a fixed drain of 2s, stop deadline D0+6s, teardown deadline D0+9s.
func testConfig() lifecycle.Config {
	return lifecycle.Config{
		GracePeriod:     10 * time.Second,
		DrainDelay:      2 * time.Second,
		DrainQuiet:      lifecycle.None,
		TeardownReserve: 3 * time.Second,
		Margin:          time.Second,
	}
}

// newObserved returns a logger that records every entry at debug and above.
func newObserved() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// newFake returns a coordinator on a fake clock with an observed logger.
// When the test ends, the coordinator is stopped at once (Stop with an
// ended context), so no goroutine of it outlives the test.
func newFake(t *testing.T, cfg lifecycle.Config, opts ...lifecycle.Option) (*lifecycle.Coordinator, clocktest.Clock, *observer.ObservedLogs) {
	t.Helper()
	clk := clocktest.New()
	log, logs := newObserved()
	opts = append([]lifecycle.Option{lifecycle.WithClock(clk), lifecycle.WithLogger(log)}, opts...)
	c, err := lifecycle.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(func() { stopNow(t, c) })
	return c, clk, logs
}

// stopNow ends the timeline at once: Stop with an ended context cuts the
// drain short and hurries through the phases; it then waits for the
// report (on the real clock, the deadlines of the fake one having no
// meaning here).
func stopNow(t *testing.T, c *lifecycle.Coordinator) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Stop(ctx)
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), eventTimeout, "the report after an abandoned stop")
}

// stopAndReport asks for the stop, advances the fake clock by step until the
// report is out, and returns it.
func stopAndReport(t *testing.T, c *lifecycle.Coordinator, clk clocktest.Clock) lifecycle.Report {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Stop(context.Background()) }()
	waittest.Recv(t, c.Reached(lifecycle.StateStopping), eventTimeout, "the stop phase")
	if err := waittest.Recv(t, done, eventTimeout, "Stop to return"); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	r := c.Telemetry().Report()
	ok := r.State == lifecycle.StateStopped
	if !ok {
		t.Fatal("no report after Stop")
	}
	return r
}

// waitLog waits until an entry whose message contains snippet was logged.
func waitLog(t *testing.T, logs *observer.ObservedLogs, snippet string) observer.LoggedEntry {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		if got := logs.FilterMessageSnippet(snippet).All(); len(got) > 0 {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log entry containing %q; logged: %v", snippet, messages(logs))
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

func messages(logs *observer.ObservedLogs) string {
	var b strings.Builder
	for _, e := range logs.All() {
		b.WriteString("\n  " + e.Level.String() + " " + e.Message)
	}
	return b.String()
}

// recorder collects the states the coordinator moves through, from
// OnState callbacks registered for every state after the current one.
type recorder struct {
	ch chan lifecycle.State
}

func record(c *lifecycle.Coordinator) *recorder {
	r := &recorder{ch: make(chan lifecycle.State, 16)}
	for s := c.State() + 1; s <= lifecycle.StateStopped; s++ {
		c.OnState(s, func() { r.ch <- s })
	}
	return r
}

func (r *recorder) next(t *testing.T) lifecycle.State {
	t.Helper()
	return waittest.Recv(t, r.ch, eventTimeout, "a state transition")
}
