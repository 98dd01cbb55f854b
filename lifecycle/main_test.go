package lifecycle_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

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
// clock: drain 2s, stop deadline D0+6s, teardown deadline D0+9s.
func testConfig() lifecycle.Config {
	return lifecycle.Config{
		GracePeriod:     10 * time.Second,
		DrainDelay:      2 * time.Second,
		TeardownReserve: 3 * time.Second,
		Margin:          time.Second,
	}
}

// newObserved returns a logger that records every entry at debug and above.
func newObserved() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(core), logs
}

// newFake returns a coordinator on a fake clock with an observed logger. The
// drain timer is stopped when the test ends.
func newFake(t *testing.T, cfg lifecycle.Config, opts ...lifecycle.Option) (*lifecycle.Coordinator, *clockwork.FakeClock, *observer.ObservedLogs) {
	t.Helper()
	clk := clockwork.NewFakeClock()
	log, logs := newObserved()
	opts = append([]lifecycle.Option{lifecycle.WithClock(clk), lifecycle.WithLogger(log)}, opts...)
	c, err := lifecycle.New(cfg, opts...)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	t.Cleanup(c.Close)
	return c, clk, logs
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

// recorder collects the transitions a subscriber sees.
type recorder struct {
	ch chan lifecycle.Transition
}

func subscribe(c *lifecycle.Coordinator) *recorder {
	r := &recorder{ch: make(chan lifecycle.Transition, 16)}
	c.Subscribe(func(tr lifecycle.Transition) { r.ch <- tr })
	return r
}

func (r *recorder) next(t *testing.T) lifecycle.Transition {
	t.Helper()
	return waittest.Recv(t, r.ch, eventTimeout, "a state transition")
}
