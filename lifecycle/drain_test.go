package lifecycle_test

import (
	"context"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/clocktest"
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

// finishReport asks for the stop once the drain is over and returns the
// report.
func finishReport(t *testing.T, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "the drain's end")
	if err := c.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r := c.Telemetry().Report()
	return r
}

// finishDrain ends the stop and checks the report's drain: why it ended
// and how long it lasted.
func finishDrain(t *testing.T, c *lifecycle.Coordinator, wantBy lifecycle.DrainEnd, wantLasted time.Duration) {
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
	c.Telemetry().NoteNewConnection(nil) // traffic before D0, more than DrainQuiet before the drain's end
	clk.Advance(time.Second)
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2*s - ms)
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatal("adaptive drain ended before DrainDelay")
	}
	clk.Advance(ms)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone at DrainDelay")
	finishDrain(t, c, lifecycle.DrainEndedQuiet, 2*s)
}

func TestAdaptiveDrainExtendsWhileAccepting(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, adaptiveConfig())
	c.MarkStarted()
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)

	clk.Advance(1500 * ms)
	c.Telemetry().NoteNewConnection(nil) // D0+1.5s: quiet from D0+2.5s
	clk.Advance(500 * ms)
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout) // the drain went back to sleep at D0+2s
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatal("drain ended at DrainDelay though a connection arrived 500ms before")
	}
	clk.Advance(200 * ms)
	c.Telemetry().NoteNewConnection(nil) // D0+2.2s: quiet from D0+3.2s
	clk.Advance(300 * ms)
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout) // woke at D0+2.5s, asleep again
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatal("drain ended 300ms after a connection")
	}
	clk.Advance(700*ms - ms)
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatal("drain ended 1ms before DrainQuiet after the last connection")
	}
	clk.Advance(ms)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone DrainQuiet after the last connection")
	finishDrain(t, c, lifecycle.DrainEndedQuiet, 3200*ms) // last accept at 2.2s + quiet 1s
}

func TestAdaptiveDrainNeverPassesMax(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, adaptiveConfig())
	c.MarkStarted()
	c.BeginDrain("test")
	// A new connection every 500ms, for ever: the proxies never catch up.
	for at := time.Duration(0); at < 5*s; at += 500 * ms {
		waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
		if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
			t.Fatalf("drain ended at D0+%v while connections kept coming", at)
		}
		c.Telemetry().NoteNewConnection(nil)
		clk.Advance(500 * ms)
	}
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone at MaxDrainDelay")
	finishDrain(t, c, lifecycle.DrainEndedMax, 5*s) // MaxDrainDelay
	warn := logs.FilterMessageSnippet("MaxDrainDelay").FilterLevelExact(zapcore.WarnLevel).All()
	if len(warn) != 1 {
		t.Fatalf("want one warning naming MaxDrainDelay; logged: %s", messages(logs))
	}
	if got := warn[0].ContextMap()["endedBy"]; got != string(lifecycle.DrainEndedMax) {
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
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	c.Telemetry().NoteNewConnection(nil)
	clk.Advance(2 * s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone")
	finishDrain(t, c, lifecycle.DrainEndedDelay, 2*s)
}

func TestFixedDrainIgnoresAccepts(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, testConfig())
	c.MarkStarted() // serving: a service that never served has nothing to drain
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2*s - ms)
	c.Telemetry().NoteNewConnection(nil)
	clk.Advance(ms)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone")
	finishDrain(t, c, lifecycle.DrainEndedDelay, 2*s)
}

// trafficConfig: the adaptive drain with room to adapt (up to 30s).
func trafficConfig() lifecycle.Config {
	return lifecycle.Config{
		GracePeriod:   60 * s,
		DrainDelay:    2 * s,
		DrainQuiet:    s,
		MaxDrainDelay: 30 * s,
	}
}

// serveTraffic marks c started and plays a minute of traffic through an
// arrival counter: perSecond[i] arrivals in second i, each second sampled
// by the coordinator's sampler on the fake clock.
func serveTraffic(t *testing.T, c *lifecycle.Coordinator, clk clocktest.Clock, perSecond []int64) {
	t.Helper()
	var n atomic.Int64
	c.Telemetry().TrackArrivals(n.Load)
	c.MarkStarted()
	for _, k := range perSecond {
		waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout) // the sampler waits for its next sample
		n.Add(k)
		clk.Advance(s)
	}
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout) // the last sample is in
}

// A pod whose traffic was sparse (one request every 2 s) waits ln(1000)/0.5
// ≈ 13.8s without a new connection, not DrainQuiet: a proxy still sending at
// that rate leaves no such gap with probability 99.9 %.
func TestAdaptiveDrainSparseTrafficWaitsLonger(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, trafficConfig())
	pattern := make([]int64, 60)
	for i := range pattern {
		pattern[i] = int64(1 - i%2)
	}
	serveTraffic(t, c, clk, pattern)
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	wantQuiet := time.Duration(2 * math.Log(1000) * float64(s))

	// A connection at D0+3s (the proxy still sends): the drain may end no
	// sooner than D0+3s+quiet.
	clk.Advance(3 * s)
	c.Telemetry().NoteNewConnection(&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 4000})
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(wantQuiet - ms)
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatalf("drain ended before the quiet period %v for sparse traffic", wantQuiet)
	}
	clk.Advance(ms)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone after the quiet period")
	r := finishReport(t, c)
	if r.DrainEndedBy != lifecycle.DrainEndedQuiet {
		t.Errorf("DrainEndedBy = %q, want quiet", r.DrainEndedBy)
	}
	d := r.Drain
	if math.Abs(d.PerSecond-0.5) > 1e-9 || d.Window != 60*s || d.WindowArrivals != 30 {
		t.Errorf("rate %+v, want 0.5/s over 60s, 30 arrivals", d)
	}
	if diff := d.Quiet - wantQuiet; diff < -time.Microsecond || diff > time.Microsecond {
		t.Errorf("quiet %v, want %v", d.Quiet, wantQuiet)
	}
	if d.Arrivals != 1 || d.LastArrival != 3*s {
		t.Errorf("arrivals %d, last at D0+%v; want 1 at D0+3s", d.Arrivals, d.LastArrival)
	}
	if len(d.LateRemotes) != 0 {
		t.Errorf("late remotes %v: the one arrival came at D0+3s, not in the last quarter", d.LateRemotes)
	}
	if e := waitLog(t, logs, "draining for at most"); e.ContextMap()["quiet"] == nil {
		t.Errorf("the quiet period is not logged: %v", e.ContextMap())
	}
}

// A busy pod keeps DrainQuiet: ln(1000)/20 ≈ 0.35s is below it.
func TestAdaptiveDrainBusyTrafficKeepsDrainQuiet(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, trafficConfig())
	serveTraffic(t, c, clk, repeatCount(20, 60))
	// While serving, the snapshot shows what a drain beginning now would
	// judge by (metrics export it).
	if d := c.Telemetry().Report().Drain; d.PerSecond != 20 || d.Quiet != s {
		t.Errorf("snapshot before D0: rate %v, quiet %v; want 20/s, 1s", d.PerSecond, d.Quiet)
	}
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone at DrainDelay")
	r := finishReport(t, c)
	if r.DrainEndedBy != lifecycle.DrainEndedQuiet || r.Drain.Quiet != s || r.Drain.PerSecond != 20 {
		t.Errorf("ended by %q, quiet %v, rate %v; want quiet, 1s, 20/s", r.DrainEndedBy, r.Drain.Quiet, r.Drain.PerSecond)
	}
}

// A burst once a minute is a rate of one burst a minute: the quiet period
// runs to MaxDrainDelay, and the drain says it ended there for sparse
// traffic, not because connections kept arriving (INFO, not WARN).
func TestAdaptiveDrainBurstyTrafficRunsToTheMax(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, trafficConfig())
	serveTraffic(t, c, clk, append([]int64{600}, make([]int64, 59)...))
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(29 * s)
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatal("drain ended before MaxDrainDelay for bursty traffic")
	}
	clk.Advance(s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone at MaxDrainDelay")
	r := finishReport(t, c)
	if r.DrainEndedBy != lifecycle.DrainEndedMax || r.Drain.Quiet != 30*s {
		t.Errorf("ended by %q with quiet %v, want max and 30s", r.DrainEndedBy, r.Drain.Quiet)
	}
	if n := logs.FilterLevelExact(zapcore.WarnLevel).Len(); n != 0 {
		t.Errorf("%d warnings, want none: nothing arrived after D0", n)
	}
	waitLog(t, logs, "before this pod's quiet period")
}

// Connections that keep arriving to the end: a WARN naming the setting to
// raise, and the remote addresses of the last quarter of the drain.
func TestAdaptiveDrainMaxWhileArrivingNamesLateRemotes(t *testing.T) {
	t.Parallel()
	c, clk, logs := newFake(t, trafficConfig())
	serveTraffic(t, c, clk, repeatCount(20, 60))
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	for i := range 30 * 2 { // a connection every 500ms, from one of two hops
		clk.Advance(500 * ms)
		c.Telemetry().NoteNewConnection(&net.TCPAddr{IP: net.IPv4(10, 0, 0, byte(1+i%2)), Port: 80})
	}
	// The driver re-arms its timer relative to the clock it reads: let it
	// settle, then move past the max.
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(s)
	waittest.Recv(t, c.Reached(lifecycle.StateDrained), eventTimeout, "DrainDone at MaxDrainDelay")
	r := finishReport(t, c)
	if r.DrainEndedBy != lifecycle.DrainEndedMax || r.Drain.Arrivals < 59 || len(r.Drain.LateRemotes) == 0 {
		t.Errorf("report drain %+v ended by %q; want max, ~60 arrivals, late remotes", r.Drain, r.DrainEndedBy)
	}
	for _, a := range r.Drain.LateRemotes {
		if a != "10.0.0.1:80" && a != "10.0.0.2:80" {
			t.Errorf("late remote %q is not one of the hops", a)
		}
	}
	w := logs.FilterLevelExact(zapcore.WarnLevel).All()
	if len(w) != 1 || !strings.Contains(w[0].Message, "SHUTDOWN_MAX_DRAIN_DELAY") {
		t.Errorf("warnings %v, want one naming SHUTDOWN_MAX_DRAIN_DELAY", w)
	}
}

func repeatCount(k int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = k
	}
	return out
}

// A pod that saw nothing in its window but is sent connections during the
// drain judges its quiet period by the rate since D0: two connections in
// the first 4s (0.5/s) ask for ln(1000)/0.5 ≈ 13.8s without one.
func TestAdaptiveDrainArrivalsAfterAnIdleWindow(t *testing.T) {
	t.Parallel()
	c, clk, _ := newFake(t, trafficConfig())
	serveTraffic(t, c, clk, make([]int64, 60))
	c.BeginDrain("test")
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	c.Telemetry().NoteNewConnection(nil)
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s)
	c.Telemetry().NoteNewConnection(nil) // D0+4s: 2 since D0
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	clk.Advance(2 * s) // D0+6s: past DrainDelay + DrainQuiet of the last one
	waittest.BlockUntil(t, clk.FakeClock, 1, eventTimeout)
	if waittest.Closed(c.Reached(lifecycle.StateDrained)) {
		t.Fatal("the drain ended 1s after a connection, though connections kept coming after an idle window")
	}
	clk.Advance(30 * s)
	r := finishReport(t, c)
	if r.Drain.Quiet < 10*s || r.Drain.Arrivals != 2 {
		t.Errorf("quiet %v, arrivals %d; want the quiet judged by the rate since D0 (≥ 10s), 2", r.Drain.Quiet, r.Drain.Arrivals)
	}
}
