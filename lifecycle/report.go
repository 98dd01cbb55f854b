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

// What began the drain: [Report.Reason], [Snapshot.Reason], and the
// Reason of the [Transition] to StateDraining.
const (
	// ReasonPrestop: a preStop call ([Coordinator.PrestopHandler]).
	ReasonPrestop = "prestop"
	// ReasonSignal is the prefix of a signal's reason: "signal terminated"
	// (SIGTERM) or "signal interrupt" (SIGINT).
	ReasonSignal = "signal"
	// ReasonShutdowner: a call to [go.uber.org/fx.Shutdowner.Shutdown], with
	// [DrainOnShutdown] in the app (the bundle in package modules has it).
	ReasonShutdowner = "shutdowner"
	// ReasonAppStopping: the app stopped with none of the above first
	// (app.Stop, fxtest, or a Shutdowner without [DrainOnShutdown]).
	ReasonAppStopping = "app stopping"
)

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
	Reason       string    `json:"reason"` // what began the drain; empty if it never began
	D0           time.Time `json:"d0"`
	DrainEndedBy string    `json:"drainEndedBy"`
	// Served is false when the drain came before the service ever served
	// (a start that failed or that a signal cut short).
	Served bool `json:"served"`
	// Drain is what the drain saw: the traffic before D0, the quiet
	// period, the arrivals after D0.
	Drain        DrainSeen        `json:"drain"`
	Phases       []Phase          `json:"phases"`
	InFlightAtD0 map[string]int64 `json:"inFlightAtD0"`
	InFlightStop map[string]int64 `json:"inFlightAtStop"`
	Cut          map[string]int64 `json:"cut"`
	// Sessions is how the long-lived sessions of each kind ended from D0
	// to the report (from the start if the drain never began), per
	// [Coordinator.TrackSessions]; nil if nothing tracks sessions.
	Sessions map[string]SessionEnds `json:"sessions,omitempty"`
	Hooks    []HookReport           `json:"hooks"`
	ExitCode int                    `json:"exitCode"`
}

// SessionEnds counts how long-lived sessions (WebSocket, SSE) ended.
type SessionEnds struct {
	// Clean: closed by the close handshake, or a stream ended with its
	// final event.
	Clean int64 `json:"clean"`
	// Forced: still open at the stop deadline and force-closed (each one
	// is also a cut, [Coordinator.RecordCut] "sessions").
	Forced int64 `json:"forced"`
	// Aborted: anything else — the peer went away, a network error.
	Aborted int64 `json:"aborted"`
}

func (e SessionEnds) sub(o SessionEnds) SessionEnds {
	return SessionEnds{Clean: e.Clean - o.Clean, Forced: e.Forced - o.Forced, Aborted: e.Aborted - o.Aborted}
}

// MarshalLogObject writes the counts as zap fields.
func (e SessionEnds) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddInt64("clean", e.Clean)
	enc.AddInt64("forced", e.Forced)
	enc.AddInt64("aborted", e.Aborted)
	return nil
}

// TrackSessions registers a source of session endings for the report and
// for metrics: read returns the counts of sessions of kind that ended since
// the source was created (counters: they only grow). The report holds what
// ended from D0 on. read is called with the coordinator's lock held: it must
// not call the coordinator. The session registry of package wsmod calls it
// for "websocket" and "sse".
func (c *Coordinator) TrackSessions(kind string, read func() SessionEnds) {
	c.mu.Lock()
	c.sessionSrcs = append(c.sessionSrcs, sessionSource{kind, read})
	c.mu.Unlock()
}

type sessionSource struct {
	kind string
	read func() SessionEnds
}

// sampleSessionsLocked reads every session source; nil if there is none.
// Sources of the same kind add up.
func (c *Coordinator) sampleSessionsLocked() map[string]SessionEnds {
	if len(c.sessionSrcs) == 0 {
		return nil
	}
	m := make(map[string]SessionEnds, len(c.sessionSrcs))
	for _, src := range c.sessionSrcs {
		e, v := m[src.kind], src.read()
		m[src.kind] = SessionEnds{Clean: e.Clean + v.Clean, Forced: e.Forced + v.Forced, Aborted: e.Aborted + v.Aborted}
	}
	return m
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
	if !r.Served {
		enc.AddBool("served", false) // the start never finished
	}
	if !r.D0.IsZero() {
		_ = enc.AddObject("drain", r.Drain)
	}
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
	if r.Sessions != nil {
		_ = enc.AddObject("sessions", zapcore.ObjectMarshalerFunc(func(o zapcore.ObjectEncoder) error {
			for _, k := range slices.Sorted(maps.Keys(r.Sessions)) {
				_ = o.AddObject(k, r.Sessions[k])
			}
			return nil
		}))
	}
	// Hooks as objects, not reflected, so that their durations are
	// encoded as the phases' are (seconds in zap's production config).
	_ = enc.AddArray("hooks", zapcore.ArrayMarshalerFunc(func(a zapcore.ArrayEncoder) error {
		for _, h := range r.Hooks {
			_ = a.AppendObject(zapcore.ObjectMarshalerFunc(func(o zapcore.ObjectEncoder) error {
				o.AddString("name", h.Name)
				o.AddDuration("planned", h.Planned)
				o.AddDuration("actual", h.Actual)
				if h.Overran {
					o.AddBool("overran", true)
				}
				if h.Err != "" {
					o.AddString("err", h.Err)
				}
				return nil
			}))
		}
		return nil
	}))
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
	c.runBeforeStop()
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
	r.Sessions = maps.Clone(r.Sessions)
	r.Hooks = slices.Clone(r.Hooks)
	r.Drain = r.Drain.clone()
	return r
}

func (s DrainSeen) clone() DrainSeen {
	s.LateRemotes = slices.Clone(s.LateRemotes)
	return s
}

func (c *Coordinator) buildLocked(now time.Time) Report {
	r := Report{
		Reason:       c.reason,
		D0:           c.d0,
		DrainEndedBy: c.drainEndedBy,
		Served:       c.served.Load(),
		Drain:        c.seen.clone(),
		Phases:       c.phasesLocked(now, true),
		InFlightAtD0: maps.Clone(c.atD0),
		InFlightStop: maps.Clone(c.atStop),
		Cut:          maps.Clone(c.cuts),
		Sessions:     c.sessionsSinceD0Locked(),
		Hooks:        append([]HookReport(nil), c.hooks...),
	}
	for _, n := range c.cuts {
		if n > 0 {
			r.ExitCode = 1
		}
	}
	return r
}

// sessionsSinceD0Locked is how sessions ended from D0 (or the start) to now.
func (c *Coordinator) sessionsSinceD0Locked() map[string]SessionEnds {
	m := c.sampleSessionsLocked()
	for k, v := range m {
		m[k] = v.sub(c.sessAtD0[k])
	}
	return m
}

// The phases of the timeline, in order.
const (
	PhaseDrain    = "drain"    // D0 → the drain's end
	PhaseWait     = "wait"     // the drain's end → the stop phase (a preStop call's gap until SIGTERM)
	PhaseStop     = "stop"     // HTTP Shutdown, sessions closed → the first StopHook
	PhaseTeardown = "teardown" // the StopHooks → the report
)

// phasesLocked returns the phases at now: nil before D0. With all (the
// report), every phase, those never reached with an actual of 0; else (a
// snapshot) only the phases begun, the last one's actual counting up to
// now.
func (c *Coordinator) phasesLocked(now time.Time, all bool) []Phase {
	if c.d0.IsZero() {
		return nil
	}
	plan := c.plan.Phases()
	// When each phase began; zero if not yet.
	starts := [...]time.Time{c.d0, c.drainEnd, c.stopAt, c.teardownAt}
	if all {
		// A phase never reached begins (and ends) where the next one
		// begins, or at the report.
		for i := len(starts) - 1; i > 0; i-- {
			if starts[i].IsZero() {
				if i+1 < len(starts) {
					starts[i] = starts[i+1]
				} else {
					starts[i] = now
				}
			}
		}
	}
	phases := make([]Phase, 0, len(starts))
	for i, start := range starts {
		if start.IsZero() {
			break
		}
		end := now
		if i+1 < len(starts) && !starts[i+1].IsZero() {
			end = starts[i+1]
		}
		plan[i].Actual = end.Sub(start)
		phases = append(phases, plan[i])
	}
	return phases
}

// Phases returns the plan's phases in order, each with its planned
// duration (the latest end the budget allows, from the phase's start) and
// an Actual of zero.
func (p Plan) Phases() []Phase {
	return []Phase{
		{Name: PhaseDrain, Planned: p.DrainEnd},
		{Name: PhaseWait, Planned: 0}, // waiting for the stop: zero under SIGTERM
		{Name: PhaseStop, Planned: p.StopDeadline - p.DrainEnd},
		{Name: PhaseTeardown, Planned: p.TeardownDeadline - p.StopDeadline},
	}
}

func (r Report) err() error {
	if r.Clean() {
		return nil
	}
	return fmt.Errorf("%w: cut %v", ErrUnclean, r.Cut)
}

// Snapshot is the coordinator at one moment: the state, the timeline so far
// and the tracked gauges read now. It is what metrics read on a scrape;
// taking one changes nothing.
type Snapshot struct {
	State  State     `json:"state"`
	Reason string    `json:"reason"` // what began the drain; empty before D0
	D0     time.Time `json:"d0"`
	// DrainEndedBy is why the drain ended; empty while it runs.
	DrainEndedBy string `json:"drainEndedBy"`
	// Phases are the phases begun so far, in order; the last one may still
	// run, its Actual counting up to the snapshot. After the report, the
	// report's phases.
	Phases []Phase `json:"phases"`
	// InFlight is every gauge of [Coordinator.TrackInFlight], read now.
	InFlight map[string]int64 `json:"inFlight"`
	// Cut is the work cut so far ([Coordinator.RecordCut]).
	Cut map[string]int64 `json:"cut"`
	// Sessions is how the sessions of [Coordinator.TrackSessions] have ended
	// since they were first counted (not since D0, unlike the report).
	Sessions map[string]SessionEnds `json:"sessions,omitempty"`
	// Hooks are the wrapped stop hooks that have returned.
	Hooks []HookReport `json:"hooks"`
	// Drain is what the drain has seen so far: the arrivals after D0 count
	// up while it runs.
	Drain DrainSeen `json:"drain"`
}

// Snapshot returns the coordinator's state and timeline now. It takes the
// coordinator's lock, reads every tracked gauge and allocates its maps: call
// it at the rate of a metrics scrape, not per request.
func (c *Coordinator) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Snapshot{
		State:    c.State(),
		Reason:   c.reason,
		D0:       c.d0,
		InFlight: c.sampleLocked(),
		// Set once the drain has ended (under mu, as is drainEnded).
		DrainEndedBy: c.drainEndedBy,
		Cut:          maps.Clone(c.cuts),
		Sessions:     c.sampleSessionsLocked(),
		Hooks:        slices.Clone(c.hooks),
		Drain:        c.seen.clone(),
	}
	if !c.d0.IsZero() && !c.drainEnded {
		n, last, _ := c.afterD0.read(c.d0)
		s.Drain.Arrivals = n
		if !last.IsZero() {
			s.Drain.LastArrival = last.Sub(c.d0)
		}
	}
	if c.report != nil {
		s.Phases = slices.Clone(c.report.Phases)
	} else {
		s.Phases = c.phasesLocked(c.clock.Now(), false)
	}
	return s
}
