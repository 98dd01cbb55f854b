package lifecycle_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

const ms = time.Millisecond

// adaptiveConfig: the drain lasts at least 2s, ends after 1s without a new
// connection, and lasts at most 5s.
func adaptiveConfig() lifecycle.Config {
	return lifecycle.Config{
		GracePeriod:   30 * s,
		DrainDelay:    2 * s,
		DrainQuiet:    s,
		MaxDrainDelay: 5 * s,
	}
}

// finishReport ends the stop and returns the report.
func finishReport(t *testing.T, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	if err := c.DrainAndWait(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c.Finish()
}

// finishDrain ends the stop and checks the report's drain: why it ended
// and how long it lasted.
func finishDrain(t *testing.T, c *lifecycle.Coordinator, wantBy string, wantLasted time.Duration) {
	t.Helper()
	r := finishReport(t, c)
	if r.DrainEndedBy != wantBy {
		t.Errorf("DrainEndedBy = %q, want %q", r.DrainEndedBy, wantBy)
	}
	if got := r.Phases[0].Actual; got != wantLasted {
		t.Errorf("drain lasted %v, want %v", got, wantLasted)
	}
}

func TestAdaptiveDrainQuietEndsAtDrainDelay(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, adaptiveConfig())
	c.MarkStarted()
	c.NoteAccept(nil) // traffic before D0, more than DrainQuiet before the drain's end
	clk.Advance(time.Second)
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	clk.Advance(2*s - ms)
	if waittest.Closed(c.DrainDone()) {
		t.Fatal("adaptive drain ended before DrainDelay")
	}
	clk.Advance(ms)
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone at DrainDelay")
	finishDrain(t, c, lifecycle.DrainEndedQuiet, 2*s)
}

func TestAdaptiveDrainExtendsWhileAccepting(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, adaptiveConfig())
	c.MarkStarted()
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk, 1, eventTimeout)

	clk.Advance(1500 * ms)
	c.NoteAccept(nil) // D0+1.5s: quiet from D0+2.5s
	clk.Advance(500 * ms)
	waittest.BlockUntil(t, clk, 1, eventTimeout) // the drain went back to sleep at D0+2s
	if waittest.Closed(c.DrainDone()) {
		t.Fatal("drain ended at DrainDelay though a connection arrived 500ms before")
	}
	clk.Advance(200 * ms)
	c.NoteAccept(nil) // D0+2.2s: quiet from D0+3.2s
	clk.Advance(300 * ms)
	waittest.BlockUntil(t, clk, 1, eventTimeout) // woke at D0+2.5s, asleep again
	if waittest.Closed(c.DrainDone()) {
		t.Fatal("drain ended 300ms after a connection")
	}
	clk.Advance(700*ms - ms)
	if waittest.Closed(c.DrainDone()) {
		t.Fatal("drain ended 1ms before DrainQuiet after the last connection")
	}
	clk.Advance(ms)
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone DrainQuiet after the last connection")
	finishDrain(t, c, lifecycle.DrainEndedQuiet, 3200*ms) // last accept at 2.2s + quiet 1s
}

func TestAdaptiveDrainNeverPassesMax(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, adaptiveConfig())
	c.MarkStarted()
	c.BeginDrain("test")
	// A new connection every 500ms, for ever: the proxies never catch up.
	for at := time.Duration(0); at < 5*s; at += 500 * ms {
		waittest.BlockUntil(t, clk, 1, eventTimeout)
		if waittest.Closed(c.DrainDone()) {
			t.Fatalf("drain ended at D0+%v while connections kept coming", at)
		}
		c.NoteAccept(nil)
		clk.Advance(500 * ms)
	}
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone at MaxDrainDelay")
	finishDrain(t, c, lifecycle.DrainEndedMax, 5*s) // MaxDrainDelay
	warn := logs.FilterMessageSnippet("MaxDrainDelay").FilterLevelExact(zapcore.WarnLevel).All()
	if len(warn) != 1 {
		t.Fatalf("want one warning naming MaxDrainDelay; logged: %s", messages(logs))
	}
	if got := warn[0].ContextMap()["endedBy"]; got != lifecycle.DrainEndedMax {
		t.Errorf("warning endedBy = %v", got)
	}
}

func TestAdaptiveDrainOffWithoutRoom(t *testing.T) {
	t.Parallel()
	// DrainQuiet set but MaxDrainDelay = DrainDelay: nothing to adapt.
	cfg := adaptiveConfig()
	cfg.MaxDrainDelay = cfg.DrainDelay
	c, clk, _ := newFake(t, cfg)
	c.MarkStarted() // serving: a service that never served has nothing to drain
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	c.NoteAccept(nil)
	clk.Advance(2 * s)
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone")
	finishDrain(t, c, lifecycle.DrainEndedDelay, 2*s)
}

func TestFixedDrainIgnoresAccepts(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted() // serving: a service that never served has nothing to drain
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk, 1, eventTimeout)
	clk.Advance(2*s - ms)
	c.NoteAccept(nil)
	clk.Advance(ms)
	waittest.Recv(t, c.DrainDone(), eventTimeout, "DrainDone")
	finishDrain(t, c, lifecycle.DrainEndedDelay, 2*s)
}
