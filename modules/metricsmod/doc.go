// Package metricsmod serves a drainfx service's Prometheus metrics on the
// admin server's /metrics: what the drain is doing, read from the
// coordinator on every scrape, the readiness checks, and the Go and process
// collectors. Add [Module] beside the bundle:
//
//	fx.New(modules.Web(cfg), metricsmod.Module, …)
//
// metricsmod is a Go module of its own (github.com/drainfx/drainfx/modules/metricsmod),
// so that the Prometheus client and its dependencies stay out of the module
// graph of a service that does not serve metrics.
//
// # Metrics
//
// From the [lifecycle.Coordinator] ([NewCollector]), read from its
// [lifecycle.Telemetry.Report] and its [lifecycle.Plan]. Label values are
// snake_case, as Prometheus' conventions have it: the state "tearing down"
// of the logs is "tearing_down" here, the reason "signal terminated" is
// "signal_terminated". The names and values are stable.
//
//	drainfx_state{state}                        1 for the current state, 0 for the others (starting, serving, draining, drained, stopping, tearing_down, stopped)
//	drainfx_state_number                        the current state as a number: 0 starting, 1 serving, 2 draining, 3 drained, 4 stopping, 5 tearing_down, 6 stopped
//	drainfx_drain_start_timestamp_seconds{reason}  D0, once the drain has begun (reason: prestop, signal_terminated, signal_interrupt, signal_hangup, shutdowner, app_stopping)
//	drainfx_inflight_requests                   HTTP requests in flight (httpmod)
//	drainfx_sessions{kind}                      open long-lived sessions: websocket, sse (wsmod)
//	drainfx_sessions_ended_total{kind,outcome}  sessions ended: clean, forced, aborted (wsmod)
//	drainfx_inflight{kind}                      any other gauge tracked with Telemetry.TrackInFlight (grpcmod: rpcs)
//	drainfx_phase_duration_seconds{phase}       how long each phase begun so far has lasted (draining, drained, stopping, tearing_down); the running one grows
//	drainfx_phase_planned_seconds{phase}        the budget's plan for each phase
//	drainfx_cut_total{kind}                     work cut at a deadline or failed: requests, sessions, rpcs, hooks (overran), hook_errors (returned an error), and any other kind recorded
//	drainfx_hook_duration_seconds{hook}         how long each stop participant (AtStop: http, grpc, …) and teardown hook (AtTeardown) took
//	drainfx_drain_arrivals_total                new connections on the public listeners after D0 (the proxies still sending)
//	drainfx_drain_last_arrival_seconds          the last of them, after D0: the propagation delay this pod observed
//	drainfx_drain_traffic_rate_per_second       the rate of work arriving (the adaptive drain's estimate): live while serving, the minute before D0 after it
//	drainfx_drain_quiet_seconds                 the adaptive drain's quiet period: the one it would use now while serving, the one it used after D0
//	drainfx_drain_ended{by}                     1 once the drain has ended: delay, quiet, max, deadline, abort
//	drainfx_prestop_refused_total               preStop calls refused for a bad or missing token (the log shows the first, then one every 10 s)
//
// From the readiness checks of [probemod.Probes] ([NewCheckCollector]):
//
//	drainfx_check_passing{check}                1 if /readyz shows the check passing, 0 if failing (after its first run)
//	drainfx_check_duration_seconds{check}       how long its last run took
//	drainfx_check_runs_total{check}             runs concluded (timeouts included)
//	drainfx_check_failures_total{check}         runs that failed
//
// And the Go runtime (go_*) and process (process_*) collectors, unless
// [Config.NoRuntimeMetrics].
//
// Every value is read when Prometheus scrapes, from counters the modules
// keep anyway: nothing is updated on the request path, so serving metrics
// costs the HTTP middleware nothing.
//
// # The registry
//
// The metrics live on a [prometheus.Registry] of the app's, never on the
// global default registry. Under fx, [Module] uses the *prometheus.Registry
// in the graph if there is one — provide yours to add the app's own
// metrics — and makes one otherwise ([Metrics.Registry] returns it).
// Passing [prometheus.DefaultRegisterer]'s registry is allowed: collectors
// it already has (Go, process) are not registered twice.
//
// The admin server stops last, once the shutdown report is out, so a
// scrape during the drain, the stop and the teardown sees them happen.
//
// # Without fx
//
// [New] registers the collectors on a registry and returns the handler and
// the [probemod.AdminRoute] to pass to [probemod.New] with
// [probemod.WithRoutes]. [NewCollector] and [NewCheckCollector] are the
// collectors alone, for any [prometheus.Registerer].
package metricsmod
