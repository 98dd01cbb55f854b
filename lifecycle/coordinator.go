package lifecycle

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

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

// WithClock sets the clock the timeline runs on (default: the real clock).
func WithClock(clk Clock) Option {
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

// WithShutdown sets how the coordinator asks the app to stop when no one
// else will: after the first signal's drain, and when nothing asked for the
// stop within GracePeriod of D0 ([ReasonNoStop]). Under fx the lifecycle
// module passes [go.uber.org/fx.Shutdowner.Shutdown]. Without it the
// coordinator runs the stop and teardown itself all the same.
func WithShutdown(shutdown func() error) Option {
	return func(c *Coordinator) { c.shutdown = shutdown }
}

// participant is a stop participant or a teardown hook.
type participant struct {
	name string
	fn   func(context.Context) error
}

// Coordinator runs the shutdown timeline of one service: D0 → drain →
// wait → stop → teardown → report, on one goroutine of its own (see the
// package documentation). Modules take part by registering stop
// participants ([Coordinator.AtStop]) and teardown hooks
// ([Coordinator.AtTeardown]); observers wait on [Coordinator.Reached]. It is
// safe for concurrent use. The zero value is not usable; call [New].
type Coordinator struct {
	plan     Plan
	log      *zap.Logger
	clock    Clock
	exit     func(int)
	shutdown func() error
	tel      *Telemetry
	est      *estimator // the adaptive drain: fed by the sampler, asked by the driver

	state   atomic.Int32
	reached [numStates]chan struct{} // closed when the state is reached

	// transMu orders transitions: a transition's callbacks run, and its
	// channel closes, before the next transition begins.
	transMu sync.Mutex

	mu         sync.Mutex
	onState    [numStates][]func()
	stoppers   []participant
	teardowns  []participant
	base       time.Time // the deadlines count from here: D0, or later after ReasonNoStop
	stopReq    chan struct{}
	stopOnce   sync.Once
	stopHint   atomic.Pointer[Reason] // why the next Stop comes, if known (a signal app.Run caught)
	stopCtx    context.Context
	stopReason Reason
	abort      chan struct{} // closed when stopCtx ends: the drain is cut short
	stopAbort  func() bool
	// The real SIGKILL, when it comes before base + GracePeriod
	// (ShortenGrace), and when it became known; moved is closed and
	// replaced each time it moves, to wake the drain.
	kill, killLearned time.Time
	moved             chan struct{}
	// prestopCalled: an authorised preStop call has reached the drain.
	prestopCalled atomic.Bool
	// interrupted: SIGINT began the drain (a terminal, not a kubelet): the
	// drain is a fixed DrainDelay.
	interrupted atomic.Bool
	wg          sync.WaitGroup // the driver and the sampler
}

// New returns a coordinator for the budget in cfg, in [StateStarting].
// It fails with an error matching [ErrBudget] if the budget does not fit.
func New(cfg Config, opts ...Option) (*Coordinator, error) {
	plan, err := NewPlan(cfg)
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		plan:    plan,
		log:     zap.NewNop(),
		clock:   realClock{},
		exit:    os.Exit,
		stopReq: make(chan struct{}),
		abort:   make(chan struct{}),
		moved:   make(chan struct{}),
	}
	for _, o := range opts {
		o(c)
	}
	for i := range c.reached {
		c.reached[i] = make(chan struct{})
	}
	close(c.reached[StateStarting])
	c.est = newEstimator(c.clock, plan)
	c.tel = newTelemetry(c.clock, plan, c.State, c.est)
	return c, nil
}

// Plan returns the resolved budget.
func (c *Coordinator) Plan() Plan { return c.plan }

// Clock returns the clock the timeline runs on (for deadlines on it, see
// [ContextUntil]).
func (c *Coordinator) Clock() Clock { return c.clock }

// Telemetry returns what the shutdown measures: gauges, cuts, arrivals, the
// report.
func (c *Coordinator) Telemetry() *Telemetry { return c.tel }

// State returns the current state. It is one atomic load: draining is
// State() >= StateDraining, ready is State() == StateServing.
func (c *Coordinator) State() State { return State(c.state.Load()) }

// Reached returns a channel closed once the service has reached state s
// (and stays closed after it has moved on). These are the named moments of
// the timeline: Reached(StateDraining) is D0, Reached(StateStopping) the
// stop phase, Reached(StateStopped) the report.
func (c *Coordinator) Reached(s State) <-chan struct{} {
	if s < 0 || s >= numStates {
		s = StateStopped
	}
	return c.reached[s]
}

// OnState registers fn to run in the transition into state s, before
// [Coordinator.Reached] for s closes and before the next transition: for a
// switch that must happen at the same instant, not a scheduling delay
// later (gRPC health NOT_SERVING at D0; keep-alives off when the stop phase
// begins, before any stop participant ends a stream). fn must be quick and
// must not call the coordinator's methods that move it. If s has been
// reached already, fn runs at once.
func (c *Coordinator) OnState(s State, fn func()) {
	c.transMu.Lock()
	defer c.transMu.Unlock()
	if c.State() >= s {
		fn()
		return
	}
	c.mu.Lock()
	c.onState[s] = append(c.onState[s], fn)
	c.mu.Unlock()
}

// AtStop registers a stop participant: a server or a session registry.
// When the stop phase begins, the coordinator calls every participant's fn
// at once, each in its own goroutine, with a context that ends at the stop
// deadline (D0 + GracePeriod − TeardownReserve − Margin): fn stops taking
// work, lets what is in flight finish, cuts and counts what is left when
// ctx ends, and returns. The teardown begins when all have returned. A fn
// still running at the teardown deadline is reported as overrun and left
// behind.
func (c *Coordinator) AtStop(name string, fn func(ctx context.Context) error) {
	c.mu.Lock()
	c.stoppers = append(c.stoppers, participant{name, fn})
	c.mu.Unlock()
}

// AtTeardown registers a teardown hook: a pool, a client, a worker. After
// the stop phase the coordinator runs the hooks one after another, in
// reverse order of registration, each with an equal share of the time left
// until the teardown deadline (D0 + GracePeriod − Margin; at least the
// teardown reserve, more if the stop phase ended early; a hook that
// returns early leaves its time to the next). Register in a constructor: under fx the
// constructors run in dependency order, so the teardown runs in reverse
// dependency order, whatever the order of the modules in fx.New. A hook
// that overruns its share is cut, counted and reported, left running, and
// the next one still gets its share.
func (c *Coordinator) AtTeardown(name string, fn func(ctx context.Context) error) {
	c.mu.Lock()
	c.teardowns = append(c.teardowns, participant{name, fn})
	c.mu.Unlock()
}

// MarkStarted moves Starting → Serving: /startupz and /readyz may pass.
// Under fx, [AppOptions] calls it once every OnStart hook has run; without
// fx, call it once the service is up. From now until D0 the coordinator
// samples the arrival counters ([Telemetry.TrackArrivals]).
func (c *Coordinator) MarkStarted() {
	c.enter(StateServing, "started", func(now time.Time) {
		c.tel.markServed()
		if n, ok := c.tel.arrivals(); ok {
			c.est.sample(sample{now, n})
			c.wg.Add(1)
			go c.sample()
		}
	})
}

// BeginDrain records D0 and begins the drain, once; later calls do nothing
// and return false. reason says what began it: [ReasonPrestop],
// "signal terminated" ([ReasonSignal]), [ReasonShutdowner], or the
// caller's own.
func (c *Coordinator) BeginDrain(reason Reason) bool {
	return c.enter(StateDraining, string(reason), func(now time.Time) {
		c.mu.Lock()
		c.base = now
		c.mu.Unlock()
		c.tel.markD0(now, reason)
		n, _ := c.tel.arrivals()
		c.est.begin(now, n)
		c.wg.Add(1)
		go c.run(now)
	})
}

// Stop asks for the stop phase and waits until the report is out
// (StateStopped). It begins the drain first if nothing has
// ([ReasonAppStopping]); the drain runs its course and the stop phase
// begins after it, so a stop that follows a preStop call, a signal, or
// nothing at all passes through one timeline. If ctx ends first, the drain
// is cut short ([DrainEndedAbort]), the stop participants' deadline comes
// at once, and Stop returns ctx.Err() without waiting for the rest. Every
// fx OnStop hook of drainfx calls it: the order in which fx calls them does
// not matter. Without fx, call it once to shut down.
func (c *Coordinator) Stop(ctx context.Context) error {
	reason := ReasonAppStopping
	if hint := c.stopHint.Load(); hint != nil {
		reason = *hint
	}
	c.requestStop(ctx, reason)
	select {
	case <-c.reached[StateStopped]:
		c.wg.Wait()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requestStop begins the drain (with reason, if none has begun) and asks
// for the stop phase, once; the first ctx bounds the timeline.
func (c *Coordinator) requestStop(ctx context.Context, reason Reason) {
	c.BeginDrain(reason)
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopCtx, c.stopReason = ctx, reason
		c.stopAbort = context.AfterFunc(ctx, func() { close(c.abort) })
		c.mu.Unlock()
		close(c.stopReq)
	})
}

// enter moves the state forward to `to`: it runs apply under the
// transition lock, then the OnState callbacks, then closes Reached(to); it
// returns false (and does nothing) if the state is there or past it.
func (c *Coordinator) enter(to State, why string, apply func(now time.Time)) bool {
	if c.State() >= to {
		return false
	}
	c.transMu.Lock()
	defer c.transMu.Unlock()
	from := c.State()
	if from >= to {
		return false
	}
	now := c.clock.Now()
	// The state moves before anything else: a goroutine woken by this
	// transition must see it (a probe woken at D0 must not find the
	// service still ready).
	c.state.Store(int32(to))
	c.tel.markPhase(to, now)
	c.log.Info("state changed", zap.Stringer("from", from), zap.Stringer("to", to), zap.String("reason", why))
	if apply != nil {
		apply(now)
	}
	c.mu.Lock()
	fns := c.onState[to]
	c.onState[to] = nil
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	close(c.reached[to])
	return true
}

// fromBase is a deadline: base (D0, or later after ReasonNoStop) + d.
func (c *Coordinator) fromBase(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	base := c.base
	if base.IsZero() {
		base = c.clock.Now()
	}
	return base.Add(d)
}

// sample runs from MarkStarted to D0: it samples the arrival counters
// every sampleEvery into the traffic window.
func (c *Coordinator) sample() {
	defer c.wg.Done()
	for sleepUntil(c.clock, c.clock.Now().Add(sampleEvery), c.reached[StateDraining]) {
		n, _ := c.tel.arrivals()
		c.est.sample(sample{c.clock.Now(), n})
	}
}
