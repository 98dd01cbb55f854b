// Package lifecycle is the drain coordinator of drainfx: one timeline and one
// time budget for a service that Kubernetes is about to remove.
//
// # The timeline
//
// D0 is the first of: a preStop call (the admin server's /prestop, package
// probemod, calls [Coordinator.BeginDrain] with [ReasonPrestop]), the
// first SIGTERM/SIGINT/SIGHUP, [go.uber.org/fx.Shutdowner.Shutdown], or
// [Coordinator.Stop]. From D0 the coordinator runs the timeline itself, on
// one goroutine, through one state per phase ([State]):
//
//   - draining (D0 → D0+DrainDelay, or adaptive up to D0+MaxDrainDelay):
//     /readyz answers 503, every HTTP/1 response carries Connection: close,
//     everything is still served. A preStop call blocks until it ends.
//   - drained: waiting for the stop — the gap between the end of a preStop
//     call and the kubelet's SIGTERM, zero without a hook. If nothing asks
//     for the stop within GracePeriod of D0, no kubelet is terminating the
//     pod: the coordinator stops by itself ([ReasonNoStop]).
//   - stopping (→ D0+GracePeriod−TeardownReserve−Margin): every stop
//     participant ([Coordinator.AtStop]: the HTTP server, the session
//     registry, the gRPC server) is called at once, with a context that
//     ends at the stop deadline; listeners close, in-flight requests
//     finish, WebSocket and SSE sessions are ended; what is left at the
//     deadline is cut and counted.
//   - tearing down (→ D0+GracePeriod−Margin): the teardown hooks
//     ([Coordinator.AtTeardown]: workers, clients, pools) one after
//     another, last registered first, each with a deadline of its own.
//   - stopped: the shutdown report ([Report]), one zap event; under fx the
//     process exits 0 if nothing was cut, 1 otherwise.
//
// # The adaptive drain
//
// With DrainQuiet set (the default), the drain ends, after DrainDelay, at the
// first moment with no new connection on a public server for the quiet
// period, at most MaxDrainDelay after D0. A new connection counts at its
// first request ([Telemetry.NoteNewConnection]), as work before D0 counts
// by requests: a bare TCP connect and close, which a load balancer's TCP
// health check makes every few seconds, even to a target it is
// deregistering, is not one. The quiet period is
// max(DrainQuiet, ln(1/ε)/λ), ε = [Config.DrainMissProbability] and λ the
// rate at which work reached the pod in the minute before D0: a proxy still
// sending at that rate leaves no gap so long with probability 1 − ε.
//
// The servers count the work they begin ([Telemetry.TrackArrivals]: the
// counters their in-flight gauges keep anyway) and the coordinator samples
// them once a second while serving. λ is the smaller of two rates read off
// the last minute: arrivals per second, and −ln(1 − p) per second for p
// the share of seconds with any arrival — the same for steady traffic, but
// a burst once a minute counts once. A pod that served for less than a
// minute is judged from its first busy second on, its first arrival not
// counted; one that saw a single arrival cannot estimate a rate and waits
// up to MaxDrainDelay. A pod that saw no arrival at all keeps DrainQuiet,
// unless new connections reach it during the drain: then the rate since D0
// sets the quiet period. What the drain saw is in the report ([DrainSeen]).
//
// # Taking part
//
// Modules register with the coordinator in their constructors. Under fx
// the constructors run in dependency order, so the teardown runs in
// reverse dependency order whatever the order of the modules in fx.New,
// and every fx OnStop hook of drainfx only calls [Coordinator.Stop] and
// waits: the order in which fx calls them does not matter, and the same
// coordinator drives the same participants without fx.
//
// Observers wait on [Coordinator.Reached] (a channel per state) or read
// [Coordinator.State] (one atomic load). [Coordinator.OnState] is for the
// few switches that must happen in the transition itself: gRPC health
// NOT_SERVING at D0, keep-alives off as the stop phase begins.
// [Coordinator.Telemetry] holds what a shutdown measures — in-flight
// gauges, session endings, cuts, arrivals, the report — apart from the
// state machine.
//
// # Entry point
//
// Plain fx app.Run() is the recommended entry point, with [Module] and
// [AppOptions] (the bundle in package modules has both). fx listens for
// SIGTERM and SIGINT and begins app.Stop on the first; the coordinator's
// own handler sees the same signal and records D0 at once (so /readyz flips
// within milliseconds), and the stop phase follows the drain. A second
// signal exits at once with code 143 (SIGTERM), 130 (SIGINT) or 129
// (SIGHUP): the one place drainfx calls [os.Exit].
//
// # Signals
//
// From [Coordinator.MarkStarted] (under fx, from the lifecycle module's
// OnStart) until the report, the coordinator handles
// SIGTERM (the kubelet's), SIGINT (Ctrl-C) and SIGHUP (a closed terminal or
// SSH session): each begins the drain, and once the drain is over asks for
// the stop. A signal that comes while a preStop call still waits for the
// drain means the kubelet gave up on the hook: SIGKILL comes 2 s later, and
// the deadlines move to fit ([Coordinator.ShortenGrace], "signal during
// prestop"). SIGINT drains DrainDelay at most: a terminal's Ctrl-C has no
// proxy to wait for. Kubernetes never sends SIGHUP; it is
// handled so that a hangup drains and writes the report instead of killing
// the process on the spot (exit 129, no report), which is what SIGHUP's
// default action does. fx's app.Run does not listen for SIGHUP: the
// coordinator's handler asks the app to stop once the drain phase is over.
// A service that wants SIGHUP for something else, such as a reload, sets
// [Config.IgnoreSignals] and handles the signals itself.
//
// A signal during an fx start begins the drain; the servers of drainfx's
// modules whose OnStart has not run yet refuse to start ("start cut
// short"), and fx's Start fails with that error. An OnStart hook of the
// app's own that may block — a connection that does not come up — should
// give up when [Coordinator.Reached] for [StateDraining] closes, as
// sqlmod's does: fx ends the start context only at its StartTimeout (15 s
// by default), which may come after the kubelet's SIGKILL.
//
// # Limits
//
// A stop participant or teardown hook that ignores its context is cut and
// reported at its deadline but left running; its result is dropped. A
// service that never became ready (a start that failed, or that a signal
// cut short) does not drain: nothing was routed to it.
package lifecycle
