package lifecycle

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap/zapcore"
)

// ErrUnclean is returned by the lifecycle module's OnStop (so fx exits 1)
// when the shutdown cut work: a request, a session, a hook.
var ErrUnclean = errors.New("lifecycle: shutdown was not clean")

// Reason is what began the drain ([Report.Reason]) or
// the stop phase ([Report.StopReason]): one of the Reason constants, a
// signal's ("signal terminated" for SIGTERM, "signal interrupt" for
// SIGINT, "signal hangup" for SIGHUP), or a caller's own. It is set in one
// place: the call that begins the drain, or asks for the stop, first.
type Reason string

// The reasons drainfx gives.
const (
	// ReasonPrestop: a preStop call (the admin server's /prestop, package
	// probemod).
	ReasonPrestop Reason = "prestop"
	// ReasonShutdowner: a call to [go.uber.org/fx.Shutdowner.Shutdown], with
	// [AppOptions] in the app (the bundle in package modules has them).
	ReasonShutdowner Reason = "shutdowner"
	// ReasonAppStopping: [Coordinator.Stop] with none of the above first
	// (app.Stop, fxtest).
	ReasonAppStopping Reason = "app stopping"
	// ReasonNoStop: the drain ended and nothing asked for the stop within
	// GracePeriod of D0 — no kubelet is terminating the pod (a preStop
	// call from someone else, or a kubelet that gave up): the service stops
	// by itself, with a whole stop phase, and the container restarts.
	ReasonNoStop Reason = "no stop followed the drain"
)

// DrainEnd is why a drain ended ([Report.DrainEndedBy]).
type DrainEnd string

// The ends of a drain.
const (
	DrainEndedDelay DrainEnd = "delay" // fixed drain: DrainDelay passed
	DrainEndedQuiet DrainEnd = "quiet" // adaptive drain: no new connection for the quiet period
	DrainEndedMax   DrainEnd = "max"   // adaptive drain: MaxDrainDelay reached
	DrainEndedAbort DrainEnd = "abort" // cut short: the ctx of [Coordinator.Stop] ended first
	// DrainEndedDeadline: the real deadline came sooner than the budget's
	// (a shortened grace period, [Coordinator.ShortenGrace]) and left no
	// more time for the drain.
	DrainEndedDeadline DrainEnd = "deadline"
)

// Phase is one phase of the shutdown in the report: one of the states from
// D0 on, by its name ("draining", "drained", "stopping", "tearing down").
type Phase struct {
	Name string `json:"name"`
	// Planned is the time from the phase's start to its deadline: the
	// latest end the budget allowed it when it began (more than the
	// plan's share if the phase before it ended early; less if the grace
	// period was shortened). For a phase still to come, the plan's share.
	Planned time.Duration `json:"planned"`
	Actual  time.Duration `json:"actual"`
}

// CutKind is a kind of work cut at a deadline ([Telemetry.RecordCut]).
type CutKind string

// The kinds of cut work that the coordinator records itself. Each module
// records its own kind of work cut at the stop deadline (httpmod's
// "requests", wsmod's "sessions", grpcmod's "rpcs", sqlmod's "queries"); a
// module of your own may record its own kind.
const (
	CutHooks CutKind = "hooks" // stop participants and teardown hooks that overran their deadline
	// CutHookErrors counts stop participants and teardown hooks that
	// returned an error (a flush that failed, a delete refused): the work
	// they stood for was not done, so the shutdown is not clean.
	CutHookErrors CutKind = "hook_errors"
)

// HookReport is one stop participant or teardown hook in the report.
type HookReport struct {
	Name    string        `json:"name"`
	Phase   string        `json:"phase"` // the state it ran in: "stopping" or "tearing down"
	Planned time.Duration `json:"planned"`
	Actual  time.Duration `json:"actual"`
	Overran bool          `json:"overran,omitempty"`
	Err     string        `json:"err,omitempty"`
}

// Report is what a shutdown did. It is logged once, as the zap event
// "shutdown report" (and one line for a person), and read with
// [Telemetry.Report]. It is clean when ExitCode is 0.
type Report struct {
	// State is the state the report was taken in: [StateStopped] for the
	// shutdown report, the state then for a report so far.
	State  State     `json:"state"`
	Reason Reason    `json:"reason"` // what began the drain; empty before D0
	D0     time.Time `json:"d0"`
	// StopReason is what began the stop phase ([Coordinator.Stop]'s
	// caller, or [ReasonNoStop]).
	StopReason Reason `json:"stopReason"`
	// DrainEndedBy is why the drain ended; empty while it runs, and for a
	// service that never served (Served is false: the drain ends at once,
	// nothing having been routed to it).
	DrainEndedBy DrainEnd `json:"drainEndedBy"`
	// Served is false when the drain came before the service ever served
	// (a start that failed or that a signal cut short).
	Served bool `json:"served"`
	// Drain is what the drain saw: the traffic before D0, the quiet
	// period, the arrivals after D0.
	Drain DrainSeen `json:"drain"`
	// Phases are the phases begun, in order; in a report so far, the last
	// one may still run, its Actual counting up to the report.
	Phases []Phase `json:"phases"`
	// InFlight is every gauge of [Telemetry.TrackInFlight], read when the
	// report was taken.
	InFlight     map[string]int64  `json:"inFlight"`
	InFlightAtD0 map[string]int64  `json:"inFlightAtD0"`
	InFlightStop map[string]int64  `json:"inFlightAtStop"`
	Cut          map[CutKind]int64 `json:"cut"`
	// CutNames says, for the kinds whose recorders name what they cut, what
	// it was: the route patterns of the requests cut, the methods of the
	// RPCs (at most 8 names a kind, the rest as "other"). The units with no
	// name are Cut's count less these; nil if nothing named was cut.
	CutNames map[CutKind]map[string]int64 `json:"cutNames,omitempty"`
	// Sessions is how the long-lived sessions of each kind ended, per
	// [Telemetry.TrackSessions]: in the shutdown report, from D0 on; in a
	// report so far, since they were first counted (counters, for
	// metrics). Nil if nothing tracks sessions.
	Sessions map[string]SessionEnds `json:"sessions,omitempty"`
	// Hooks are the stop participants, then the teardown hooks, as they
	// ran.
	Hooks []HookReport `json:"hooks"`
	// Grace is set when the real grace period was shorter than the
	// budget's and the deadlines moved earlier ([Coordinator.ShortenGrace]).
	Grace *GraceShortened `json:"grace,omitempty"`
	// ExitCode is 1 if the shutdown was not clean — work was cut at a
	// deadline, or a stop participant or teardown hook failed (every
	// [CutKind], [CutHookErrors] included) — else 0. (A start that failed
	// exits 1 by itself, whatever the report says.)
	ExitCode int `json:"exitCode"`
}

// SessionEnds counts how long-lived sessions (WebSocket, SSE) ended.
type SessionEnds struct {
	// Clean: closed by the close handshake, or a stream ended with its
	// final event.
	Clean int64 `json:"clean"`
	// Forced: still open at the close deadline and force-closed (each one
	// is also a cut, wsmod's "sessions").
	Forced int64 `json:"forced"`
	// Aborted: anything else — the peer went away, a network error.
	Aborted int64 `json:"aborted"`
}

func (e SessionEnds) sub(o SessionEnds) SessionEnds {
	return SessionEnds{Clean: e.Clean - o.Clean, Forced: e.Forced - o.Forced, Aborted: e.Aborted - o.Aborted}
}

func (e SessionEnds) add(o SessionEnds) SessionEnds {
	return SessionEnds{Clean: e.Clean + o.Clean, Forced: e.Forced + o.Forced, Aborted: e.Aborted + o.Aborted}
}

// sessionEndsLog writes session counts as zap fields.
type sessionEndsLog SessionEnds

func (e sessionEndsLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddInt64("clean", e.Clean)
	enc.AddInt64("forced", e.Forced)
	enc.AddInt64("aborted", e.Aborted)
	return nil
}

func (r Report) err() error {
	if r.ExitCode == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnclean, r.cutText())
}

// cutText is what was cut, in words: "cut: requests 3 (GET /slow 2,
// other 1), hook_errors 1", the names most cut first.
func (r Report) cutText() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.Cut)) {
		n := r.Cut[k]
		if n <= 0 {
			continue
		}
		part := fmt.Sprintf("%s %d", k, n)
		if byName := r.CutNames[k]; len(byName) > 0 {
			names := slices.SortedFunc(maps.Keys(byName), func(a, b string) int {
				if c := cmp.Compare(byName[b], byName[a]); c != 0 {
					return c
				}
				return strings.Compare(a, b)
			})
			var named []string
			left := n
			for _, name := range names {
				named = append(named, fmt.Sprintf("%s %d", name, byName[name]))
				left -= byName[name]
			}
			if left > 0 {
				named = append(named, fmt.Sprintf("unnamed %d", left))
			}
			part += " (" + strings.Join(named, ", ") + ")"
		}
		parts = append(parts, part)
	}
	if len(parts) == 0 {
		return "nothing cut"
	}
	return "cut: " + strings.Join(parts, ", ")
}

// summary is the report in one line a person can read without a JSON tool:
// clean or not, how long, each phase against its plan, sessions, what was
// cut and by which hook.
func (r Report) summary() string {
	var b strings.Builder
	verdict := "clean"
	if r.ExitCode != 0 {
		verdict = "NOT clean (exit code 1)"
	}
	var total time.Duration
	for _, p := range r.Phases {
		total += p.Actual
	}
	fmt.Fprintf(&b, "shutdown %s: %v from D0 (%s)", verdict, total.Round(time.Millisecond), r.Reason)
	if !r.Served {
		b.WriteString(", before the service ever served: nothing to drain")
	}
	for i, p := range r.Phases {
		sep := ", "
		if i == 0 {
			sep = "; "
		}
		if p.Name == StateDrained.String() {
			// Waiting for the stop has no plan: it lasts until SIGTERM.
			fmt.Fprintf(&b, "%s%s %v", sep, p.Name, p.Actual.Round(time.Millisecond))
			continue
		}
		fmt.Fprintf(&b, "%s%s %v of %v", sep, p.Name, p.Actual.Round(time.Millisecond), p.Planned.Round(time.Millisecond))
		if p.Name == StateDraining.String() && r.DrainEndedBy != "" {
			fmt.Fprintf(&b, " (ended by %s)", r.DrainEndedBy)
		}
	}
	if g := r.Grace; g != nil {
		fmt.Fprintf(&b, "; Kubernetes gave %v, not %v (%s)", g.Real.Round(time.Millisecond), g.Configured, g.Source)
	}
	if n := r.InFlightStop["requests"]; n > 0 {
		fmt.Fprintf(&b, "; %d requests in flight at the stop", n)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Sessions)) {
		e := r.Sessions[k]
		if e == (SessionEnds{}) {
			continue
		}
		fmt.Fprintf(&b, "; %s: %d clean", k, e.Clean)
		if e.Forced > 0 {
			fmt.Fprintf(&b, ", %d forced", e.Forced)
		}
		if e.Aborted > 0 {
			fmt.Fprintf(&b, ", %d aborted", e.Aborted)
		}
	}
	b.WriteString("; " + r.cutText())
	for _, h := range r.Hooks {
		if h.Err != "" {
			fmt.Fprintf(&b, "; %s %q: %s", h.Phase, h.Name, h.Err)
		}
	}
	return b.String()
}

// reportLog writes the report as zap fields.
type reportLog Report

func (r reportLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddString("reason", string(r.Reason))
	if !r.D0.IsZero() {
		enc.AddTime("d0", r.D0)
	}
	enc.AddString("stopReason", string(r.StopReason))
	enc.AddString("drainEndedBy", string(r.DrainEndedBy))
	if !r.Served {
		enc.AddBool("served", false) // the start never finished
	}
	_ = enc.AddObject("drain", drainSeenLog(r.Drain))
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
	if len(r.CutNames) > 0 {
		_ = enc.AddReflected("cutNames", r.CutNames)
	}
	if r.Sessions != nil {
		_ = enc.AddObject("sessions", zapcore.ObjectMarshalerFunc(func(o zapcore.ObjectEncoder) error {
			for _, k := range slices.Sorted(maps.Keys(r.Sessions)) {
				_ = o.AddObject(k, sessionEndsLog(r.Sessions[k]))
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
				o.AddString("phase", h.Phase)
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
	if r.Grace != nil {
		_ = enc.AddObject("grace", graceLog(*r.Grace))
	}
	enc.AddInt("exitCode", r.ExitCode)
	return nil
}

func (r Report) clone() Report {
	r.Phases = slices.Clone(r.Phases)
	r.InFlight = maps.Clone(r.InFlight)
	r.InFlightAtD0 = maps.Clone(r.InFlightAtD0)
	r.InFlightStop = maps.Clone(r.InFlightStop)
	r.Cut = maps.Clone(r.Cut)
	r.CutNames = cloneCutNames(r.CutNames)
	r.Sessions = maps.Clone(r.Sessions)
	r.Hooks = slices.Clone(r.Hooks)
	r.Drain = r.Drain.clone()
	if r.Grace != nil {
		g := *r.Grace
		r.Grace = &g
	}
	return r
}

func cloneCutNames(m map[CutKind]map[string]int64) map[CutKind]map[string]int64 {
	if len(m) == 0 {
		return nil
	}
	out := make(map[CutKind]map[string]int64, len(m))
	for k, v := range m {
		out[k] = maps.Clone(v)
	}
	return out
}

func (s DrainSeen) clone() DrainSeen {
	s.LateRemotes = slices.Clone(s.LateRemotes)
	return s
}
