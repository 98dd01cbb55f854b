package lifecycle

// State is where a service stands in its life. The states from draining to
// tearing down are the phases of the shutdown: "phase" means one of them,
// and nothing else. States only move forward, one at a
// time: a shutdown passes through every phase, however short.
type State int32

// The states, in order, and the transitions between them:
//
//	starting     → serving      MarkStarted: every OnStart hook has run
//	starting     → draining     D0 before the start finished (nothing to drain: the drain ends at once)
//	serving      → draining     D0: BeginDrain (preStop, a signal, fx.Shutdowner) or Stop
//	draining     → drained      the drain's end: DrainDelay, the quiet period, MaxDrainDelay, or Stop's ctx
//	drained      → stopping     Stop is called (SIGTERM, the app stops), or nobody asked for GracePeriod after D0
//	stopping     → tearing down every stop participant has returned (or the stop deadline and then some)
//	tearing down → stopped      every teardown hook has run or been cut; the report is out
const (
	StateStarting    State = iota // until every OnStart hook has run
	StateServing                  // ready; keep-alive allowed
	StateDraining                 // the drain: not ready, Connection: close, everything served
	StateDrained                  // the drain is over; waiting for the stop (preStop → SIGTERM)
	StateStopping                 // the stop phase: the stop participants (servers, sessions) in parallel
	StateTearingDown              // the teardown: the teardown hooks, one after another
	StateStopped                  // the report is out
	numStates
)

var stateNames = [numStates]string{"starting", "serving", "draining", "drained", "stopping", "tearing down", "stopped"}

func (s State) String() string {
	if s >= 0 && s < numStates {
		return stateNames[s]
	}
	return "unknown"
}

// phaseStates are the states from D0 on, in order: the phases of the
// shutdown, each named in the report ([Phase]) by its state's name.
var phaseStates = [...]State{StateDraining, StateDrained, StateStopping, StateTearingDown}
