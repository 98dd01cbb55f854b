// Package lifecycle is the drain coordinator of drainfx: one timeline and one
// time budget for a service that Kubernetes is about to remove.
//
// # The timeline
//
// D0 is the first of: a preStop call ([Coordinator.PrestopHandler]), the
// first SIGTERM, SIGINT or SIGHUP, [go.uber.org/fx.Shutdowner.Shutdown], or
// the app stopping. From D0:
//
//   - drain (D0 → D0+DrainDelay, or adaptive up to D0+MaxDrainDelay):
//     /readyz answers 503, every HTTP/1 response carries Connection: close,
//     everything is still served. A preStop call blocks until it ends.
//   - stop (→ D0+GracePeriod−TeardownReserve−Margin): keep-alives end
//     ([Coordinator.BeforeStop]), listeners close, in-flight requests
//     finish, WebSocket and SSE sessions are ended; what is left at the
//     deadline is cut and counted ([Coordinator.StopPhaseContext]).
//   - teardown (→ D0+GracePeriod−Margin): the remaining OnStop hooks, in
//     reverse dependency order, each with a deadline of its own
//     ([Coordinator.StopHook]). A wrapped hook that fx calls while a server
//     of the stop phase ([Coordinator.JoinStop]) is still stopping is
//     queued until the servers have stopped, whatever the order of the
//     modules in fx.New.
//   - flush: the shutdown report ([Report]), one zap event; the process
//     exits 0 if nothing was cut, 1 otherwise.
//
// # Entry point
//
// Plain fx app.Run() is the recommended entry point. fx listens for SIGTERM
// and SIGINT and begins app.Stop on the first; the coordinator's own handler
// sees the same signal and records D0 at once (so /readyz flips within
// milliseconds), and the HTTP module's OnStop begins with
// [Coordinator.DrainAndWait], so the drain happens however the stop began —
// under app.Run, under fxtest, or after a preStop call. A second signal
// exits at once with code 143 (SIGTERM), 130 (SIGINT) or 129 (SIGHUP): the
// one place drainfx calls [os.Exit].
//
// # Signals
//
// SIGTERM (the kubelet's), SIGINT (Ctrl-C) and SIGHUP (a closed terminal or
// SSH session) all begin the drain. Kubernetes never sends SIGHUP; it is
// handled so that a hangup drains and writes the report instead of killing
// the process on the spot (exit 129, no report), which is what SIGHUP's
// default action does. fx's app.Run does not listen for SIGHUP: the
// coordinator's handler asks the app to stop once the drain phase is over,
// and the app exits as after SIGTERM (0 if nothing was cut). A service that
// wants SIGHUP for something else, such as a reload, sets
// [Config.IgnoreSignals] and handles the signals itself.
//
// # Limits
//
// The coordinator does not stop the app after a preStop call: the kubelet
// sends SIGTERM when preStop returns, and that stops it. Until then the pod
// stays drained. A stop hook that ignores its context is cut and reported
// but left running; its result is dropped.
package lifecycle
