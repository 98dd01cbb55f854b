package lifecycle

import (
	"maps"
	"net"
	"slices"
	"sync"
	"time"
)

// Telemetry is what a shutdown measures, beside the state machine: the
// gauges of work in flight, how sessions ended, the work cut at a
// deadline, the arrivals that the adaptive drain learns from, the
// timeline as it happened, and the report. It has a lock of its own, held
// only for the moment of a read or a write (a transition records into it
// under the coordinator's lock, never the other way round), so reading it
// — a metrics scrape — never waits for a transition to finish. Get it with
// [Coordinator.Telemetry].
type Telemetry struct {
	clock Clock
	plan  Plan
	state func() State

	est *estimator // the adaptive drain's: it hears of new connections, metrics preview it

	mu          sync.Mutex
	gauges      []gauge
	sessionSrcs []sessionSource
	arrivalSrcs []func() int64
	cuts        map[CutKind]int64
	cutNames    map[CutKind]map[string]int64

	// The timeline, written by the coordinator as it moves.
	d0, stopAt   time.Time
	reason       Reason
	stopReason   Reason
	served       bool
	phaseStart   [len(phaseStates)]time.Time
	planned      [len(phaseStates)]time.Duration // set as each phase's deadline is known; else the plan's
	drainEndedBy DrainEnd
	seen         DrainSeen // what the drain saw, once it has ended
	atD0, atStop map[string]int64
	sessAtD0     map[string]SessionEnds
	hooks        []HookReport
	grace        *GraceShortened
	report       *Report
}

type gauge struct {
	name string
	read func() int64
}

type sessionSource struct {
	kind string
	read func() SessionEnds
}

func newTelemetry(clock Clock, plan Plan, state func() State, est *estimator) *Telemetry {
	return &Telemetry{clock: clock, plan: plan, state: state, est: est, cuts: make(map[CutKind]int64),
		cutNames: make(map[CutKind]map[string]int64)}
}

// TrackInFlight registers a gauge of work in flight (requests, open
// sessions) sampled at D0 and at the start of the stop phase for the
// report, and read by [Telemetry.Report] (metrics). Gauges of the same
// name add up. read must be cheap and must not call the coordinator.
func (t *Telemetry) TrackInFlight(name string, read func() int64) {
	t.mu.Lock()
	t.gauges = append(t.gauges, gauge{name, read})
	t.mu.Unlock()
}

// TrackSessions registers a source of session endings for the report and
// for metrics: read returns the counts of sessions of kind that ended since
// the source was created (counters: they only grow). The final report
// holds what ended from D0 on; a report so far, the counters. The session
// registry of package wsmod calls it for "websocket" and "sse".
func (t *Telemetry) TrackSessions(kind string, read func() SessionEnds) {
	t.mu.Lock()
	t.sessionSrcs = append(t.sessionSrcs, sessionSource{kind, read})
	t.mu.Unlock()
}

// TrackArrivals registers a counter of the work that arrived at a public
// server (requests, session opens, RPCs: it only grows). While serving,
// the coordinator samples the sum of the counters once a second; the rate
// of the last minute before D0 sets the adaptive drain's quiet period (see
// [Config.DrainMissProbability]). read must be cheap. The HTTP and gRPC
// servers call it.
func (t *Telemetry) TrackArrivals(read func() int64) {
	t.mu.Lock()
	t.arrivalSrcs = append(t.arrivalSrcs, read)
	t.mu.Unlock()
}

// NoteNewConnection records that the first request on a new connection
// to a public server, from remote (nil if unknown), arrived now. The
// adaptive drain ends only after its quiet period without one. Call it once
// per connection, at its first request (a WebSocket or SSE open is a
// request too), not at the TCP accept: a load balancer's TCP health check
// connects and closes without a request, and would hold the drain to
// MaxDrainDelay. It is how arrivals are judged before D0 too, where the
// rate counts requests ([Telemetry.TrackArrivals]). Admin servers never
// call it. Before D0 it is one clock read and one atomic store.
func (t *Telemetry) NoteNewConnection(remote net.Addr) { t.est.noteConn(remote) }

// RecordCut counts n units of work of kind cut at a deadline. names, if
// known, name the units cut — a route pattern ("GET /orders/{id}"), an RPC
// method — one name per unit, at most n: the report counts them by name
// ([Report.CutNames]), for at most 8 names of a kind, the others as
// "other" (a name that varies with the request, such as a path, cannot
// grow it). Any cut makes the shutdown unclean (exit code 1).
func (t *Telemetry) RecordCut(kind CutKind, n int64, names ...string) {
	if n <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cuts[kind] += n
	if len(names) == 0 {
		return
	}
	byName := t.cutNames[kind]
	if byName == nil {
		byName = make(map[string]int64)
		t.cutNames[kind] = byName
	}
	for _, name := range names[:min(int64(len(names)), n)] {
		if _, ok := byName[name]; !ok && len(byName) >= maxCutNames {
			name = cutOther
		}
		byName[name]++
	}
}

// maxCutNames bounds the names of one kind of cut work in the report;
// beyond them, the units are counted as cutOther.
const (
	maxCutNames = 8
	cutOther    = "other"
)

// arrivals reads the sum of the arrival counters; false if there are none.
func (t *Telemetry) arrivals() (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.arrivalsLocked()
}

func (t *Telemetry) arrivalsLocked() (int64, bool) {
	var n int64
	for _, read := range t.arrivalSrcs {
		n += read()
	}
	return n, len(t.arrivalSrcs) > 0
}

func (t *Telemetry) sampleLocked() map[string]int64 {
	m := make(map[string]int64, len(t.gauges))
	for _, g := range t.gauges {
		m[g.name] += g.read() // two servers' "requests" add up
	}
	return m
}

// sampleSessionsLocked reads every session source; nil if there is none.
func (t *Telemetry) sampleSessionsLocked() map[string]SessionEnds {
	if len(t.sessionSrcs) == 0 {
		return nil
	}
	m := make(map[string]SessionEnds, len(t.sessionSrcs))
	for _, src := range t.sessionSrcs {
		m[src.kind] = m[src.kind].add(src.read())
	}
	return m
}

// servedOnce reports whether the service ever served.
func (t *Telemetry) servedOnce() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.served
}

// markServed records that the service began serving.
func (t *Telemetry) markServed() {
	t.mu.Lock()
	t.served = true
	t.mu.Unlock()
}

// markD0 records D0.
func (t *Telemetry) markD0(now time.Time, reason Reason) {
	t.mu.Lock()
	t.d0, t.reason = now, reason
	t.phaseStart[0] = now
	t.atD0 = t.sampleLocked()
	t.sessAtD0 = t.sampleSessionsLocked()
	t.mu.Unlock()
}

// markPhase records that the phase of state s began at now.
func (t *Telemetry) markPhase(s State, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, ps := range phaseStates {
		if ps == s {
			t.phaseStart[i] = now
		}
	}
	if s == StateStopping {
		t.stopAt = now
		t.atStop = t.sampleLocked()
	}
}

// setDrainEnd records why the drain ended and what it saw.
func (t *Telemetry) setDrainEnd(by DrainEnd, seen DrainSeen) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.drainEndedBy, t.seen = by, seen.clone()
}

// setPlanned records the planned length of the phase of state s, from its
// start to the deadline it had (moved by a shorter grace period, or longer
// for a stop phase that a short drain left more time).
func (t *Telemetry) setPlanned(s State, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, ps := range phaseStates {
		if ps == s {
			t.planned[i] = d
		}
	}
}

func (t *Telemetry) setStopReason(reason Reason) {
	t.mu.Lock()
	t.stopReason = reason
	t.mu.Unlock()
}

// addHook records a participant or hook that has run. One that overran
// counts as [CutHooks]; one that returned an error of its own as
// [CutHookErrors]: either makes the shutdown unclean.
func (t *Telemetry) addHook(h HookReport, overran bool) {
	t.mu.Lock()
	t.hooks = append(t.hooks, h)
	switch {
	case overran:
		t.cuts[CutHooks]++
	case h.Err != "":
		t.cuts[CutHookErrors]++
	}
	t.mu.Unlock()
}

func (t *Telemetry) setShortened(g GraceShortened) {
	t.mu.Lock()
	t.grace = &g
	t.mu.Unlock()
}

// finish builds the report at now, once.
func (t *Telemetry) finish(now time.Time) Report {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.reportLocked(now, StateStopped)
	for k, v := range r.Sessions {
		r.Sessions[k] = v.sub(t.sessAtD0[k]) // the sessions that ended from D0 on
	}
	for _, n := range t.cuts {
		if n > 0 {
			r.ExitCode = 1
		}
	}
	t.report = &r
	return r.clone()
}

// reportLocked is the report as it stands at now, in state: the timeline so
// far, the gauges read now, the session counters since they were first
// counted.
func (t *Telemetry) reportLocked(now time.Time, state State) Report {
	r := Report{
		State:        state,
		Reason:       t.reason,
		D0:           t.d0,
		StopReason:   t.stopReason,
		DrainEndedBy: t.drainEndedBy,
		Served:       t.served,
		Drain:        t.seen.clone(),
		Phases:       t.phasesLocked(now),
		InFlight:     t.sampleLocked(),
		InFlightAtD0: maps.Clone(t.atD0),
		InFlightStop: maps.Clone(t.atStop),
		Cut:          maps.Clone(t.cuts),
		CutNames:     cloneCutNames(t.cutNames),
		Sessions:     t.sampleSessionsLocked(),
		Hooks:        slices.Clone(t.hooks),
	}
	if t.grace != nil {
		g := *t.grace
		r.Grace = &g
	}
	return r
}

// phasesLocked returns the phases begun by now, the last one's actual
// counting up to now; nil before D0.
func (t *Telemetry) phasesLocked(now time.Time) []Phase {
	if t.d0.IsZero() {
		return nil
	}
	all := t.plan.phases()
	phases := make([]Phase, 0, len(all))
	for i, start := range t.phaseStart {
		if start.IsZero() {
			break
		}
		end := now
		if i+1 < len(t.phaseStart) && !t.phaseStart[i+1].IsZero() {
			end = t.phaseStart[i+1]
		}
		all[i].Actual = end.Sub(start)
		if t.planned[i] != 0 {
			all[i].Planned = t.planned[i]
		}
		phases = append(phases, all[i])
	}
	return phases
}

// Report returns the shutdown report once the shutdown is over (its State
// is [StateStopped]). Before that it returns the report so far: the state
// now, the phases begun (the last one's Actual counting up to now), the
// gauges read now, the cuts, sessions and hooks so far, and what the drain
// has seen (before D0, with the adaptive drain, the rate and quiet period
// a drain beginning now would judge by). This is what metrics read on a
// scrape: it reads every tracked gauge and allocates its maps, so call it
// at that rate, not per request. Taking it changes nothing, and the
// report is a copy.
func (t *Telemetry) Report() Report {
	state := t.state()
	now := t.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.report != nil {
		return t.report.clone()
	}
	r := t.reportLocked(now, state)
	switch {
	case t.d0.IsZero():
		// Before D0: the rate the drain would judge by now, and its quiet
		// period, so that an operator can see them before a rollout.
		n, _ := t.arrivalsLocked()
		if rate, quiet, ok := t.est.preview(now, n); ok {
			r.Drain.setRate(rate)
			r.Drain.Quiet = quiet
		}
	case t.drainEndedBy == "" && t.served:
		r.Drain = t.est.seen(time.Time{}) // the drain under way
	}
	return r
}
