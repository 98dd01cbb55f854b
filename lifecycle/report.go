package lifecycle

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ErrUnclean is returned by the lifecycle module's OnStop (so fx exits 1)
// when the shutdown cut work: a request, a session, a hook.
var ErrUnclean = errors.New("lifecycle: shutdown was not clean")

// Phase is one phase of the timeline in the report.
type Phase struct {
	Name    string        `json:"name"`
	Planned time.Duration `json:"planned"` // the latest end the budget allows, from the phase's start
	Actual  time.Duration `json:"actual"`
}

// Report is what a shutdown did. It is logged once, as the zap event
// "shutdown report", and returned by [Coordinator.Finish] and
// [Coordinator.Report].
type Report struct {
	Reason       string           `json:"reason"` // what began the drain; empty if it never began
	D0           time.Time        `json:"d0"`
	DrainEndedBy string           `json:"drainEndedBy"`
	Phases       []Phase          `json:"phases"`
	InFlightAtD0 map[string]int64 `json:"inFlightAtD0"`
	InFlightStop map[string]int64 `json:"inFlightAtStop"`
	Cut          map[string]int64 `json:"cut"`
	Hooks        []HookReport     `json:"hooks"`
	ExitCode     int              `json:"exitCode"`
}

// Clean reports whether nothing was cut.
func (r Report) Clean() bool { return r.ExitCode == 0 }

// MarshalLogObject writes the report as zap fields.
func (r Report) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("reason", r.Reason)
	if !r.D0.IsZero() {
		enc.AddTime("d0", r.D0)
	}
	enc.AddString("drainEndedBy", r.DrainEndedBy)
	_ = enc.AddArray("phases", zapcore.ArrayMarshalerFunc(func(a zapcore.ArrayEncoder) error {
		for _, p := range r.Phases {
			_ = a.AppendObject(zapcore.ObjectMarshalerFunc(func(o zapcore.ObjectEncoder) error {
				o.AddString("name", p.Name)
				o.AddDuration("planned", p.Planned)
				o.AddDuration("actual", p.Actual)
				return nil
			}))
		}
		return nil
	}))
	_ = enc.AddReflected("inFlightAtD0", r.InFlightAtD0)
	_ = enc.AddReflected("inFlightAtStop", r.InFlightStop)
	_ = enc.AddReflected("cut", r.Cut)
	_ = enc.AddReflected("hooks", r.Hooks)
	enc.AddInt("exitCode", r.ExitCode)
	return nil
}

// Finish ends the timeline: it closes the coordinator (a drain still
// running is cut short), releases what waits for the drain or the stop
// phase if they never came ([Coordinator.DrainDone], [Coordinator.Stopping],
// [Coordinator.StopContext]), moves to
// StateStopped, logs the report and returns it. There is one report per
// stop: later calls return the same report and log nothing. The lifecycle
// module calls it from the last OnStop hook.
func (c *Coordinator) Finish() Report {
	c.Close()
	first := c.transition(StateStopped, "stopped", func(now time.Time) {
		if !c.drainEnded {
			// The drain never began (Close has ended one that did): no
			// DrainAndWait, preStop call or signal may wait for it now.
			c.drainEnded = true
			close(c.drainDone)
		}
		c.closeStoppingLocked()
		r := c.buildLocked(now)
		c.report = &r
		close(c.stopped)
	})
	r, _ := c.Report()
	if first {
		if r.Clean() {
			c.log.Info("shutdown report", zap.Object("report", r))
		} else {
			c.log.Warn("shutdown report", zap.Object("report", r))
		}
		_ = c.log.Sync()
	}
	return r
}

// Report returns the report once the coordinator has stopped. The report is
// a copy: changing it changes nothing in the coordinator.
func (c *Coordinator) Report() (Report, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.report == nil {
		return Report{}, false
	}
	return c.report.clone(), true
}

func (r Report) clone() Report {
	r.Phases = slices.Clone(r.Phases)
	r.InFlightAtD0 = maps.Clone(r.InFlightAtD0)
	r.InFlightStop = maps.Clone(r.InFlightStop)
	r.Cut = maps.Clone(r.Cut)
	r.Hooks = slices.Clone(r.Hooks)
	return r
}

func (c *Coordinator) buildLocked(now time.Time) Report {
	r := Report{
		Reason:       c.reason,
		D0:           c.d0,
		DrainEndedBy: c.drainEndedBy,
		InFlightAtD0: maps.Clone(c.atD0),
		InFlightStop: maps.Clone(c.atStop),
		Cut:          maps.Clone(c.cuts),
		Hooks:        append([]HookReport(nil), c.hooks...),
	}
	if !c.d0.IsZero() {
		p := c.plan
		drainEnd := c.drainEnd
		if drainEnd.IsZero() {
			drainEnd = now
		}
		stopAt := c.stopAt
		if stopAt.IsZero() {
			stopAt = now
		}
		r.Phases = []Phase{
			{Name: "drain", Planned: p.DrainEnd, Actual: drainEnd.Sub(c.d0)},
			// waiting for the stop to begin: zero under SIGTERM, the gap
			// between preStop's end and SIGTERM otherwise
			{Name: "wait", Planned: 0, Actual: stopAt.Sub(drainEnd)},
		}
		teardownAt := c.teardownAt
		if teardownAt.IsZero() {
			teardownAt = now
		}
		r.Phases = append(r.Phases,
			Phase{Name: "stop", Planned: p.StopDeadline - p.DrainEnd, Actual: teardownAt.Sub(stopAt)},
			Phase{Name: "teardown", Planned: p.TeardownDeadline - p.StopDeadline, Actual: now.Sub(teardownAt)},
		)
	}
	for _, n := range c.cuts {
		if n > 0 {
			r.ExitCode = 1
		}
	}
	return r
}

func (r Report) err() error {
	if r.Clean() {
		return nil
	}
	return fmt.Errorf("%w: cut %v", ErrUnclean, r.Cut)
}
