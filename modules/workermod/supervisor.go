package workermod

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// When says at which moment of the shutdown a worker's context ends.
type When int

const (
	// AtTeardown ends the worker's context in the teardown phase, after the
	// servers have stopped, in reverse order of registration; the worker is
	// waited for within a deadline of its own ([lifecycle.Coordinator.StopHook]).
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
	// ended (other than ctx's own) is returned by the worker's stop hook.
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

// ErrStarted is returned by [Supervisor.Add] once the supervisor has started.
var ErrStarted = errors.New("workermod: supervisor already started")

// Option configures a [Supervisor].
type Option func(*Supervisor)

// WithLogger sets the logger (default [zap.NewNop]); the supervisor adds
// the field component=workers.
func WithLogger(l *zap.Logger) Option {
	return func(s *Supervisor) {
		if l != nil {
			s.log = l
		}
	}
}

// WithShutdown sets what a failed worker calls to stop the app with exit
// code 1; under fx it is fx.Shutdowner.Shutdown(fx.ExitCode(code)). Without
// it, a failure is only logged.
func WithShutdown(fn func(exitCode int) error) Option {
	return func(s *Supervisor) { s.shutdown = fn }
}

// Supervisor runs background workers, each in a goroutine it owns, and
// stops them on the drain timeline of a [lifecycle.Coordinator]. The zero
// value is not usable; call [New].
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

	waitMu      sync.Mutex // held while the drain workers are waited for
	drainWaited bool       // guarded by waitMu
}

type entry struct {
	Worker
	ctx      context.Context
	cancel   context.CancelFunc
	started  atomic.Bool
	done     chan struct{} // closed when the worker's goroutine returns
	err      error         // written before done is closed
	stopHook func(context.Context) error
}

// New returns a supervisor for the workers of the service whose shutdown c
// coordinates. It fails with an error matching [ErrConfig] if cfg is
// invalid.
func New(cfg Config, c *lifecycle.Coordinator, opts ...Option) (*Supervisor, error) {
	if c == nil {
		return nil, configErrorf("coordinator is nil")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Supervisor{cfg: cfg.WithDefaults(), c: c, log: zap.NewNop()}
	for _, o := range opts {
		o(s)
	}
	s.log = s.log.With(zap.String("component", "workers"))
	s.drainCtx, s.drainCancel = context.WithCancel(context.Background())
	// The drain workers' context ends in the transition itself, not in a
	// goroutine watching for it: at D0, not a scheduling delay later.
	c.Subscribe(func(tr lifecycle.Transition) {
		if tr.To >= lifecycle.StateDraining {
			s.drainCancel()
		}
	})
	if c.Draining() {
		s.drainCancel()
	}
	return s, nil
}

// Add registers w; it starts with [Supervisor.Start] (under fx: in its own
// OnStart hook, appended when Add is called, so a worker added in a
// component's constructor starts after that component's dependencies and
// stops before them). Add fails with an error matching [ErrConfig] if w is
// incomplete or its name is taken, and with [ErrStarted] once the
// supervisor has started.
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
	e := &entry{Worker: w, done: make(chan struct{})}
	parent := context.Background()
	if w.Stop == AtDrain {
		parent = s.drainCtx
	}
	e.ctx, e.cancel = context.WithCancel(parent)
	if w.Stop == AtTeardown {
		// Wrapped now, not when it runs: the count of registered stop
		// hooks sizes each one's share of the teardown reserve.
		e.stopHook = s.c.StopHook("worker "+w.Name, e.stop)
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

// Stop stops the workers: first it waits for the [AtDrain] workers (their
// context ended at D0; Stop begins the drain if nothing has) until the end
// of the stop phase, then stops the [AtTeardown] workers in reverse order of
// registration, each within its own deadline. A worker that ignores its
// context is counted as cut, logged and left running; the rest are still
// stopped. Under fx the module stops each worker in its own hook instead.
func (s *Supervisor) Stop(ctx context.Context) error {
	errs := []error{s.awaitDrainWorkers(ctx)}
	s.mu.Lock()
	entries := slices.Clone(s.entries)
	s.mu.Unlock()
	for _, e := range slices.Backward(entries) {
		if e.Stop == AtTeardown && e.started.Load() {
			errs = append(errs, e.stopHook(ctx))
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
	if e.started.CompareAndSwap(false, true) {
		s.log.Info("worker started", zap.String("worker", e.Name), zap.Stringer("stop", e.Stop))
		go s.run(e)
	}
}

// stopEntry is the fx OnStop of one worker: the drain workers are waited
// for first (a consumer may feed a teardown worker), then a teardown
// worker is stopped within its own deadline.
func (s *Supervisor) stopEntry(ctx context.Context, e *entry) error {
	err := s.awaitDrainWorkers(ctx)
	if e.Stop == AtTeardown {
		err = errors.Join(err, e.stopHook(ctx))
	}
	return err
}

// stop ends a teardown worker's context and waits for it until ctx ends
// (the deadline [lifecycle.Coordinator.StopHook] gives it).
func (e *entry) stop(ctx context.Context) error {
	e.cancel()
	select {
	case <-e.done:
		if e.err != nil {
			return fmt.Errorf("worker %q: %w", e.Name, e.err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// awaitDrainWorkers begins the drain if nothing has, and waits for the
// started AtDrain workers until the stop deadline or until ctx ends. Those
// still running then are counted as cut ("workers") and left running. Only
// the first call waits and reports; later calls return nil.
func (s *Supervisor) awaitDrainWorkers(ctx context.Context) error {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	if s.drainWaited {
		return nil
	}
	s.drainWaited = true
	s.c.BeginDrain("app stopping")
	s.drainCancel() // already done by the transition; harmless

	s.mu.Lock()
	var drain []*entry
	for _, e := range s.entries {
		if e.Stop == AtDrain && e.started.Load() {
			drain = append(drain, e)
		}
	}
	s.mu.Unlock()
	if len(drain) == 0 {
		return nil
	}

	deadline := s.c.StopDeadline()
	sctx, cancel := s.c.StopPhaseContext(ctx) // ends at deadline, or with ctx
	defer cancel()
	var errs []error
	var left []string
	for _, e := range drain {
		select {
		case <-e.done:
		default:
			select {
			case <-e.done:
			case <-sctx.Done():
			}
		}
		select {
		case <-e.done:
			if e.err != nil {
				errs = append(errs, fmt.Errorf("worker %q: %w", e.Name, e.err))
			}
		default:
			left = append(left, e.Name)
			s.log.Warn("worker ignored its context: left running",
				zap.String("worker", e.Name), zap.Time("stopDeadline", deadline))
		}
	}
	if len(left) > 0 {
		s.c.RecordCut("workers", int64(len(left)))
		errs = append(errs, fmt.Errorf("drain workers %q at the stop deadline: %w", left, ErrLeftRunning))
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
		if clock.Since(began) >= s.cfg.MaxRestartBackoff {
			backoff = s.cfg.RestartBackoff
		}
		log.Error("worker failed: restarting", append(fields, zap.Duration("backoff", backoff))...)
		t := clock.NewTimer(backoff)
		select {
		case <-t.Chan():
		case <-e.ctx.Done():
			t.Stop()
			log.Info("worker stopped")
			return
		}
		backoff = min(2*backoff, s.cfg.MaxRestartBackoff)
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
		if !e.started.Load() {
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
