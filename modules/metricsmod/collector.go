package metricsmod

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// The gauge and cut names the modules register with the coordinator. They
// are spelled out rather than imported, so that this package does not pull
// in echo or gorilla/websocket; a test checks them against httpmod and
// wsmod.
const (
	gaugeRequests  = "requests"  // httpmod.InFlightGauge
	gaugeWebSocket = "websocket" // wsmod.KindWebSocket
	gaugeSSE       = "sse"       // wsmod.KindSSE

	cutRequests lifecycle.CutKind = "requests" // httpmod.CutRequests
	cutSessions lifecycle.CutKind = "sessions" // wsmod.CutSessions
)

// cutKinds are always exported, 0 until something is cut, so that rate()
// and increase() see the series from the start.
var cutKinds = []lifecycle.CutKind{cutRequests, cutSessions, lifecycle.CutHooks, lifecycle.CutHookErrors}

// states are every state, in order: drainfx_state has a series for each.
var states = []lifecycle.State{
	lifecycle.StateStarting, lifecycle.StateServing, lifecycle.StateDraining, lifecycle.StateDrained,
	lifecycle.StateStopping, lifecycle.StateTearingDown, lifecycle.StateStopped,
}

// Collector exports the coordinator's state, timeline, in-flight gauges,
// cuts and hooks (the drainfx_ families but the checks'). It reads the
// coordinator's [lifecycle.Telemetry.Report] and
// [lifecycle.Coordinator.Plan] on every scrape and keeps no state.
type Collector struct {
	c *lifecycle.Coordinator

	state, stateNumber, d0      *prometheus.Desc
	inflightRequests, inflight  *prometheus.Desc
	sessions, sessionsEnded     *prometheus.Desc
	phaseDuration, phasePlanned *prometheus.Desc
	cuts, hookDuration          *prometheus.Desc
	drainArrivals, drainLast    *prometheus.Desc
	drainRate, drainQuiet       *prometheus.Desc
	drainEnded                  *prometheus.Desc
}

// NewCollector returns the collector of c's metrics.
func NewCollector(c *lifecycle.Coordinator) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("drainfx_"+name, help, labels, nil)
	}
	return &Collector{
		c:                c,
		state:            d("state", "The lifecycle state: 1 for the current one, 0 for the others.", "state"),
		stateNumber:      d("state_number", "The lifecycle state as a number: 0 starting, 1 serving, 2 draining, 3 drained, 4 stopping, 5 tearing_down, 6 stopped."),
		d0:               d("drain_start_timestamp_seconds", "When the drain began (D0), in seconds since the epoch, and what began it.", "reason"),
		inflightRequests: d("inflight_requests", "HTTP requests in flight."),
		inflight:         d("inflight", "Work in flight other than HTTP requests and sessions, per gauge tracked with the coordinator.", "kind"),
		sessions:         d("sessions", "Long-lived sessions open.", "kind"),
		sessionsEnded:    d("sessions_ended_total", "Long-lived sessions ended: clean, forced at the stop deadline, or aborted.", "kind", "outcome"),
		phaseDuration:    d("phase_duration_seconds", "How long each shutdown phase begun so far has lasted; the running one grows.", "phase"),
		phasePlanned:     d("phase_planned_seconds", "The budget's planned duration of each shutdown phase.", "phase"),
		cuts:             d("cut_total", "Work cut at a deadline or failed: requests, sessions, rpcs, hooks (overran), hook_errors (returned an error), or another kind.", "kind"),
		hookDuration:     d("hook_duration_seconds", "How long each stop participant and teardown hook took.", "hook"),
		drainArrivals:    d("drain_arrivals_total", "New connections that reached the public listeners after D0 (the proxies still sending)."),
		drainLast:        d("drain_last_arrival_seconds", "When the last of them arrived, in seconds after D0: the propagation delay this pod observed."),
		drainRate:        d("drain_traffic_rate_per_second", "The rate at which work arrives, as the adaptive drain estimates it: over the last minute while serving, over the minute before D0 once draining."),
		drainQuiet:       d("drain_quiet_seconds", "The adaptive drain's quiet period — how long without a new connection ends it: the one it would use now while serving, the one it used once draining."),
		drainEnded:       d("drain_ended", "1 once the drain has ended, labelled with why: delay, quiet, max, deadline or abort (absent for a service that never served).", "by"),
	}
}

// Describe implements [prometheus.Collector].
func (x *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		x.state, x.stateNumber, x.d0, x.inflightRequests, x.inflight, x.sessions, x.sessionsEnded,
		x.phaseDuration, x.phasePlanned, x.cuts, x.hookDuration,
		x.drainArrivals, x.drainLast, x.drainRate, x.drainQuiet, x.drainEnded,
	} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (x *Collector) Collect(ch chan<- prometheus.Metric) {
	s := x.c.Telemetry().Report()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}

	for _, st := range states {
		gauge(x.state, boolValue(s.State == st), labelValue(st.String()))
	}
	gauge(x.stateNumber, float64(s.State))
	if s.D0.IsZero() && s.Drain.Window > 0 {
		// Before D0: what a drain beginning now would judge by.
		gauge(x.drainRate, s.Drain.PerSecond)
		gauge(x.drainQuiet, s.Drain.Quiet.Seconds())
	}
	if !s.D0.IsZero() {
		gauge(x.d0, float64(s.D0.UnixNano())/1e9, labelValue(string(s.Reason)))
		counter(x.drainArrivals, float64(s.Drain.Arrivals))
		gauge(x.drainLast, s.Drain.LastArrival.Seconds())
		gauge(x.drainRate, s.Drain.PerSecond)
		gauge(x.drainQuiet, s.Drain.Quiet.Seconds())
		if s.DrainEndedBy != "" {
			gauge(x.drainEnded, 1, labelValue(string(s.DrainEndedBy)))
		}
	}

	for name, v := range s.InFlight {
		switch name {
		case gaugeRequests:
			gauge(x.inflightRequests, float64(v))
		case gaugeWebSocket, gaugeSSE:
			gauge(x.sessions, float64(v), name)
		default:
			gauge(x.inflight, float64(v), name)
		}
	}
	for kind, e := range s.Sessions {
		counter(x.sessionsEnded, float64(e.Clean), kind, "clean")
		counter(x.sessionsEnded, float64(e.Forced), kind, "forced")
		counter(x.sessionsEnded, float64(e.Aborted), kind, "aborted")
	}

	plan := x.c.Plan()
	for _, p := range []struct {
		state   lifecycle.State
		planned time.Duration
	}{
		{lifecycle.StateDraining, plan.DrainEnd},
		{lifecycle.StateDrained, 0}, // waiting for the stop: none under SIGTERM
		{lifecycle.StateStopping, plan.StopDeadline - plan.DrainEnd},
		{lifecycle.StateTearingDown, plan.TeardownDeadline - plan.StopDeadline},
	} {
		gauge(x.phasePlanned, p.planned.Seconds(), labelValue(p.state.String()))
	}
	for _, p := range s.Phases {
		gauge(x.phaseDuration, p.Actual.Seconds(), labelValue(p.Name))
	}

	for _, kind := range cutKinds {
		if _, ok := s.Cut[kind]; !ok {
			counter(x.cuts, 0, string(kind))
		}
	}
	for kind, n := range s.Cut {
		counter(x.cuts, float64(n), string(kind))
	}

	// The stop participants and the teardown hooks, as the report lists
	// them. Two of one name (two pools named "sql") would be one series:
	// the later one stands.
	hooks := make(map[string]float64, len(s.Hooks))
	for _, h := range s.Hooks {
		hooks[h.Name] = h.Actual.Seconds()
	}
	for name, v := range hooks {
		gauge(x.hookDuration, v, name)
	}
}

// CheckCollector exports the readiness checks' results and durations. It
// reads [probemod.Probes.CheckStats] on every scrape.
type CheckCollector struct {
	p                                 *probemod.Probes
	passing, duration, runs, failures *prometheus.Desc
	prestopRefused                    *prometheus.Desc
}

// NewCheckCollector returns the collector of p's checks.
func NewCheckCollector(p *probemod.Probes) *CheckCollector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc("drainfx_check_"+name, help, []string{"check"}, nil)
	}
	return &CheckCollector{
		p:        p,
		passing:  d("passing", "1 if /readyz shows the readiness check passing, 0 if failing; absent before its first run."),
		duration: d("duration_seconds", "How long the readiness check's last run took."),
		runs:     d("runs_total", "Runs of the readiness check that concluded, timeouts included."),
		failures: d("failures_total", "Runs of the readiness check that failed."),
		prestopRefused: prometheus.NewDesc("drainfx_prestop_refused_total",
			"PreStop calls refused for a bad or missing token.", nil, nil),
	}
}

// Describe implements [prometheus.Collector].
func (x *CheckCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- x.passing
	ch <- x.duration
	ch <- x.runs
	ch <- x.failures
	ch <- x.prestopRefused
}

// Collect implements [prometheus.Collector].
func (x *CheckCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(x.prestopRefused, prometheus.CounterValue, float64(x.p.PrestopRefused()))
	for _, st := range x.p.CheckStats() {
		ch <- prometheus.MustNewConstMetric(x.runs, prometheus.CounterValue, float64(st.Runs), st.Name)
		ch <- prometheus.MustNewConstMetric(x.failures, prometheus.CounterValue, float64(st.Failures), st.Name)
		if st.Runs == 0 {
			continue
		}
		ch <- prometheus.MustNewConstMetric(x.passing, prometheus.GaugeValue, boolValue(st.Passing), st.Name)
		ch <- prometheus.MustNewConstMetric(x.duration, prometheus.GaugeValue, st.LastDuration.Seconds(), st.Name)
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// labelValue writes a state, a reason or a drain's end as a Prometheus
// label value: snake_case, as Prometheus' conventions have it ("tearing
// down" → "tearing_down", "signal terminated" → "signal_terminated").
func labelValue(s string) string {
	return strings.ReplaceAll(strings.ToLower(s), " ", "_")
}
