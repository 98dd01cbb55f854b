package lifecycle

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/clockctx"
)

// Option configures [New].
type Option func(*options)

type options struct {
	log      *zap.Logger
	clock    Clock
	exit     func(code int) // the second signal's exit (tests replace os.Exit)
	shutdown func() error   // how to ask the app to stop (fx.Shutdowner)
}

// WithLogger sets the logger (default [zap.NewNop]).
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithClock sets the clock the timeline runs on (default: the real clock).
func WithClock(clk Clock) Option {
	return func(o *options) {
		if clk != nil {
			o.clock = clk
		}
	}
}

// withShutdown sets how the coordinator asks the app to stop when no one
// else will: after the first signal's drain, and when nothing asked for the
// stop within GracePeriod of D0 ([ReasonNoStop]). Under fx the lifecycle
// module passes [go.uber.org/fx.Shutdowner.Shutdown]. Without it the
// coordinator runs the stop and teardown itself all the same.
func withShutdown(shutdown func() error) Option {
	return func(o *options) { o.shutdown = shutdown }
}

// participant is a stop participant or a teardown hook.
type participant struct {
	name string
	fn   func(context.Context) error
}

// events are the coordinator's named one-shot signals: each channel is
// closed once, when its moment comes, and never again.
type events struct {
	reached       [numStates]chan struct{} // the state is reached (Reached)
	stopRequested chan struct{}            // the stop phase was asked for (Stop, a signal's drain, ReasonNoStop)
	aborted       chan struct{}            // Stop's ctx ended: the drain is cut short
}

// Coordinator runs the shutdown timeline of one service: D0 → draining →
// drained → stopping → tearing down → stopped (the report), on one
// goroutine of its own (see the package documentation). Modules take part
// by registering stop participants ([Coordinator.AtStop]) and teardown
// hooks ([Coordinator.AtTeardown]); observers wait on [Coordinator.Reached].
// It is safe for concurrent use. The zero value is not usable; call [New].
//
// Lock rule: mu guards every field below it, and orders the transitions (a
// transition's callbacks run, and its channel closes, under mu, before the
// next one begins). Methods whose names end in Locked need it held;
// nothing calls out of the package (a participant, a callback, the logger
// aside) with it held but the OnState callbacks, which must not call the
// coordinator. The estimator and Telemetry have a lock each of their own,
// taken after mu, never before it.
type Coordinator struct {
	plan      Plan
	log       *zap.Logger
	clock     Clock
	exit      func(code int) // the second signal's exit (tests replace os.Exit)
	shutdown  func() error   // how to ask the app to stop (fx.Shutdowner); nil: nobody to ask
	telemetry *Telemetry
	est       *estimator // the adaptive drain: fed by the sampler, asked by the driver
	ev        events
	state     atomic.Int32
	wg        sync.WaitGroup // the driver, the sampler and the signal handler
	prestop   atomic.Bool    // a preStop call has asked for the drain ([ReasonPrestop])
	sigint    atomic.Bool    // SIGINT began the drain: a terminal, not a kubelet; the drain is DrainDelay at most
	nextStop  atomic.Pointer[Reason]

	mu        sync.Mutex
	signals   bool // the signal handler has started
	onState   [numStates][]func()
	stoppers  []participant
	teardowns []participant
	d0        time.Time // the drain began; zero before
	// stopBase is where the stop phase's and the teardown's deadlines
	// count from: D0 + DrainEnd (the drain's latest end), or, when the
	// coordinator stops by itself ([ReasonNoStop]), the moment it does, so
	// that the stop phase and teardown get their whole shares from then.
	stopBase   time.Time
	stopCtx    context.Context // the first Stop's ctx; nil until the stop is asked for
	stopReason Reason
	unwatchCtx func() bool // stops watching stopCtx for the abort
	// The real SIGKILL, when it comes before D0 + GracePeriod
	// (ShortenGrace), and when it became known; moved is closed and
	// replaced each time it moves, to wake the drain.
	kill, killLearned time.Time
	moved             chan struct{}
}

// New returns a coordinator for the budget in cfg, in [StateStarting].
// It fails with an error matching [ErrBudget] if the budget does not fit.
func New(cfg Config, opts ...Option) (*Coordinator, error) {
	plan, err := NewPlan(cfg)
	if err != nil {
		return nil, err
	}
	o := options{log: zap.NewNop(), clock: clockctx.Real{}, exit: os.Exit}
	for _, opt := range opts {
		opt(&o)
	}
	c := &Coordinator{
		plan:     plan,
		log:      o.log,
		clock:    o.clock,
		exit:     o.exit,
		shutdown: o.shutdown,
		ev:       events{stopRequested: make(chan struct{}), aborted: make(chan struct{})},
		moved:    make(chan struct{}),
	}
	for i := range c.ev.reached {
		c.ev.reached[i] = make(chan struct{})
	}
	close(c.ev.reached[StateStarting])
	c.est = newEstimator(c.clock, plan)
	c.telemetry = newTelemetry(c.clock, plan, c.State, c.est)
	return c, nil
}

// Plan returns the resolved budget.
func (c *Coordinator) Plan() Plan { return c.plan }

// Clock returns the clock the timeline runs on, for participants that
// time something on it.
func (c *Coordinator) Clock() Clock { return c.clock }

// Telemetry returns what the shutdown measures: gauges, cuts, arrivals, the
// report.
func (c *Coordinator) Telemetry() *Telemetry { return c.telemetry }

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
	return c.ev.reached[s]
}

// OnState registers fn to run in the transition into state s, before
// [Coordinator.Reached] for s closes and before the next transition: for a
// switch that must happen at the same instant, not a scheduling delay
// later (gRPC health NOT_SERVING at D0; keep-alives off when the stop phase
// begins, before any stop participant ends a stream). fn runs with the
// coordinator's lock held: it must be quick and must not call the
// coordinator. If s has been reached already, fn runs at once.
func (c *Coordinator) OnState(s State, fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State() >= s {
		fn()
		return
	}
	c.onState[s] = append(c.onState[s], fn)
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
// returns early leaves its time to the next). Register in a constructor:
// under fx the constructors run in dependency order, so the teardown runs
// in reverse dependency order, whatever the order of the modules in
// fx.New. A hook that overruns its share is cut, counted and reported,
// left running, and the next one still gets its share.
func (c *Coordinator) AtTeardown(name string, fn func(ctx context.Context) error) {
	c.mu.Lock()
	c.teardowns = append(c.teardowns, participant{name, fn})
	c.mu.Unlock()
}

// MarkStarted moves Starting → Serving: /startupz and /readyz may pass.
// Under fx, [AppOptions] calls it once every OnStart hook has run; without
// fx, call it once the service is up. It logs the plan (the budget's
// deadlines, resolved). From now until D0 the coordinator
// samples the arrival counters ([Telemetry.TrackArrivals]). Unless
// [Config.IgnoreSignals] is set, the coordinator handles SIGTERM, SIGINT
// and SIGHUP from now until the report is out — even if a preStop call
// began the drain first — or, under fx, from the lifecycle module's
// OnStart, so that a signal during the start begins the drain instead of
// killing the process (see "Signals" in the package documentation).
func (c *Coordinator) MarkStarted() {
	c.mu.Lock()
	c.handleSignalsLocked() // even if a preStop call began the drain first: SIGTERM follows it
	c.mu.Unlock()
	c.enter(StateServing, "started", func(now time.Time) {
		c.log.Info("shutdown plan", zap.Object("plan", planLog(c.plan)))
		c.telemetry.markServed()
		if n, ok := c.telemetry.arrivals(); ok {
			c.est.sample(sample{now, n})
			c.wg.Add(1)
			go c.sample()
		}
	})
}

// BeginDrain records D0 and begins the drain, once; later calls do nothing
// and return false. reason says what began it: [ReasonPrestop],
// [ReasonShutdowner], or the caller's own. [ReasonPrestop] also tells the
// coordinator that a preStop hook waits for the drain's end, whoever began
// it: a signal before that end means the kubelet gave up on the hook (see
// "Signals" in the package documentation).
func (c *Coordinator) BeginDrain(reason Reason) bool {
	if reason == ReasonPrestop {
		c.prestop.Store(true) // before the drain begins: a signal after it knows
	}
	return c.enter(StateDraining, string(reason), func(now time.Time) {
		c.d0 = now
		c.stopBase = now.Add(c.plan.DrainEnd)
		c.telemetry.markD0(now, reason)
		n, _ := c.telemetry.arrivals()
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
	if r := c.nextStop.Load(); r != nil {
		reason = *r // a signal or a Shutdowner call that fx turned into this Stop
	}
	c.requestStop(ctx, reason)
	select {
	case <-c.ev.reached[StateStopped]:
		c.wg.Wait()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// expectStop records why the next Stop comes, if nothing has said so yet:
// fx turns a signal that app.Run caught, and a Shutdowner call, into
// OnStop hooks that call Stop without a reason.
func (c *Coordinator) expectStop(reason Reason) { c.nextStop.CompareAndSwap(nil, &reason) }

// requestStop begins the drain (with reason, if none has begun) and asks
// for the stop phase, once: the stop reason is set here and nowhere else,
// and the first ctx bounds the timeline.
func (c *Coordinator) requestStop(ctx context.Context, reason Reason) {
	c.BeginDrain(reason)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopCtx != nil {
		return
	}
	c.stopCtx, c.stopReason = ctx, reason
	c.unwatchCtx = context.AfterFunc(ctx, func() { close(c.ev.aborted) })
	close(c.ev.stopRequested)
}

// enter moves the state forward to `to`: under mu, it runs apply, then the
// OnState callbacks, then closes Reached(to); it returns false (and does
// nothing) if the state is there or past it.
func (c *Coordinator) enter(to State, why string, apply func(now time.Time)) bool {
	if c.State() >= to {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	from := c.State()
	if from >= to {
		return false
	}
	now := c.clock.Now()
	// The state moves before anything else: a goroutine woken by this
	// transition must see it (a probe woken at D0 must not find the
	// service still ready).
	c.state.Store(int32(to))
	c.telemetry.markPhase(to, now)
	c.log.Info("state changed", zap.Stringer("from", from), zap.Stringer("to", to), zap.String("reason", why))
	if apply != nil {
		apply(now)
	}
	fns := c.onState[to]
	c.onState[to] = nil
	for _, fn := range fns {
		fn()
	}
	close(c.ev.reached[to])
	return true
}

// sample runs from MarkStarted to D0: it samples the arrival counters
// every sampleEvery into the traffic window.
func (c *Coordinator) sample() {
	defer c.wg.Done()
	for clockctx.SleepUntil(c.clock, c.clock.Now().Add(sampleEvery), c.ev.reached[StateDraining]) {
		n, _ := c.telemetry.arrivals()
		c.est.sample(sample{c.clock.Now(), n})
	}
}
