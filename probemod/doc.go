// Package probemod serves the Kubernetes probes and the admin server of a
// drainfx service: /livez (and its alias /healthz), /readyz, /startupz,
// /prestop and admin routes such as /metrics, on a port of their own.
//
// # Probes
//
//   - /livez, /healthz: 200 "ok" while the process serves HTTP. The drain
//     never touches them: a failing liveness probe gets the container killed.
//   - /readyz: 503 before the start and from D0 on (the coordinator's
//     state is not [lifecycle.StateServing]), and while a check fails;
//     else 200 "ok".
//   - /startupz: 503 until every OnStart hook has run
//     ([lifecycle.Coordinator.MarkStarted]), then 200 "ok".
//
// With ?verbose (any value), a probe writes one line per check, as the
// Kubernetes apiserver does:
//
//	[+]serving ok
//	[+]cache ok
//	[-]db failed: reason withheld
//	readyz check failed
//
// The first line of /readyz is the coordinator's: "[+]serving ok",
// "[-]starting failed: not started", or, from D0 on,
// "[-]<state> failed: draining since <D0> (<reason>)", where <state> is
// the coordinator's (draining, drained, stopping, tearing down, stopped). Without ?verbose, a
// failing probe writes only the failed lines and the last one. While the
// coordinator is not ready, /readyz runs no check unless ?verbose asks.
//
// # Checks
//
// A [Check] is a named func(context.Context) error, added under fx with
// [AsCheck]. Each has a timeout (default 1s: a probe never waits longer,
// even for a check that ignores its context), a result cache (default 1s:
// a probe storm reaches the dependency at most once a second) and a
// failure threshold (default 1: the consecutive failed runs it takes to
// fail /readyz once the check has passed; a check that has never passed
// fails at once). Concurrent probes share one run of a check, and a probe
// runs its stale checks concurrently. At most one run of a check is in
// flight: a run still hanging past its timeout is reported as failed on
// each probe, and [Probes.Close] waits for it.
//
// A check's error goes whole to the log ("check failed", when the check
// starts failing /readyz). It must not contain secrets: do not quote a DSN
// with its password (see [RedactURL]). Probe output, which anyone who
// reaches the admin port can read, never shows it: a failed check's line
// ends in "reason withheld", as the Kubernetes apiserver's own checks do,
// or in a short fixed reason the check gives with [WithReason]
// ("[-]db failed: ping failed"), since a dependency's error names hosts,
// ports, users and databases. probemod's own reasons — a timeout, a panic,
// a closed Probes — are shown.
//
// # The admin server
//
// [Admin] is a plain [net/http.Server] with an [net/http.ServeMux]: the
// probes (GET and HEAD; another method gets 405), the preStop hook at
// /prestop (GET and POST, below) and the routes added with [AsAdminRoute]
// or [WithHandler], each a ServeMux pattern and an [net/http.Handler].
// Under fx ([Module]) it listens in OnStart, so a busy port fails the
// start naming the address, and it stops last: its OnStop first waits for
// the coordinator's whole timeline ([lifecycle.Coordinator.Stop] returns
// once the shutdown report is out), then stops the server, so the
// kubelet's probes, a preStop call and a metrics scrape are answered
// through drain, stop and teardown, whichever order fx calls the OnStop
// hooks in. Its stop is a graceful shutdown bounded by half the budget's
// Margin (at least 100ms), then a close that cancels the requests still in
// flight.
//
// # The preStop hook
//
// A call to /prestop (the kubelet's httpGet preStop hook, or an exec hook
// running [CallPrestop]) begins the drain ([lifecycle.ReasonPrestop]) and
// is answered ([PrestopResponse]) once the drain phase has ended, so that
// the kubelet's SIGTERM comes after the drain and adds no second delay. It
// is idempotent: a call after the drain answers at once; a caller that
// goes away leaves the drain running. With [lifecycle.Config.PrestopToken]
// set, a call without the token in header X-Prestop-Token ([PrestopHeader])
// gets 401 and changes nothing; the token is compared through SHA-256
// digests in constant time. Without a token anyone who reaches the admin
// port can drain the pod: building the server logs a WARN naming
// PRESTOP_TOKEN. Refused calls are counted ([Probes.PrestopRefused]) and
// logged at most once every 10 s, with the number left unlogged.
//
// # Without fx
//
// [New] returns the admin server; call [Admin.Start] and [Admin.Stop]
// yourself, Stop after everything else: after the coordinator's
// [lifecycle.Coordinator.Stop] has returned. [NewProbes] returns the probes
// alone, to mount with [Probes.Register] on any [net/http.ServeMux]. Their
// handlers are [net/http.HandlerFunc]s, for any other router; on echo:
//
//	e.GET(probemod.PathReadyz, echo.WrapHandler(http.HandlerFunc(p.Readyz)))
//
// # Limits
//
// A check or an admin route that ignores its context keeps its goroutine
// after its timeout; Stop waits for it only briefly and then returns an
// error naming what still runs. Probes are served in plain text, without
// Kubernetes' per-check paths (/readyz/<name>) or ?exclude.
package probemod
