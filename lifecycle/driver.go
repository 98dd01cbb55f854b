package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/clockctx"
)

// ErrHookOverran is matched by the error of a stop participant or a
// teardown hook cut at its deadline.
var ErrHookOverran = errors.New("lifecycle: hook overran its deadline")

// run is the timeline, from D0 to the report: the one function that moves
// the coordinator after D0. BeginDrain starts it.
func (c *Coordinator) run(d0 time.Time) {
	defer c.wg.Done()

	// drain: D0 → the drain's end.
	endedBy := c.drain(d0)
	why := "drain over: " + string(endedBy)
	if endedBy == "" {
		why = "drain skipped: never served"
	}
	c.enter(StateDrained, why, func(time.Time) {
		planned := c.deadlinesLocked().drainMax.Sub(d0)
		if c.sigint.Load() { // SIGINT: DrainDelay at most
			planned = min(planned, orNone(c.plan.DrainDelay))
		}
		c.telemetry.setPlanned(StateDraining, planned)
	})

	// wait: until someone asks for the stop (SIGTERM after a preStop call,
	// the app stopping), or, with no one asking, GracePeriod after D0.
	reason := c.awaitStop()
	c.enter(StateStopping, string(reason), func(now time.Time) {
		c.telemetry.setStopReason(reason)
		c.telemetry.setPlanned(StateStopping, c.deadlinesLocked().stop.Sub(now))
	})

	// stop: every participant at once, bounded by the stop deadline.
	c.stopPhase()
	c.enter(StateTearingDown, "stop phase over", func(now time.Time) {
		c.telemetry.setPlanned(StateTearingDown, max(c.deadlinesLocked().teardown.Sub(now), 0))
	})

	// teardown: the hooks one after another, last registered first.
	c.teardownPhase()

	// the report.
	// Stopped means reported: the report is logged and the log synced
	// inside the transition, before Reached(StateStopped) closes, so that
	// a program that exits as soon as it closes loses no line.
	c.enter(StateStopped, "stopped", func(now time.Time) {
		r := c.telemetry.finish(now)
		// The structured event for machines (WARN if unclean), then one
		// line for a person: INFO if clean, else the one ERROR line of an
		// unclean stop, with no stack trace (the report says where the
		// time went).
		if r.ExitCode == 0 {
			c.log.Info("shutdown report", zap.Object("report", reportLog(r)))
		} else {
			c.log.Warn("shutdown report", zap.Object("report", reportLog(r)))
		}
		human := c.log.WithOptions(zap.AddStacktrace(zap.FatalLevel))
		switch {
		case r.ExitCode == 0:
			human.Info(r.summary())
		default:
			human.Error(r.summary())
		}
		_ = c.log.Sync()
	})
	c.mu.Lock()
	if c.unwatchCtx != nil {
		c.unwatchCtx()
	}
	c.mu.Unlock()
}

// drain runs the drain phase and says why it ended: at D0+DrainDelay for a
// fixed drain; for the adaptive drain at the first moment after that with
// no new connection for the quiet period, or at D0+MaxDrainDelay; at once
// for a service that never served; early if Stop's ctx ends.
func (c *Coordinator) drain(d0 time.Time) DrainEnd {
	p := c.plan
	end := func(endedBy DrainEnd) DrainEnd {
		now := c.clock.Now()
		// What the drain saw, with the remote addresses of the last
		// quarter of it (who was still sending then).
		seen := c.est.seen(d0.Add(now.Sub(d0) * 3 / 4))
		c.telemetry.setDrainEnd(endedBy, seen)
		c.logDrainEnd(endedBy, now.Sub(d0), seen)
		return endedBy
	}
	if !c.telemetry.servedOnce() {
		// Never serving, never in a load balancer: nothing to drain, and
		// no reason to give (the report says Served: false).
		return ""
	}
	seen := c.est.seen(time.Time{}) // the estimate taken at D0
	rate, quiet := seen.rate(), seen.Quiet
	c.logDrainStart(d0, rate, quiet)
	for {
		now := c.clock.Now()
		dl := c.deadlines() // read afresh: a shorter grace period moves them
		if now.Before(dl.drainMin) {
			if !c.sleepUntil(dl.drainMin) {
				return end(DrainEndedAbort)
			}
			continue
		}
		shortened := dl.drainMax.Before(d0.Add(p.DrainEnd))
		if !p.adaptive() || p.MaxDrainDelay <= orNone(p.DrainDelay) || c.sigint.Load() {
			if shortened && dl.drainMin.Before(d0.Add(orNone(p.DrainDelay))) {
				return end(DrainEndedDeadline)
			}
			return end(DrainEndedDelay)
		}
		quietAt := c.est.quietEnd(now)
		if !now.Before(quietAt) && quietAt.Before(dl.drainMax) {
			return end(DrainEndedQuiet)
		}
		if !now.Before(dl.drainMax) {
			if shortened {
				return end(DrainEndedDeadline)
			}
			return end(DrainEndedMax)
		}
		if !c.sleepUntil(earlier(quietAt, dl.drainMax)) {
			return end(DrainEndedAbort)
		}
	}
}

// sleepUntil waits until t, or until the deadlines move (and returns true
// early: the caller reads them again); false if the drain is cut short
// (Stop's ctx ended).
func (c *Coordinator) sleepUntil(t time.Time) bool {
	moved := c.movedCh()
	d := t.Sub(c.clock.Now())
	if d <= 0 {
		return true
	}
	fired := make(chan struct{})
	stop := c.clock.AfterFunc(d, func() { close(fired) })
	defer stop()
	select {
	case <-fired:
		return true
	case <-moved:
		return true
	case <-c.ev.aborted:
		return false
	}
}

// logDrainStart says, in one line a person can read, the longest the drain
// may take and why, and that a second signal exits at once.
func (c *Coordinator) logDrainStart(d0 time.Time, rate trafficRate, quiet time.Duration) {
	p := c.plan
	longest, why := orNone(p.DrainDelay), "a fixed drain (DrainQuiet none)"
	if p.adaptive() {
		why = "a fixed drain: MaxDrainDelay leaves the adaptive drain no room beyond DrainDelay"
	}
	switch {
	case c.sigint.Load():
		why = "SIGINT: a terminal's Ctrl-C, no proxy to wait for, so DrainDelay only"
	case p.adaptive() && p.MaxDrainDelay > orNone(p.DrainDelay):
		longest = p.MaxDrainDelay
		if quiet >= p.MaxDrainDelay {
			why = fmt.Sprintf("traffic too sparse to judge sooner (%s): up to MaxDrainDelay", rate.describe())
		} else {
			why = fmt.Sprintf("ends once no new connection came for %v (%s), at least DrainDelay %v, at most MaxDrainDelay",
				quiet, rate.describe(), orNone(p.DrainDelay))
		}
	}
	if dl := c.deadlines(); dl.drainMax.Sub(d0) < longest {
		longest, why = dl.drainMax.Sub(d0), "the real deadline is sooner than the budget's"
	}
	msg := fmt.Sprintf("draining for at most %v: %s", longest.Round(time.Millisecond), why)
	if !p.IgnoreSignals {
		msg += "; a second SIGTERM or Ctrl-C exits at once"
	}
	c.log.Info(msg, zap.Duration("longest", longest), zap.Object("rate", rateLog(rate)), zap.Duration("quiet", quiet),
		zap.Duration("maxDrainDelay", p.MaxDrainDelay))
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (c *Coordinator) logDrainEnd(by DrainEnd, took time.Duration, seen DrainSeen) {
	fields := []zap.Field{zap.String("endedBy", string(by)), zap.Duration("took", took), zap.Object("seen", drainSeenLog(seen))}
	// Connections still arriving within DrainQuiet of the end: the proxies
	// had not stopped routing here when the budget ran out.
	// (Measured against MaxDrainDelay, not the end: a late timer moves the
	// end, not the question.)
	stillArriving := seen.Arrivals > 0 && c.plan.MaxDrainDelay-seen.LastArrival < max(orNone(c.plan.DrainQuiet), sampleEvery)
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

// awaitStop waits in StateDrained for the stop to be asked for and returns
// why it began. A drain that nothing follows within GracePeriod of D0 is
// no kubelet's (it would have sent SIGKILL by now): the service stops by
// itself, with the stop phase and teardown counted from now, and asks the
// app to stop so that the process exits and the container restarts,
// instead of living on unready for good.
func (c *Coordinator) awaitStop() Reason {
	c.mu.Lock()
	noStop := c.d0.Add(c.plan.GracePeriod)
	c.mu.Unlock()
	if clockctx.SleepUntil(c.clock, noStop, c.ev.stopRequested) {
		now := c.clock.Now()
		c.log.Warn("the drain ended and nothing asked for the stop within the grace period: stopping",
			zap.Duration("gracePeriod", c.plan.GracePeriod))
		c.mu.Lock()
		c.stopBase = now // a whole stop phase and teardown from now
		c.mu.Unlock()
		c.requestStop(context.Background(), ReasonNoStop)
		c.askShutdown()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopReason
}

// askShutdown asks the app to stop (fx.Shutdowner), if it can be asked.
func (c *Coordinator) askShutdown() {
	if c.shutdown == nil {
		return
	}
	if err := c.shutdown(); err != nil {
		c.log.Warn("shutdown request", zap.Error(err))
	}
}

// stopPhase calls every stop participant at once with a context that ends
// at the stop deadline, and waits for them, at most until the teardown
// deadline.
func (c *Coordinator) stopPhase() {
	c.mu.Lock()
	parts := slices.Clone(c.stoppers)
	parent := c.stopCtx
	c.mu.Unlock()
	if parent == nil {
		parent = context.Background()
	}
	dl := c.deadlines()
	stopDL := dl.stop
	ctx, cancel := clockctx.Until(parent, c.clock, stopDL)
	defer cancel()
	overrunAt, overrunCancel := clockctx.Until(context.Background(), c.clock, dl.teardown)
	defer overrunCancel()
	planned := stopDL.Sub(c.clock.Now())
	type result struct {
		i   int
		err error
		at  time.Time
	}
	results := make(chan result, len(parts))
	start := c.clock.Now()
	for i, p := range parts {
		go func() {
			err := p.fn(ctx)
			results <- result{i, err, c.clock.Now()}
		}()
	}
	done := make([]bool, len(parts))
	for range parts {
		select {
		case r := <-results:
			done[r.i] = true
			h := HookReport{Name: parts[r.i].name, Phase: StateStopping.String(), Planned: planned, Actual: r.at.Sub(start)}
			if r.err != nil {
				h.Err = r.err.Error()
				c.log.Warn("stop participant", zap.String("participant", h.Name), zap.Error(r.err))
			}
			c.telemetry.addHook(h, false)
		case <-overrunAt.Done():
			for i, ok := range done {
				if !ok {
					h := HookReport{Name: parts[i].name, Phase: StateStopping.String(), Planned: planned,
						Actual: c.clock.Now().Sub(start), Overran: true, Err: ErrHookOverran.Error()}
					c.telemetry.addHook(h, true)
					c.log.Warn("stop participant overran: left running", zap.String("participant", h.Name))
				}
			}
			return
		}
	}
}

// teardownPhase runs the teardown hooks in reverse order of registration,
// each with an equal share of what is left until the teardown deadline.
func (c *Coordinator) teardownPhase() {
	c.mu.Lock()
	hooks := slices.Clone(c.teardowns)
	c.mu.Unlock()
	for i, h := range slices.Backward(hooks) {
		end := c.deadlines().teardown // read afresh: a shorter grace period moves it
		left := i + 1                 // this hook and those after it
		share := max(end.Sub(c.clock.Now())/time.Duration(left), 0)
		c.runHook(h, share)
	}
}

// runHook runs one teardown hook within share.
func (c *Coordinator) runHook(h participant, share time.Duration) {
	start := c.clock.Now()
	ctx, cancel := clockctx.Until(context.Background(), c.clock, start.Add(share))
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.fn(ctx) }()

	var err error
	overran := false
	select {
	case err = <-done:
	case <-ctx.Done():
		select {
		case err = <-done: // returned as the deadline struck
		default:
			overran = true // still running: cut and left behind
		}
	}
	if !overran {
		// A hook that honours its context gives up at the deadline and
		// returns the context's error: it was cut all the same.
		select {
		case <-ctx.Done():
			overran = errors.Is(err, context.DeadlineExceeded)
		default:
		}
	}
	if overran {
		err = fmt.Errorf("teardown hook %q after %v: %w", h.name, share, ErrHookOverran)
	}
	hr := HookReport{Name: h.name, Phase: StateTearingDown.String(), Planned: share, Actual: c.clock.Now().Sub(start), Overran: overran}
	if err != nil {
		hr.Err = err.Error()
	}
	c.telemetry.addHook(hr, overran)
	switch {
	case overran:
		c.log.Warn("teardown hook overran", zap.String("hook", h.name), zap.Duration("deadline", share))
	case err != nil:
		c.log.Warn("teardown hook", zap.String("hook", h.name), zap.Error(err))
	}
}
