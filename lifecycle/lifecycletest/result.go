package lifecycletest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/drainfx/drainfx/lifecycle"
)

// HTTPStats is what one HTTP client saw.
type HTTPStats struct {
	Method, URL string
	// OK counts the 2xx answers read in full; ConnClose those of them that
	// carried Connection: close (the drain's answers).
	OK, ConnClose int
	// Lost counts the requests that failed or got another status; Errors
	// keeps the first few.
	Lost   int
	Errors []string
	// Moved: the client stopped because it would have opened a new
	// connection once the proxies no longer route here ([WithPropagation]).
	Moved bool
}

// WebSocketStats is what one WebSocket client saw.
type WebSocketStats struct {
	URL string
	// Echoed counts the messages that came back; Unanswered those sent
	// whose echo never came (the session ended first). Unanswered messages
	// are not counted as lost: a client resends what was not acknowledged.
	Echoed, Unanswered int
	// CloseCode and CloseText are the server's close frame; 0 if none came
	// (gorilla reports a connection lost without one as 1006).
	CloseCode int
	CloseText string
	// Err says how the session was lost; empty if it ended with 1000, 1001
	// or 1012.
	Err string
}

// SSEStats is what one SSE client saw.
type SSEStats struct {
	URL string
	// Events counts the events read, the final one included.
	Events int
	// LastEvent is the type of the last event ("message" if it had none):
	// "shutdown" for wsmod's final event.
	LastEvent string
	// Err says how the stream was lost; empty if it ended cleanly.
	Err string
}

// Result is what [Kit.Terminate] saw.
type Result struct {
	// Termination is "prestop", "signal" or "app stop".
	Termination string
	// Transitions are the states the coordinator moved to, in order, from
	// serving to stopped, and when.
	Transitions []Transition
	// Took is the time from the termination's start (the preStop call, the
	// signal) to the app's Stop returning: SIGTERM→exit, less the exit.
	Took time.Duration
	// PrestopErr is the preStop call's failure (not 200), if any.
	PrestopErr error
	// StopErr is the app's Stop error: with drainfx, an unclean shutdown
	// ([lifecycle.ErrUnclean]) or a hook's failure.
	StopErr error
	// Report is the coordinator's shutdown report.
	Report lifecycle.Report

	HTTP      []HTTPStats
	WebSocket []WebSocketStats
	SSE       []SSEStats
}

// Lost counts what was lost, per kind.
type Lost struct {
	Requests, WebSockets, Streams int
}

// Total is the sum of the kinds.
func (l Lost) Total() int { return l.Requests + l.WebSockets + l.Streams }

func (l Lost) String() string {
	return fmt.Sprintf("%d requests, %d WebSocket sessions, %d SSE streams", l.Requests, l.WebSockets, l.Streams)
}

// Lost counts the lost requests, WebSocket sessions and SSE streams.
func (r Result) Lost() Lost {
	var l Lost
	for _, h := range r.HTTP {
		l.Requests += h.Lost
	}
	for _, w := range r.WebSocket {
		if w.Err != "" {
			l.WebSockets++
		}
	}
	for _, s := range r.SSE {
		if s.Err != "" {
			l.Streams++
		}
	}
	return l
}

// Transition is one state the coordinator moved to.
type Transition struct {
	To lifecycle.State
	At time.Time
}

// CleanStates is the order of states of a clean termination: every phase
// of the timeline, in order.
var CleanStates = []lifecycle.State{
	lifecycle.StateServing, lifecycle.StateDraining, lifecycle.StateDrained,
	lifecycle.StateStopping, lifecycle.StateTearingDown, lifecycle.StateStopped,
}

// States returns the states the coordinator went through, in order.
func (r Result) States() []lifecycle.State {
	out := make([]lifecycle.State, 0, len(r.Transitions))
	for _, tr := range r.Transitions {
		out = append(out, tr.To)
	}
	return out
}

// Err returns nil if the termination was clean: nothing lost, the states
// in the order of [CleanStates], the preStop call answered 200, the app's
// Stop without error and its report clean. Otherwise it names every
// problem, one a line.
func (r Result) Err() error {
	var errs []error
	if r.PrestopErr != nil {
		errs = append(errs, r.PrestopErr)
	}
	if got := r.States(); !slices.Equal(got, CleanStates) {
		errs = append(errs, fmt.Errorf("states %s, want %s", stateList(got), stateList(CleanStates)))
	}
	for _, h := range r.HTTP {
		if h.Lost > 0 {
			errs = append(errs, fmt.Errorf("%s %s: %d requests lost: %s", h.Method, h.URL, h.Lost, strings.Join(h.Errors, "; ")))
		}
	}
	for _, w := range r.WebSocket {
		if w.Err != "" {
			errs = append(errs, fmt.Errorf("websocket %s: %s", w.URL, w.Err))
		}
	}
	for _, s := range r.SSE {
		if s.Err != "" {
			errs = append(errs, fmt.Errorf("sse %s: %s", s.URL, s.Err))
		}
	}
	if r.StopErr != nil {
		errs = append(errs, fmt.Errorf("app stop: %w", r.StopErr))
	} else if r.Report.ExitCode != 0 {
		errs = append(errs, fmt.Errorf("shutdown report: cut %v", r.Report.Cut))
	}
	return errors.Join(errs...)
}

func stateList(states []lifecycle.State) string {
	names := make([]string, len(states))
	for i, s := range states {
		names[i] = s.String()
	}
	return strings.Join(names, " → ")
}

// String is a summary: the states (with why the drain, the drain's end
// and the stop began), then one line per client, then the losses.
func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "termination %s, took %v:", r.Termination, r.Took.Round(time.Millisecond))
	for _, tr := range r.Transitions {
		switch tr.To {
		case lifecycle.StateDraining:
			fmt.Fprintf(&b, " → %s (%s)", tr.To, r.Report.Reason)
		case lifecycle.StateDrained:
			fmt.Fprintf(&b, " → %s (%s)", tr.To, r.Report.DrainEndedBy)
		case lifecycle.StateStopping:
			fmt.Fprintf(&b, " → %s (%s)", tr.To, r.Report.StopReason)
		default:
			fmt.Fprintf(&b, " → %s", tr.To)
		}
	}
	b.WriteByte('\n')
	for _, h := range r.HTTP {
		fmt.Fprintf(&b, "  %s %s: %d ok (%d with Connection: close), %d lost", h.Method, h.URL, h.OK, h.ConnClose, h.Lost)
		if h.Moved {
			b.WriteString(", then moved")
		}
		b.WriteByte('\n')
	}
	for _, w := range r.WebSocket {
		fmt.Fprintf(&b, "  websocket %s: %d echoed, %d unanswered, close %d %q", w.URL, w.Echoed, w.Unanswered, w.CloseCode, w.CloseText)
		if w.Err != "" {
			b.WriteString(", lost: " + w.Err)
		}
		b.WriteByte('\n')
	}
	for _, s := range r.SSE {
		fmt.Fprintf(&b, "  sse %s: %d events, last %q", s.URL, s.Events, s.LastEvent)
		if s.Err != "" {
			b.WriteString(", lost: " + s.Err)
		} else {
			b.WriteString(", ended cleanly")
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "  lost: %v", r.Lost())
	return b.String()
}
