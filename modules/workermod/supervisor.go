package workermod

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// When says at which moment of the shutdown a worker's context ends.
type When int

const (
	// AtTeardown ends the worker's context in the teardown phase, after the
	// servers have stopped, in reverse order of registration; the worker is
	// waited for within a deadline of its own: it is a teardown hook
	// ([lifecycle.Coordinator.AtTeardown]).
	// The zero value: for workers the traffic depends on (flushers,
	// refreshers, outboxes).
	AtTeardown When = iota
	// AtDrain ends the worker's context at D0, when the drain begins: for
	// workers that take in new work (a queue consumer stops taking messages
	// while the pod leaves the load balancer). The worker then has until the
	// end of the stop phase (D0 + GracePeriod − TeardownReserve − Margin) to
	// finish what it holds and return.
	AtDrain
)

func (w When) String() string {
	switch w {
	case AtTeardown:
		return "teardown"
	case AtDrain:
		return "drain"
	}
	return fmt.Sprintf("When(%d)", int(w))
}

// Worker is one background goroutine under the supervisor.
type Worker struct {
	// Name identifies the worker in logs, the shutdown report ("worker
	// NAME") and errors: non-empty and unique within the supervisor.
	Name string
	// Run does the work until ctx ends, then returns nil (or ctx's error).
	// Returning nil earlier means the work is done: the worker is not run
	// again. Returning any other error earlier, or panicking, is a failure:
	// the app shuts down with exit code 1, or the worker is restarted after
	// a backoff if [Config.Restart] is set. An error returned after ctx
	// ended (other than ctx's own) is returned by the worker's stop
	// ([Supervisor.Stop], the worker's fx OnStop) and is in the report.
	Run func(ctx context.Context) error
	// Stop says when ctx ends. Default [AtTeardown].
	Stop When
}

// PanicError is the failure of a worker that panicked.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// ErrLeftRunning is matched by the error of a stop that gave up on a worker
// that ignored its context: the worker was counted as cut ("workers" in the
// shutdown report) and left running.
var ErrLeftRunning = errors.New("workermod: worker ignored its context and was left running")

// CutWorkers is the kind under which drain workers still running at the
// stop deadline are counted in the shutdown report.
const CutWorkers lifecycle.CutKind = "workers"

// ErrStarted is returned by [Supervisor.Add] once the supervisor has started.
var ErrStarted = errors.New("workermod: supervisor already started")

// Option configures a [Supervisor].
type Option func(*options)

type options struct {
	log      *zap.Logger
	shutdown func(exitCode int) error
}

// WithLogger sets the logger (default [zap.NewNop]); the supervisor adds
// the field component=workers.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithShutdown sets what a failed worker calls to stop the app with exit
// code 1; under fx it is fx.Shutdowner.Shutdown(fx.ExitCode(code)). Without
// it, a failure is only logged.
func WithShutdown(fn func(exitCode int) error) Option {
	return func(o *options) { o.shutdown = fn }
}

// Supervisor runs background workers, each in a goroutine it owns, and
// stops them on the drain timeline of a [lifecycle.Coordinator]: the
// coordinator itself runs the stops, as a stop participant ("drain
// workers") and one teardown hook per [AtTeardown] worker ("worker NAME").
// The zero value is not usable; call [New].
type Supervisor struct {
	cfg      Config
	c        *lifecycle.Coordinator
	log      *zap.Logger
	shutdown func(exitCode int) error
	onAdd    func(*entry) // under fx: appends the worker's hooks

	drainCtx    context.Context // ends at D0: the parent of AtDrain workers
	drainCancel context.CancelFunc

	mu      sync.Mutex
	entries []*entry
	started bool
}

// The states of an entry.
const (
	entryIdle    int32 = iota // added, not started
	entryRunning              // its goroutine was started
	entryShut                 // stopped before it ever started: it never will
)

type entry struct {
	Worker
	ctx    context.Context
	cancel context.CancelFunc
	state  atomic.Int32  // entryIdle, entryRunning or entryShut
	done   chan struct{} // closed when the worker's goroutine returns
	err    error         // written before done is closed

	// The outcome of the worker's stop, for [Supervisor.Stop] and the
	// worker's fx OnStop: the coordinator runs the stop and keeps only
	// the report.
	stopBegan atomic.Bool
	stopped   chan struct{} // closed once stopErr is written
	stopErr   error
}

func (e *entry) running() bool { return e.state.Load() == entryRunning }

// New returns a supervisor for the workers of the service whose shutdown c
// coordinates. It registers with c the stop participant "drain workers",
// which waits for the [AtDrain] workers in the stop phase. It fails with an
// error matching [ErrConfig] if cfg is invalid.
func New(cfg Config, c *lifecycle.Coordinator, opts ...Option) (*Supervisor, error) {
	if c == nil {
		return nil, configErrorf("coordinator is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Supervisor{cfg: cfg.WithDefaults(), c: c, log: o.log.With(zap.String("component", "workers")),
		shutdown: o.shutdown}
	s.drainCtx, s.drainCancel = context.WithCancel(context.Background())
	// The drain workers' context ends in the transition itself, not in a
	// goroutine watching for it: at D0, not a scheduling delay later. (At
	// once if D0 has passed already.)
	c.OnState(lifecycle.StateDraining, s.drainCancel)
	c.AtStop("drain workers", s.awaitDrainWorkers)
	return s, nil
}

// Add registers w; it starts with [Supervisor.Start] (under fx: in its own
// OnStart hook, appended when Add is called). An [AtTeardown] worker's
// teardown hook ("worker NAME") is registered with the coordinator now:
// the coordinator runs the teardown hooks in reverse order of
// registration, so a worker added in a component's constructor is stopped
// before the teardown hooks of that component's dependencies (pools,
// clients, built and registered before it). Add fails with an error
// matching [ErrConfig] if w is incomplete or its name is taken, and with
// [ErrStarted] once the supervisor has started.
func (s *Supervisor) Add(w Worker) error {
	switch {
	case w.Name == "":
		return configErrorf("worker Name=%q is empty", w.Name)
	case w.Run == nil:
		return configErrorf("worker %q: Run is nil", w.Name)
	case w.Stop != AtTeardown && w.Stop != AtDrain:
		return configErrorf("worker %q: Stop=%v is neither AtTeardown nor AtDrain", w.Name, w.Stop)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return fmt.Errorf("add worker %q: %w", w.Name, ErrStarted)
	}
	if slices.ContainsFunc(s.entries, func(e *entry) bool { return e.Name == w.Name }) {
		return configErrorf("worker Name=%q added twice", w.Name)
	}
	e := &entry{Worker: w, done: make(chan struct{}), stopped: make(chan struct{})}
	parent := context.Background()
	if w.Stop == AtDrain {
		parent = s.drainCtx
	}
	e.ctx, e.cancel = context.WithCancel(parent)
	if w.Stop == AtTeardown {
		s.c.AtTeardown("worker "+w.Name, e.stop)
	}
	s.entries = append(s.entries, e)
	if s.onAdd != nil {
		s.onAdd(e)
	}
	return nil
}

// Start starts every worker added and closes the supervisor to new ones.
// It never blocks: each worker runs in a goroutine the supervisor owns.
// Under fx the module starts each worker in its own hook instead.
func (s *Supervisor) Start(context.Context) error {
	for _, e := range s.markStarted() {
		s.startEntry(e)
	}
	return nil
}

// Stop asks the coordinator for the stop ([lifecycle.Coordinator.Stop]:
// it begins the drain if nothing has) and waits until the shutdown is
// over. The coordinator waits for the [AtDrain] workers (their context
// ended at D0) until the end of the stop phase, then stops the
// [AtTeardown] workers in the teardown phase, in reverse order of
// registration, each within its own deadline. A worker that ignores its
// context is counted as cut, logged and left running; the rest are still
// stopped. Stop returns what the workers' stops returned: their errors,
// and errors matching [ErrLeftRunning] (a drain worker) or
// [lifecycle.ErrHookOverran] (a teardown worker) for those left running.
//
// Stop stops the whole service that the coordinator coordinates, not only
// the workers: call it where the service shuts down. Under fx each
// worker's OnStop does the same and returns that worker's outcome.
func (s *Supervisor) Stop(ctx context.Context) error {
	if err := s.c.Stop(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	entries := slices.Clone(s.entries)
	s.mu.Unlock()
	var errs []error
	for _, e := range entries {
		if e.Stop == AtDrain {
			errs = append(errs, s.stopResult(ctx, e))
		}
	}
	for _, e := range slices.Backward(entries) {
		if e.Stop == AtTeardown {
			errs = append(errs, s.stopResult(ctx, e))
		}
	}
	return errors.Join(errs...)
}

func (s *Supervisor) markStarted() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	return slices.Clone(s.entries)
}

func (s *Supervisor) startEntry(e *entry) {
	if e.state.CompareAndSwap(entryIdle, entryRunning) {
		s.log.Info("worker started", zap.String("worker", e.Name), zap.Stringer("stop", e.Stop))
		go s.run(e)
	}
}

// stopEntry is the fx OnStop of one worker: it asks the coordinator for
// the stop, waits for the shutdown to be over, and returns the worker's
// outcome.
func (s *Supervisor) stopEntry(ctx context.Context, e *entry) error {
	if err := s.c.Stop(ctx); err != nil {
		return err
	}
	return s.stopResult(ctx, e)
}

// stopResult returns the outcome of e's stop once the coordinator has
// stopped. The coordinator moves on from a stop that overran as its
// deadline strikes, perhaps a moment before the stop wrote its outcome:
// wait for it, bounded by ctx. A stop the coordinator never began (e was
// added after its stop phase) has no outcome.
func (s *Supervisor) stopResult(ctx context.Context, e *entry) error {
	if !e.stopBegan.Load() {
		return nil
	}
	select {
	case <-e.stopped:
		return e.stopErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// finish records the outcome of e's stop.
func (e *entry) finish(err error) error {
	e.stopErr = err
	close(e.stopped)
	return err
}

// stop is the teardown hook of an [AtTeardown] worker: it ends the
// worker's context and waits for it until ctx ends (the hook's deadline,
// its share of the teardown reserve). A worker that never started returns
// at once, and never will start. A worker still running at the deadline
// is left running: the coordinator counts the hook as overrun ("hooks").
func (e *entry) stop(ctx context.Context) error {
	e.stopBegan.Store(true)
	e.cancel()
	if e.state.CompareAndSwap(entryIdle, entryShut) {
		return e.finish(nil)
	}
	select {
	case <-e.done:
		if e.err != nil {
			return e.finish(fmt.Errorf("worker %q: %w", e.Name, e.err))
		}
		return e.finish(nil)
	case <-ctx.Done():
		// ctx.Err() is wrapped too: the coordinator counts a hook that
		// returns its context's deadline error as overrun.
		return e.finish(fmt.Errorf("worker %q ignored its context: %w (%w)", e.Name, lifecycle.ErrHookOverran, ctx.Err()))
	}
}

// awaitDrainWorkers is the stop participant "drain workers": it waits for
// the started [AtDrain] workers, whose context ended at D0, until ctx ends
// (the stop deadline). Those still running then are counted as cut
// ("workers" in the report), logged and left running. Drain workers that
// never started return at once, and never will start.
func (s *Supervisor) awaitDrainWorkers(ctx context.Context) error {
	s.drainCancel() // already done at D0; harmless
	s.mu.Lock()
	var drain []*entry
	for _, e := range s.entries {
		if e.Stop == AtDrain {
			e.stopBegan.Store(true)
			drain = append(drain, e)
		}
	}
	s.mu.Unlock()

	var errs []error
	var left []string
	for _, e := range drain {
		if e.state.CompareAndSwap(entryIdle, entryShut) {
			e.finish(nil)
			continue
		}
		select {
		case <-e.done:
		case <-ctx.Done():
		}
		select {
		case <-e.done:
			if e.err != nil {
				errs = append(errs, e.finish(fmt.Errorf("worker %q: %w", e.Name, e.err)))
			} else {
				e.finish(nil)
			}
		default:
			left = append(left, e.Name)
			dl, _ := ctx.Deadline()
			s.log.Warn("worker ignored its context: left running",
				zap.String("worker", e.Name), zap.Time("stopDeadline", dl))
			errs = append(errs, e.finish(fmt.Errorf("drain worker %q at the stop deadline: %w", e.Name, ErrLeftRunning)))
		}
	}
	if len(left) > 0 {
		s.c.Telemetry().RecordCut(CutWorkers, int64(len(left)))
	}
	return errors.Join(errs...)
}

// run runs e until its context ends, restarting it after failures if so
// configured.
func (s *Supervisor) run(e *entry) {
	defer close(e.done)
	log := s.log.With(zap.String("worker", e.Name))
	clock := s.c.Clock()
	backoff := s.cfg.RestartBackoff
	for {
		began := clock.Now()
		err := e.call()
		if e.ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				e.err = err
				log.Error("worker failed while stopping", zap.Error(err))
				return
			}
			log.Info("worker stopped")
			return
		}
		if err == nil {
			log.Info("worker finished")
			return
		}
		fields := []zap.Field{zap.Error(err)}
		if pe, ok := errors.AsType[*PanicError](err); ok {
			fields = append(fields, zap.ByteString("stack", pe.Stack))
		}
		if !s.cfg.Restart {
			log.Error("worker failed: shutting down", fields...)
			s.fail()
			return
		}
		if clock.Now().Sub(began) >= s.cfg.MaxRestartBackoff {
			backoff = s.cfg.RestartBackoff
		}
		log.Error("worker failed: restarting", append(fields, zap.Duration("backoff", backoff))...)
		if !sleep(clock, backoff, e.ctx.Done()) {
			log.Info("worker stopped")
			return
		}
		backoff = min(2*backoff, s.cfg.MaxRestartBackoff)
	}
}

// sleep waits d on clock; false if done closed first.
func sleep(clock lifecycle.Clock, d time.Duration, done <-chan struct{}) bool {
	fired := make(chan struct{})
	stop := clock.AfterFunc(d, func() { close(fired) })
	select {
	case <-fired:
		return true
	case <-done:
		stop()
		return false
	}
}

func (e *entry) call() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return e.Run(e.ctx)
}

func (s *Supervisor) fail() {
	if s.shutdown == nil {
		return
	}
	if err := s.shutdown(1); err != nil {
		s.log.Error("shutdown request", zap.Error(err))
	}
}

// Running returns the names of the workers whose goroutine has not returned.
func (s *Supervisor) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var names []string
	for _, e := range s.entries {
		if !e.running() {
			continue
		}
		select {
		case <-e.done:
		default:
			names = append(names, e.Name)
		}
	}
	return names
}
