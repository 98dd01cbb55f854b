package probemod

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/clockctx"
	"github.com/drainfx/drainfx/internal/confcheck"
	"github.com/drainfx/drainfx/internal/idle"
	"github.com/drainfx/drainfx/lifecycle"
)

// Check is one readiness check: /readyz fails while it fails.
//
// The error a check returns goes whole to the log ("check failed"), so it
// must not carry secrets: wrap driver errors that may quote a DSN, or pass
// URLs through [RedactURL]. Probe output, which anyone who reaches the
// admin port can read, shows only "reason withheld" for it — a dependency's
// error names hosts, ports, users and databases — unless the check gives a
// fixed reason of its own with [WithReason].
type Check struct {
	// Name is shown in ?verbose output ("[+]db ok"): non-empty, no spaces,
	// unique among the checks.
	Name string
	// Check reports the dependency's health. It must return when ctx ends;
	// one that does not is left running (at most one run per check at a
	// time) and reported as timed out on every probe until it returns.
	Check func(ctx context.Context) error
	// Timeout bounds one run. Default ([Config.CheckTimeout]) when zero.
	Timeout time.Duration
	// CacheTTL is how long a result is reused. Default ([Config.CacheTTL])
	// when zero; [NoCache] for none.
	CacheTTL time.Duration
	// FailureThreshold is how many consecutive failed runs fail /readyz once
	// the check has passed. Default ([Config.FailureThreshold]) when zero.
	FailureThreshold int
}

// CheckStats is what one readiness check has done so far: the seam for
// metrics, read on a scrape ([Probes.CheckStats]).
type CheckStats struct {
	// Name is the check's name.
	Name string `json:"name"`
	// Runs counts the runs that concluded: returned, or timed out (a run
	// that hangs past its timeout counts once per probe that finds it
	// still running once its result has expired, as /readyz does).
	Runs int64 `json:"runs"`
	// Failures counts the runs among them that failed, below the
	// FailureThreshold or not.
	Failures int64 `json:"failures"`
	// Passing is what /readyz shows for the check now (the threshold
	// applied); false before the first run.
	Passing bool `json:"passing"`
	// LastDuration is how long the last concluded run took, or had taken
	// when it timed out.
	LastDuration time.Duration `json:"lastDuration"`
}

func (k *checker) snapshot() CheckStats {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.stats
	st.Name = k.Name
	return st
}

// ErrClosed is the result of a check after [Probes.Close]: no new run starts.
var ErrClosed = errors.New("probemod: closed")

// ReasonWithheld is what probe output shows for a failed check whose error
// carries no reason of its own ([WithReason]), as the Kubernetes apiserver's
// own health checks do: the error itself goes to the log.
const ReasonWithheld = "reason withheld"

// WithReason returns err with reason, a short fixed text that probe output
// shows for it ("[-]db failed: ping failed"); the log still gets err
// whole. The reason must not depend on the error's details: it is written
// to anyone who reaches the admin port.
func WithReason(err error, reason string) error {
	if err == nil {
		return nil
	}
	return &reasonError{err: err, reason: reason}
}

// reasonError is an error with the text probe output shows for it.
type reasonError struct {
	err    error
	reason string
}

func (e *reasonError) Error() string { return e.err.Error() }
func (e *reasonError) Unwrap() error { return e.err }

// shown wraps one of probemod's own errors, whose text tells nothing of a
// dependency, so that probe output shows it whole.
func shown(err error) error { return WithReason(err, err.Error()) }

// publicReason is what probe output shows for a failed check.
func publicReason(err error) string {
	if r, ok := errors.AsType[*reasonError](err); ok {
		return r.reason
	}
	return ReasonWithheld
}

func validateChecks(cfg Config, checks []Check) ([]Check, error) {
	seen := make(map[string]bool, len(checks))
	out := make([]Check, 0, len(checks))
	for i, ck := range checks {
		if err := validName(ck.Name); err != nil {
			return nil, configErrorf("check %d: Name=%q %v", i, ck.Name, err)
		}
		if seen[ck.Name] {
			return nil, configErrorf("check Name=%q registered twice", ck.Name)
		}
		seen[ck.Name] = true
		if ck.Check == nil {
			return nil, configErrorf("check %q: Check is nil", ck.Name)
		}
		var bad confcheck.Problems
		bad.Negative("Timeout", ck.Timeout)
		bad.Negative("CacheTTL", ck.CacheTTL)
		bad.NegativeInt("FailureThreshold", int64(ck.FailureThreshold))
		if len(bad) > 0 {
			return nil, configErrorf("check %q: %s", ck.Name, bad[0]) // only the first: each check here returns at once
		}
		if ck.Timeout == 0 {
			ck.Timeout = cfg.CheckTimeout
		}
		if ck.CacheTTL == 0 {
			ck.CacheTTL = cfg.CacheTTL
		}
		if ck.FailureThreshold == 0 {
			ck.FailureThreshold = cfg.FailureThreshold
		}
		out = append(out, ck)
	}
	return out, nil
}

func validName(name string) error {
	if name == "" {
		return errors.New("is empty")
	}
	for _, r := range name {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return errors.New("has a space or control character")
		}
	}
	return nil
}

// outcome is a check's result as /readyz reports it, reused until expires.
type outcome struct {
	err     error // nil: passing (a failure under the threshold passes)
	expires time.Time
}

// call is one run of a check in flight; concurrent probes share it.
type call struct {
	done      chan struct{} // closed when the check function has returned
	start     time.Time
	deadline  time.Time
	concluded bool // an outcome was recorded for this run; guarded by checker.mu
}

// checker runs one Check with its timeout, cache and failure threshold. At
// most one run of a check is in flight at a time: its goroutine belongs to
// the checker (counted in runs) and Probes.Close waits for it.
type checker struct {
	Check
	clock lifecycle.Clock
	log   *zap.Logger
	runs  *tracker
	base  context.Context // cancelled by Probes.Close

	last atomic.Pointer[outcome]

	mu     sync.Mutex
	call   *call // the run in flight
	fails  int   // consecutive failed runs
	passed bool  // passed at least once
	stats  CheckStats
}

// fresh returns the cached outcome if it has not expired at now.
func (k *checker) fresh(now time.Time) (*outcome, bool) {
	o := k.last.Load()
	if o != nil && now.Before(o.expires) {
		return o, true
	}
	return nil, false
}

// begin returns the run to wait for, starting one if none is in flight, or
// an outcome if there is nothing to wait for.
func (k *checker) begin(now time.Time) (*call, *outcome) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if o, ok := k.fresh(now); ok {
		return nil, o
	}
	if c := k.call; c != nil {
		if now.Before(c.deadline) {
			return c, nil
		}
		// The run in flight is past its deadline and its outcome has
		// expired: the check still hangs, which counts as one more failure.
		return nil, k.recordLocked(c, now, shown(fmt.Errorf("timed out after %v, still running", k.Timeout)))
	}
	if !k.runs.add() {
		return nil, &outcome{err: shown(ErrClosed)}
	}
	c := &call{done: make(chan struct{}), start: now, deadline: now.Add(k.Timeout)}
	k.call = c
	go k.run(c)
	return c, nil
}

func (k *checker) run(c *call) {
	defer k.runs.done()
	ctx, cancel := clockctx.Until(k.base, k.clock, c.deadline)
	err := k.safeCall(ctx)
	select {
	case <-ctx.Done():
		// Past the deadline, a nil or a bare deadline error is a timeout.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && (err == nil || errors.Is(err, context.DeadlineExceeded)) {
			err = k.timeoutError()
		}
	default:
	}
	cancel()
	now := k.clock.Now()
	k.mu.Lock()
	k.call = nil
	if !c.concluded {
		c.concluded = true
		k.recordLocked(c, now, err)
	}
	k.mu.Unlock()
	close(c.done)
}

func (k *checker) safeCall(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			k.log.Error("check panicked", zap.String("check", k.Name), zap.Any("panic", r), zap.StackSkip("stack", 2))
			err = WithReason(fmt.Errorf("panicked: %v", r), "panicked") // the value may hold anything
		}
	}()
	return k.Check.Check(ctx)
}

func (k *checker) timeoutError() error { return shown(fmt.Errorf("timed out after %v", k.Timeout)) }

// wait waits for c until its deadline or until ctx (the probe's request)
// ends, and returns the check's error (nil if passing).
func (k *checker) wait(ctx context.Context, c *call) error {
	if d := c.deadline.Sub(k.clock.Now()); d > 0 {
		expired := make(chan struct{})
		stop := k.clock.AfterFunc(d, func() { close(expired) })
		defer stop()
		select {
		case <-c.done:
			return k.last.Load().err
		case <-ctx.Done():
			return shown(fmt.Errorf("probe ended: %w", ctx.Err()))
		case <-expired:
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if !c.concluded {
		c.concluded = true
		k.recordLocked(c, k.clock.Now(), k.timeoutError())
	}
	return k.last.Load().err
}

// recordLocked records the result of the run c (err nil: passed) and
// returns the outcome /readyz shows until now+CacheTTL. It logs when the
// check starts or stops failing /readyz.
func (k *checker) recordLocked(c *call, now time.Time, err error) *outcome {
	k.stats.Runs++
	k.stats.LastDuration = now.Sub(c.start)
	if err != nil {
		k.stats.Failures++
	}
	if err == nil {
		k.fails, k.passed = 0, true
	} else {
		k.fails++
	}
	var shown error
	if err != nil && (!k.passed || k.fails >= k.FailureThreshold) {
		shown = err
	}
	prev := k.last.Load()
	o := &outcome{err: shown, expires: now.Add(k.CacheTTL)}
	k.last.Store(o)
	k.stats.Passing = shown == nil
	wasFailing := prev != nil && prev.err != nil
	switch {
	case shown != nil && !wasFailing:
		k.log.Warn("check failed", zap.String("check", k.Name), zap.Error(shown), zap.Int("consecutive", k.fails))
	case shown == nil && wasFailing:
		k.log.Info("check recovered", zap.String("check", k.Name))
	}
	return o
}

// tracker counts owned goroutines (or requests) and lets Close wait for
// them with a context, without a goroutine of its own.
type tracker struct {
	ended idle.Signal // notified when n went down to 0

	mu     sync.Mutex
	n      int
	closed bool
}

// add counts one more; false once closed.
func (t *tracker) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.n++
	return true
}

func (t *tracker) done() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n--
	if t.n == 0 {
		t.ended.Notify()
	}
}

// running returns how many are running.
func (t *tracker) running() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n
}

// close refuses new work and waits for what is running, until ctx ends;
// then it returns ctx.Err() and how many are still running. It may be
// called again to wait longer.
func (t *tracker) close(ctx context.Context) (int, error) {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	if err := t.ended.Wait(ctx, func() bool { return t.running() == 0 }); err != nil {
		return t.running(), err
	}
	return 0, nil
}

// RedactURL returns raw with the password of its userinfo replaced by
// "xxxxx" ([url.URL.Redacted]), for check errors that quote a DSN such as
// postgres://user:secret@db:5432/app. A raw string that does not parse as
// a URL is replaced whole, since its parse error would quote it.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// oneLine keeps an error on one line of ?verbose output.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}
