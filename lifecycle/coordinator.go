package lifecycle

import (
	"context"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// State is where a service stands in its life. States only move forward.
type State int32

// The states, in order.
const (
	// StateStarting lasts until every OnStart hook has run ([Coordinator.MarkStarted]).
	StateStarting State = iota
	// StateServing is normal operation: ready, keep-alive allowed.
	StateServing
	// StateDraining begins at D0: not ready, Connection: close on every
	// response, everything still served.
	StateDraining
	// StateStopping is the stop phase: listeners closed, in-flight requests
	// finishing, long-lived sessions being closed; then teardown.
	StateStopping
	// StateStopped: the last OnStop hook has run and the report is out.
	StateStopped
)

var stateNames = [...]string{"starting", "serving", "draining", "stopping", "stopped"}

func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Why a drain ended.
const (
	DrainEndedDelay = "delay" // fixed drain: DrainDelay passed
	DrainEndedQuiet = "quiet" // adaptive drain: no new connection for DrainQuiet
	DrainEndedMax   = "max"   // adaptive drain: MaxDrainDelay reached while connections still arrived
	DrainEndedAbort = "abort" // cut short: the stop phase began (DrainAndWait's ctx ended) or the coordinator was closed first
	// DrainEndedNotServing: the drain began before the service was ever
	// serving (a start that failed or was cut short by a signal): nothing
	// was routed here, so there is nothing to drain.
	DrainEndedNotServing = "not serving"
)

// Transition is one state change, as passed to [Coordinator.Subscribe].
type Transition struct {
	From, To State
	At       time.Time
	Reason   string
}

// Option configures a [Coordinator].
type Option func(*Coordinator)

// WithLogger sets the logger (default [zap.NewNop]).
func WithLogger(l *zap.Logger) Option {
	return func(c *Coordinator) {
		if l != nil {
			c.log = l
		}
	}
}

// WithClock sets the clock the drain timeline runs on (default: the real
// clock). Tests pass a [clockwork.FakeClock].
func WithClock(clk clockwork.Clock) Option {
	return func(c *Coordinator) {
		if clk != nil {
			c.clock = clk
		}
	}
}

// WithExit replaces [os.Exit] for the second-signal exit (tests).
func WithExit(exit func(code int)) Option {
	return func(c *Coordinator) {
		if exit != nil {
			c.exit = exit
		}
	}
}

// Coordinator owns the drain timeline of one service: its state, D0, the
// deadlines of each phase, and the shutdown report. It is safe for
// concurrent use. The zero value is not usable; call [New].
type Coordinator struct {
	plan  Plan
	log   *zap.Logger
	clock clockwork.Clock
	exit  func(int)

	state      atomic.Int32
	served     atomic.Bool  // MarkStarted ran: the service was serving at some point
	lastAccept atomic.Int64 // clock time of the last public accept, UnixNano

	traffic  trafficWindow // arrivals before D0, for the adaptive drain's quiet period
	afterD0  arrivalLog    // new connections from D0 on
	sampling sync.WaitGroup

	drainStarted chan struct{} // closed at D0
	drainDone    chan struct{} // closed when the drain phase ends
	stopping     chan struct{} // closed when the stop phase begins
	stopped      chan struct{} // closed at StateStopped
	quit         chan struct{} // closed by Close: abandons the drain timer
	stopCtx      context.Context
	stopCancel   context.CancelFunc
	wg           sync.WaitGroup // the drain timer

	// notifyMu is held by a transition from its state change until every
	// subscriber has seen it, so that subscribers see transitions in
	// order, one at a time. It is taken before mu.
	notifyMu sync.Mutex

	mu           sync.Mutex
	subs         []func(Transition)
	d0           time.Time
	reason       string
	drainEnded   bool
	drainEnd     time.Time
	drainEndedBy string
	stopAt       time.Time
	teardownAt   time.Time // the first wrapped stop hook began
	closed       bool
	gauges       []gauge
	arrivalSrcs  []func() int64
	seen         DrainSeen
	sessionSrcs  []sessionSource
	atD0         map[string]int64
	sessAtD0     map[string]SessionEnds
	atStop       map[string]int64
	cuts         map[string]int64
	hooks        []HookReport
	pendingHooks int
	teardown     teardownQueue // see JoinStop and StopHook

	beforeStop     []func()
	beforeStopOnce sync.Once
	finishers      []func(context.Context) error
	report         *Report

	refused prestopRefusals // see PrestopHandler
}

type gauge struct {
	name string
	read func() int64
}

// New returns a coordinator for the budget in cfg, in [StateStarting].
// It fails with an error matching [ErrBudget] if the budget does not fit.
func New(cfg Config, opts ...Option) (*Coordinator, error) {
	plan, err := NewPlan(cfg)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		plan:         plan,
		log:          zap.NewNop(),
		clock:        clockwork.NewRealClock(),
		exit:         os.Exit,
		drainStarted: make(chan struct{}),
		drainDone:    make(chan struct{}),
		stopping:     make(chan struct{}),
		stopped:      make(chan struct{}),
		quit:         make(chan struct{}),
		cuts:         make(map[string]int64),
	}
	for _, o := range opts {
		o(c)
	}
	c.stopCtx, c.stopCancel = context.WithCancel(context.Background())
	return c, nil
}

// Plan returns the resolved budget.
func (c *Coordinator) Plan() Plan { return c.plan }

// Clock returns the clock the timeline runs on.
func (c *Coordinator) Clock() clockwork.Clock { return c.clock }

// State returns the current state.
func (c *Coordinator) State() State { return State(c.state.Load()) }

// Draining reports whether the drain has begun (the state is Draining or
// later). It is one atomic load, meant for the request hot path.
func (c *Coordinator) Draining() bool { return c.state.Load() >= int32(StateDraining) }

// Ready reports whether the service should be in the load balancer: started
// and not draining. Probes add their dependency checks on top.
func (c *Coordinator) Ready() bool { return c.state.Load() == int32(StateServing) }

// DrainStarted is closed at D0.
func (c *Coordinator) DrainStarted() <-chan struct{} { return c.drainStarted }

// DrainDone is closed when the drain phase ends.
func (c *Coordinator) DrainDone() <-chan struct{} { return c.drainDone }

// Stopping is closed when the stop phase begins: long-lived handlers
// (WebSocket, SSE) end their sessions then.
func (c *Coordinator) Stopping() <-chan struct{} { return c.stopping }

// StopContext is cancelled when the stop phase begins. Long-lived request
// handlers derive from it, since [net/http.Server.Shutdown] does not cancel
// request contexts.
func (c *Coordinator) StopContext() context.Context { return c.stopCtx }

// Stopped is closed once the report is out.
func (c *Coordinator) Stopped() <-chan struct{} { return c.stopped }

// Subscribe calls fn on every later transition, synchronously, in order,
// one call at a time (the transition waits for its subscribers). fn must be
// quick and must not call the methods that move the state (MarkStarted,
// BeginDrain, DrainAndWait, Finish) nor block on their channels.
func (c *Coordinator) Subscribe(fn func(Transition)) {
	c.mu.Lock()
	c.subs = append(c.subs, fn)
	c.mu.Unlock()
}

// TrackInFlight registers a gauge (in-flight requests, open sessions) sampled
// at D0 and at the start of the stop phase for the report, and read by
// [Coordinator.Snapshot] (metrics). Gauges of the same name add up. read is
// called with the coordinator's lock held: it must not call the coordinator.
func (c *Coordinator) TrackInFlight(name string, read func() int64) {
	c.mu.Lock()
	c.gauges = append(c.gauges, gauge{name, read})
	c.mu.Unlock()
}

// AtFinish registers fn to run after the shutdown report, in the lifecycle
// module's OnStop — the last hook fx runs. The admin server (probes,
// preStop, metrics) stops here, so the kubelet's probes and a metrics
// scrape keep working through drain, stop and teardown. Finishers run in
// reverse order of registration.
func (c *Coordinator) AtFinish(fn func(ctx context.Context) error) {
	c.mu.Lock()
	c.finishers = append(c.finishers, fn)
	c.mu.Unlock()
}

// NoteAccept records that a public listener accepted a connection from
// remote (nil if unknown) now. The adaptive drain ends only after its quiet
// period without one. Call it per connection, not per request; admin
// listeners never call it. Before D0 it is one clock read and one atomic
// store.
func (c *Coordinator) NoteAccept(remote net.Addr) {
	now := c.clock.Now()
	c.lastAccept.Store(now.UnixNano())
	if c.Draining() {
		c.afterD0.note(now, remote)
	}
}

// TrackArrivals registers a counter of the work that arrived at a public
// server (requests, session opens, RPCs: it only grows). While serving,
// the coordinator samples the sum of the counters once a second; the rate
// of the last minute before D0 sets the adaptive drain's quiet period (see
// [Config.DrainMissProbability]). read must be cheap and must not call the
// coordinator. The HTTP and gRPC servers call it.
func (c *Coordinator) TrackArrivals(read func() int64) {
	c.mu.Lock()
	c.arrivalSrcs = append(c.arrivalSrcs, read)
	c.mu.Unlock()
}

// arrivals reads the sum of the arrival counters.
func (c *Coordinator) arrivals() (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.arrivalsLocked()
}

func (c *Coordinator) arrivalsLocked() (int64, bool) {
	var n int64
	for _, read := range c.arrivalSrcs {
		n += read()
	}
	return n, len(c.arrivalSrcs) > 0
}

// sample runs from MarkStarted to D0 (or Close): it samples the arrival
// counters every sampleEvery into the traffic window.
func (c *Coordinator) sample() {
	defer c.sampling.Done()
	for {
		// A timer per sample, not a ticker: a sample is taken a period
		// after the last one was stored, and on a fake clock the sampler
		// is seen waiting again only once it has stored its sample.
		t := c.clock.NewTimer(sampleEvery)
		select {
		case <-t.Chan():
			n, _ := c.arrivals()
			c.traffic.add(sample{c.clock.Now(), n})
		case <-c.drainStarted:
			t.Stop()
			return
		case <-c.quit:
			t.Stop()
			return
		}
	}
}

// D0 returns the moment the drain began and why, or the zero time.
func (c *Coordinator) D0() (time.Time, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.d0, c.reason
}

// StopDeadline is the end of the stop phase: D0 + GracePeriod −
// TeardownReserve − Margin. Before D0 it counts from now.
func (c *Coordinator) StopDeadline() time.Time { return c.fromD0(c.plan.StopDeadline) }

// TeardownDeadline is the end of the teardown phase: D0 + GracePeriod − Margin.
// Before D0 it counts from now.
func (c *Coordinator) TeardownDeadline() time.Time { return c.fromD0(c.plan.TeardownDeadline) }

// StopPhaseContext returns a context that ends at [Coordinator.StopDeadline],
// measured on the coordinator's clock, or when ctx ends, whichever comes
// first. A server bounds its graceful stop with it once the drain is over
// ([Coordinator.DrainAndWait]). The deadline is read when StopPhaseContext
// is called: before D0 it counts from now, as StopDeadline does. Call
// cancel when done with the context.
//
// The context follows the coordinator's clock: on a [clockwork.FakeClock]
// it ends when the fake time reaches the deadline, not the wall clock. It
// ends as soon as ctx ends, whatever ctx's error: [clockwork.WithDeadline]
// documents that its fake-clock context ignores a parent that ended with
// [context.DeadlineExceeded], so ctx is tied in explicitly.
func (c *Coordinator) StopPhaseContext(ctx context.Context) (context.Context, context.CancelFunc) {
	// The deadline is a time on the coordinator's clock, so the context
	// must run on that clock: clockwork.WithDeadline is context.WithDeadline
	// for the real clock and follows a fake clock in tests (a fake-clock
	// time given to context.WithDeadline would be measured against the wall
	// clock and be meaningless).
	dctx, cancelDeadline := clockwork.WithDeadline(ctx, c.clock, c.StopDeadline())
	sctx, cancel := context.WithCancel(dctx)
	stopAfter := context.AfterFunc(ctx, cancel)
	return sctx, func() {
		stopAfter()
		cancel()
		cancelDeadline()
	}
}

func (c *Coordinator) fromD0(d time.Duration) time.Time {
	c.mu.Lock()
	d0 := c.d0
	c.mu.Unlock()
	if d0.IsZero() {
		d0 = c.clock.Now()
	}
	return d0.Add(d)
}

// MarkStarted moves Starting → Serving: /startupz and /readyz may pass. The
// bundle in package modules calls it when fx reports that every OnStart hook
// has run; without the bundle, call it after [go.uber.org/fx.App.Start].
func (c *Coordinator) MarkStarted() {
	c.transition(StateServing, "started", func(now time.Time) {
		c.served.Store(true)
		if n, ok := c.arrivalsLocked(); ok && !c.closed {
			c.traffic.add(sample{now, n})
			c.sampling.Add(1)
			go c.sample()
		}
	})
}

// BeginDrain records D0 and begins the drain phase, once; later calls do
// nothing and return false. reason says what started it: [ReasonPrestop],
// "signal terminated" ([ReasonSignal]), [ReasonShutdowner],
// [ReasonAppStopping], or the caller's own.
func (c *Coordinator) BeginDrain(reason string) bool {
	ended := false
	began := c.transition(StateDraining, reason, func(now time.Time) {
		c.d0, c.reason = now, reason
		c.atD0 = c.sampleLocked()
		c.sessAtD0 = c.sampleSessionsLocked()
		close(c.drainStarted)
		if c.closed {
			// Close has waited for the drain timer already: start none.
			ended = c.endDrainLocked(DrainEndedAbort, now)
			return
		}
		c.wg.Add(1)
		go c.runDrain(now)
	})
	if ended {
		c.logDrainEnd(DrainEndedAbort, 0)
	}
	// The sampler has seen D0 (or Close): wait for it, so that the drain
	// timer is the only goroutine of the coordinator left on its clock.
	c.sampling.Wait()
	return began
}

// DrainAndWait begins the drain (if nothing has yet), waits for the drain
// phase to end, and begins the stop phase. It is idempotent: the HTTP
// module's OnStop calls it first, so a plain fx app.Run, fxtest and a preStop
// followed by SIGTERM all pass through one drain. It returns ctx.Err() if ctx
// ends first; the stop phase begins all the same, and the drain is over
// (cut short, [DrainEndedAbort]).
func (c *Coordinator) DrainAndWait(ctx context.Context) error {
	c.BeginDrain(ReasonAppStopping)
	var err error
	select {
	case <-c.drainDone:
	case <-ctx.Done():
		err = ctx.Err()
	}
	reason := "drain over"
	if err != nil {
		reason = "drain cut short: " + err.Error()
	}
	c.runBeforeStop()
	var cut bool
	var took time.Duration
	c.transition(StateStopping, reason, func(now time.Time) {
		if cut = c.endDrainLocked(DrainEndedAbort, now); cut {
			took = now.Sub(c.d0)
		}
		c.stopAt = now
		c.atStop = c.sampleLocked()
		c.closeStoppingLocked()
	})
	if cut {
		c.logDrainEnd(DrainEndedAbort, took)
	}
	return err
}

// BeforeStop registers fn to run once, just before the stop phase begins
// (before [Coordinator.Stopping] closes and before any subscriber hears of
// it). httpmod turns keep-alives off here: a stream that the session
// registry ends at the stop phase then closes its connection, so a client
// that reconnects at once opens a new connection through the proxy
// instead of reusing this one into a pod that refuses it.
func (c *Coordinator) BeforeStop(fn func()) {
	c.mu.Lock()
	c.beforeStop = append(c.beforeStop, fn)
	c.mu.Unlock()
}

// runBeforeStop runs the BeforeStop functions once; concurrent callers wait
// until they have run.
func (c *Coordinator) runBeforeStop() {
	c.beforeStopOnce.Do(func() {
		c.mu.Lock()
		fns := c.beforeStop
		c.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	})
}

// closeStoppingLocked releases what waits for the stop phase, once.
func (c *Coordinator) closeStoppingLocked() {
	select {
	case <-c.stopping:
	default:
		close(c.stopping)
	}
	c.stopCancel()
}

// RecordCut counts n units of work cut at a deadline ("requests",
// "sessions", "hooks"). Any cut makes the shutdown unclean (exit code 1).
func (c *Coordinator) RecordCut(kind string, n int64) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	c.cuts[kind] += n
	c.mu.Unlock()
}

// runDrain ends the drain phase: at D0+DrainDelay for a fixed drain; for the
// adaptive drain at the first moment after that with no accept for
// DrainQuiet, or at D0+MaxDrainDelay.
func (c *Coordinator) runDrain(d0 time.Time) {
	defer c.wg.Done()
	p := c.plan
	if !c.served.Load() {
		// Never serving, never in a load balancer: nothing to drain.
		c.endDrain(DrainEndedNotServing)
		return
	}
	quiet := time.Duration(0)
	var rate TrafficRate
	if p.DrainQuiet > 0 {
		n, _ := c.arrivals()
		rate = c.traffic.freeze(sample{d0, n})
		quiet = quietFor(rate, p.DrainMissProbability, p.DrainQuiet, p.MaxDrainDelay)
		c.mu.Lock()
		c.seen.Rate, c.seen.Quiet = rate, quiet
		c.mu.Unlock()
		c.log.Info("drain quiet period", zap.Object("rate", rate), zap.Duration("quiet", quiet),
			zap.Duration("maxDrainDelay", p.MaxDrainDelay))
	}
	least := d0.Add(p.DrainDelay)
	if p.DrainDelay <= NoDelay {
		least = d0 // "none", also on a fake clock that would tell 1ns apart
	}
	if !c.sleepUntil(least) {
		c.endDrain(DrainEndedAbort)
		return
	}
	by := DrainEndedDelay
	if p.DrainQuiet > 0 && p.MaxDrainDelay > p.DrainDelay {
		most := d0.Add(p.MaxDrainDelay)
		for {
			now := c.clock.Now()
			// Quiet since the last new connection, or since D0: a
			// connection accepted before D0 says nothing of the proxies
			// after it (keep-alive traffic may not open one for minutes).
			last := time.Unix(0, c.lastAccept.Load())
			if last.Before(d0) {
				last = d0
			}
			// No arrival before D0 but some after it: the proxies do
			// send here, at a rate the window did not see (a pod just
			// added, a gap in sparse traffic). Judge the quiet period by
			// the arrivals since D0 instead.
			if rate.Window > 0 && rate.Arrivals == 0 && !rate.Uncertain {
				if n, _, _ := c.afterD0.read(now); n > 0 {
					since := TrafficRate{Window: now.Sub(d0), Arrivals: n, PerSecond: float64(n) / now.Sub(d0).Seconds()}
					if q := quietFor(since, p.DrainMissProbability, p.DrainQuiet, p.MaxDrainDelay); q > quiet {
						quiet = q
						c.mu.Lock()
						c.seen.Quiet = quiet
						c.mu.Unlock()
					}
				}
			}
			quietAt := last.Add(quiet)
			if !now.Before(quietAt) && quietAt.Before(most) {
				by = DrainEndedQuiet
				break
			}
			if !now.Before(most) {
				by = DrainEndedMax
				break
			}
			next := quietAt
			if most.Before(next) {
				next = most
			}
			if !c.sleepUntil(next) {
				c.endDrain(DrainEndedAbort)
				return
			}
		}
	}
	c.endDrain(by)
}

// sleepUntil waits on the coordinator's clock; false if the coordinator was
// closed or the drain ended (the stop phase began) first.
func (c *Coordinator) sleepUntil(t time.Time) bool {
	d := t.Sub(c.clock.Now())
	if d <= 0 {
		return true
	}
	timer := c.clock.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.Chan():
		return true
	case <-c.quit:
		return false
	case <-c.drainDone:
		return false
	}
}

// endDrain ends the drain phase, unless it has ended already.
func (c *Coordinator) endDrain(by string) {
	c.mu.Lock()
	now := c.clock.Now()
	ended := c.endDrainLocked(by, now)
	took := now.Sub(c.d0)
	c.mu.Unlock()
	if ended {
		c.logDrainEnd(by, took)
	}
}

// endDrainLocked ends the drain phase once; false if it had ended already.
func (c *Coordinator) endDrainLocked(by string, now time.Time) bool {
	if c.drainEnded {
		return false
	}
	c.drainEnded = true
	c.drainEnd, c.drainEndedBy = now, by
	if !c.d0.IsZero() {
		// The last quarter of the drain: who was still sending then.
		since := c.d0.Add(now.Sub(c.d0) * 3 / 4)
		n, last, late := c.afterD0.read(since)
		c.seen.Arrivals, c.seen.LateRemotes = n, late
		if !last.IsZero() {
			c.seen.LastArrival = last.Sub(c.d0)
		}
	}
	close(c.drainDone)
	return true
}

func (c *Coordinator) logDrainEnd(by string, took time.Duration) {
	c.mu.Lock()
	seen := c.seen
	c.mu.Unlock()
	fields := []zap.Field{zap.String("endedBy", by), zap.Duration("took", took), zap.Object("seen", seen)}
	// Connections still arriving within DrainQuiet of the end: the proxies
	// had not stopped routing here when the budget ran out.
	stillArriving := seen.Arrivals > 0 && took-seen.LastArrival < max(c.plan.DrainQuiet, sampleEvery)
	switch {
	case by == DrainEndedMax && stillArriving:
		c.log.Warn("drain ended at MaxDrainDelay while connections still arrived: the load balancer had not caught up; "+
			"raise MaxDrainDelay (SHUTDOWN_MAX_DRAIN_DELAY) and the grace period with it", fields...)
	case by == DrainEndedMax:
		c.log.Info("drain ended at MaxDrainDelay before this pod's quiet period (sparse traffic)", fields...)
	default:
		c.log.Info("drain ended", fields...)
	}
}

// transition moves the state forward to `to`, then runs apply under the
// lock and tells the subscribers; it returns false (and does nothing) if
// the state is already there or past it.
func (c *Coordinator) transition(to State, reason string, apply func(now time.Time)) bool {
	if c.State() >= to {
		return false
	}
	c.notifyMu.Lock()
	defer c.notifyMu.Unlock()
	c.mu.Lock()
	from := c.State()
	if from >= to {
		c.mu.Unlock()
		return false
	}
	now := c.clock.Now()
	// The state moves before apply closes the phase's channels, so that a
	// goroutine woken by DrainStarted, Stopping or Stopped sees the new
	// state (a probe woken at D0 must not find the service still ready).
	// Lock-free readers may see it a moment before apply's fields; those
	// fields are read under mu, which apply holds.
	c.state.Store(int32(to))
	if apply != nil {
		apply(now)
	}
	subs := c.subs
	c.mu.Unlock()

	c.log.Info("state changed", zap.Stringer("from", from), zap.Stringer("to", to), zap.String("reason", reason))
	tr := Transition{From: from, To: to, At: now, Reason: reason}
	for _, fn := range subs {
		fn(tr)
	}
	return true
}

func (c *Coordinator) sampleLocked() map[string]int64 {
	m := make(map[string]int64, len(c.gauges))
	for _, g := range c.gauges {
		m[g.name] += g.read() // two servers' "requests" add up
	}
	return m
}

// Close abandons a drain still running and waits for the coordinator's own
// goroutine. [Coordinator.Finish] calls it.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		close(c.quit)
	}
	c.mu.Unlock()
	c.wg.Wait()
	c.sampling.Wait()
}
