package wsmod

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/internal/clockctx"
	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/lifecycle"
)

func TestPlanCloses(t *testing.T) {
	const wt = time.Second // WriteTimeout
	tests := []struct {
		name           string
		n, rate        int
		room           time.Duration
		wantWindow     time.Duration
		wantCompressed bool
		wantSlack      time.Duration // how far the window may slip: to WriteTimeout before the deadline
	}{
		{name: "1,000 at the default rate", n: 1000, rate: DefaultCloseRate, room: 5 * time.Second, wantWindow: time.Second, wantSlack: 3 * time.Second},
		{name: "2,000 fill half of the default CloseTimeout less WriteTimeout", n: 2000, rate: DefaultCloseRate, room: 5 * time.Second, wantWindow: 2 * time.Second, wantSlack: 2 * time.Second},
		{name: "5,000 compressed into that half", n: 5000, rate: DefaultCloseRate, room: 5 * time.Second, wantWindow: 2 * time.Second, wantCompressed: true, wantSlack: 2 * time.Second},
		{name: "a long close deadline", n: 1000, rate: DefaultCloseRate, room: 30 * time.Second, wantWindow: time.Second, wantSlack: 28 * time.Second},
		{name: "short stop phase keeps half for the handshakes", n: 1000, rate: DefaultCloseRate, room: 300 * time.Millisecond, wantWindow: 75 * time.Millisecond, wantCompressed: true, wantSlack: 75 * time.Millisecond},
		{name: "no room", n: 10, rate: DefaultCloseRate, room: 0, wantWindow: 0, wantCompressed: true},
		{name: "all at once", n: 1000, rate: AllAtOnce, room: 5 * time.Second},
		{name: "no session", n: 0, rate: DefaultCloseRate, room: 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planCloses(tt.n, tt.rate, tt.room, wt)
			if p.window != tt.wantWindow || p.compressed != tt.wantCompressed || p.slack != tt.wantSlack {
				t.Errorf("window %v compressed %v slack %v, want %v %v %v", p.window, p.compressed, p.slack, tt.wantWindow, tt.wantCompressed, tt.wantSlack)
			}
			// Every offset lies in the window: the first at its start, the
			// last before its end.
			if tt.n > 0 {
				if first, last := p.offset(0, 0), p.offset(tt.n-1, 0.999999); first != 0 || last >= max(p.window, 1) {
					t.Errorf("offsets %v to %v, want within [0, %v)", first, last, p.window)
				}
			}
		})
	}
}

// scheduleFixture is a registry on a fake clock with n fake WebSocket
// sessions whose handlers return as soon as the registry ends them (as one
// whose peer answered the close frame at once); its schedule waits by
// advancing the clock and records when it ends each session.
type scheduleFixture struct {
	r      *Registry
	clk    clocktest.Clock
	socks  []*fakeSocket
	logs   *observer.ObservedLogs
	mu     sync.Mutex
	closes []time.Time
}

func newScheduleFixture(t *testing.T, cfg Config, n int) *scheduleFixture {
	t.Helper()
	f := &scheduleFixture{clk: clocktest.New()}
	c, err := lifecycle.New(lifecycle.Config{IgnoreSignals: true}, lifecycle.WithClock(f.clk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopCoordinator(t, c) })
	core, logs := observer.New(zapcore.InfoLevel)
	f.logs = logs
	if f.r, err = New(cfg, c, WithLogger(zap.New(core))); err != nil {
		t.Fatal(err)
	}
	f.r.wait = func(ctx context.Context, at time.Time) bool {
		if d := at.Sub(f.clk.Now()); d > earlyBy {
			f.clk.Advance(d)
		}
		return ctx.Err() == nil
	}
	f.r.onClose = func(at time.Time) {
		f.mu.Lock()
		f.closes = append(f.closes, at)
		f.mu.Unlock()
	}
	for range n {
		var once sync.Once
		var s *session
		s = f.r.newSession(KindWebSocket, func() { once.Do(func() { f.r.remove(s, outcomeClean) }) })
		sock := &fakeSocket{}
		s.sock = sock
		f.socks = append(f.socks, sock)
		f.r.add(s)
	}
	return f
}

// stop runs the registry's stop participant with a stop deadline
// untilDeadline from now, and returns when it began.
func (f *scheduleFixture) stop(t *testing.T, untilDeadline time.Duration) time.Time {
	t.Helper()
	start := f.clk.Now()
	ctx, cancel := clockctx.Until(context.Background(), f.clk, start.Add(untilDeadline))
	defer cancel()
	if err := f.r.closeAll(ctx); err != nil {
		t.Fatal(err)
	}
	return start
}

// spanLimit is the most sessions the schedule may end within any 100 ms at
// rate: one per slot (1/rate long) that a span of 100 ms meets, the span
// lengthened by what may be ended early (earlyBy) and extra.
func spanLimit(rate int, extra time.Duration) int {
	span := 100*time.Millisecond + earlyBy + extra
	return int(math.Ceil(span.Seconds()*float64(rate))) + 1
}

// maxWithin is the most times (sorted) within any span of length w.
func maxWithin(times []time.Time, w time.Duration) int {
	n, lo := 0, 0
	for hi, at := range times {
		for at.Sub(times[lo]) >= w {
			lo++
		}
		n = max(n, hi-lo+1)
	}
	return n
}

// checkAllClean checks that every session got its close frame once and
// ended cleanly, none forced, and that the schedule ended the last one
// before the end of the window.
func (f *scheduleFixture) checkAllClean(t *testing.T, start time.Time, windowEnd time.Duration) {
	t.Helper()
	for i, sock := range f.socks {
		if !equalInts(sock.closes, []int{CloseGoingAway}) || sock.closed {
			t.Fatalf("session %d: close frames %v, network closed %v; want one 1001, not closed", i, sock.closes, sock.closed)
		}
	}
	st := f.r.Stats().WebSocket
	if st.Clean != int64(len(f.socks)) || st.Forced != 0 || st.Active != 0 {
		t.Errorf("stats %+v, want %d clean, none forced", st, len(f.socks))
	}
	if len(f.closes) != len(f.socks) {
		t.Fatalf("the schedule ended %d sessions, want %d", len(f.closes), len(f.socks))
	}
	if last := f.closes[len(f.closes)-1]; last.Sub(start) >= windowEnd {
		t.Errorf("last session ended %v into the stop phase, want before %v", last.Sub(start), windowEnd)
	}
}

// 1,000 sessions at the default rate are ended over 1 s: never more than
// 102 (100, plus the slot boundaries and the millisecond the schedule may
// end a session early) in any 100 ms, all before the window's end, all
// cleanly. Ended all at once, as before the close rate existed, all 1,000
// fall in one 100 ms.
func TestCloseSpreadBoundsTheRate(t *testing.T) {
	const n = 1000
	f := newScheduleFixture(t, Config{}, n)
	start := f.stop(t, 25*time.Second)

	f.checkAllClean(t, start, time.Second)
	limit := spanLimit(DefaultCloseRate, 0) // 102
	if got := maxWithin(f.closes, 100*time.Millisecond); got > limit {
		t.Errorf("%d sessions ended within 100 ms, want at most %d", got, limit)
	}
	// Spread over the whole window, not bunched at its start.
	if span := f.closes[n-1].Sub(f.closes[0]); span < 990*time.Millisecond {
		t.Errorf("sessions ended over %v, want about 1s", span)
	}
	entries := f.logs.FilterMessage("closing sessions").All()
	if len(entries) != 1 || entries[0].ContextMap()["window"] != time.Second || entries[0].ContextMap()["sessions"] != int64(n) {
		t.Errorf("plan log %v, want one line: %d sessions over 1s", entries, n)
	}
	// The end line says over what window the sessions were ended, and the
	// most in any 100 ms, as the schedule counted them.
	closed := f.logs.FilterMessage("sessions closed").All()
	if len(closed) != 1 || closed[0].ContextMap()["window"].(time.Duration) < 990*time.Millisecond ||
		closed[0].ContextMap()["peakPer100ms"] != int64(maxWithin(f.closes, 100*time.Millisecond)) {
		t.Errorf("end log %v, want one line with the window the sessions were ended over and the peak, %d",
			closed, maxWithin(f.closes, 100*time.Millisecond))
	}
}

// A stop phase too short for the rate: the window is compressed to fit,
// with half of the 300 ms to the stop deadline kept for the handshakes and
// half of the rest for the schedule to slip into (75 ms); every session
// still ends cleanly before the deadline, and one warning says so.
func TestCloseSpreadCompressedToFit(t *testing.T) {
	const n = 1000
	f := newScheduleFixture(t, Config{}, n)
	start := f.stop(t, 300*time.Millisecond)

	f.checkAllClean(t, start, 75*time.Millisecond)
	if span := f.closes[n-1].Sub(f.closes[0]); span < 70*time.Millisecond {
		t.Errorf("sessions ended over %v, want about the compressed window, 75ms", span)
	}
	if now := f.clk.Now(); now.Sub(start) >= 300*time.Millisecond {
		t.Errorf("the stop participant returned %v into the stop phase, at or after the deadline", now.Sub(start))
	}
	warn := f.logs.FilterMessageSnippet("compressed window").All()
	if len(warn) != 1 || warn[0].Level != zapcore.WarnLevel {
		t.Fatalf("logs %v, want one warning of the compressed window", f.logs.All())
	}
	if m := warn[0].ContextMap(); m["window"] != 75*time.Millisecond || m["wanted"] != time.Second {
		t.Errorf("warning fields %v, want window 75ms, wanted 1s", m)
	}
	if f.logs.FilterMessage("closing sessions").Len() != 0 {
		t.Error("both the info line and the warning: want one line")
	}
}

// AllAtOnce ends every session when the stop phase begins, as before.
func TestCloseAllAtOnce(t *testing.T) {
	f := newScheduleFixture(t, Config{CloseRate: AllAtOnce}, 100)
	start := f.stop(t, 25*time.Second)
	f.checkAllClean(t, start, time.Nanosecond)
	if !slices.ContainsFunc(f.closes, func(at time.Time) bool { return at.Equal(start) }) {
		t.Errorf("closes %v, want all at the start %v", f.closes, start)
	}
}

// If the stop is cut short while the window runs, the rest are ended at
// once, then forced.
func TestCloseSpreadCutShort(t *testing.T) {
	const n = 1000
	f := newScheduleFixture(t, Config{}, n)
	ctx, cancel := context.WithCancel(context.Background())
	waits := 0
	f.r.wait = func(ctx context.Context, at time.Time) bool {
		if waits++; waits == 10 {
			cancel() // the stop cut short, a few sessions in
		}
		if d := at.Sub(f.clk.Now()); d > earlyBy {
			f.clk.Advance(d)
		}
		return ctx.Err() == nil
	}
	start := f.clk.Now()
	if err := f.r.closeAll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(f.closes) != n {
		t.Fatalf("%d sessions ended, want %d", len(f.closes), n)
	}
	if last := f.closes[n-1]; last.Sub(start) >= 100*time.Millisecond {
		t.Errorf("the rest ended %v into the stop phase, want at once after the cut", last.Sub(start))
	}
	for i, sock := range f.socks {
		if !equalInts(sock.closes, []int{CloseGoingAway}) {
			t.Fatalf("session %d: close frames %v, want one 1001", i, sock.closes)
		}
	}
}

// A schedule that finds itself late — the process not run for 200 ms, as
// under a CPU quota's throttling — does not end the overdue sessions in a
// burst: the rest of the window slips by 200 ms, and the rate stays
// bounded.
func TestCloseSpreadSlipsAfterAStall(t *testing.T) {
	const n = 1000
	f := newScheduleFixture(t, Config{}, n)
	waits := 0
	f.r.wait = func(ctx context.Context, at time.Time) bool {
		if d := at.Sub(f.clk.Now()); d > earlyBy {
			f.clk.Advance(d)
		}
		if waits++; waits == n/2 {
			f.clk.Advance(200 * time.Millisecond) // the stall
		}
		return ctx.Err() == nil
	}
	start := f.stop(t, 25*time.Second)

	f.checkAllClean(t, start, 1202*time.Millisecond)
	// What is at most 5 ms overdue is caught up, and the session the stall
	// held is ended late: 108.
	limit := spanLimit(DefaultCloseRate, catchUp) + 1
	if got := maxWithin(f.closes, 100*time.Millisecond); got > limit {
		t.Errorf("%d sessions ended within 100 ms, want at most %d: a burst after the stall", got, limit)
	}
}

// A timer that always fires 3 ms late, as on a busy node, is caught up:
// the window ends on time instead of stretching by 3 ms a wake-up.
func TestCloseSpreadCatchesUpLateTimers(t *testing.T) {
	const n = 1000
	f := newScheduleFixture(t, Config{}, n)
	f.r.wait = func(ctx context.Context, at time.Time) bool {
		if d := at.Sub(f.clk.Now()); d > earlyBy {
			f.clk.Advance(d + 3*time.Millisecond)
		}
		return ctx.Err() == nil
	}
	start := f.stop(t, 25*time.Second)

	f.checkAllClean(t, start, 1004*time.Millisecond)
	limit := spanLimit(DefaultCloseRate, catchUp) // 107
	if got := maxWithin(f.closes, 100*time.Millisecond); got > limit {
		t.Errorf("%d sessions ended within 100 ms, want at most %d", got, limit)
	}
}
