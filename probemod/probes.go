package probemod

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// The probe paths [Probes.Register] mounts.
const (
	PathLivez    = "/livez"
	PathHealthz  = "/healthz" // alias of /livez
	PathReadyz   = "/readyz"
	PathStartupz = "/startupz"
)

// Probes answers the Kubernetes probes from the coordinator's state and the
// readiness checks. Mount it on the admin server (as [New] does), on any
// [http.ServeMux] with [Probes.Register], or route its handlers
// ([Probes.Livez], [Probes.Readyz], [Probes.Startupz]) on any router. It is
// safe for concurrent use.
type Probes struct {
	c      *lifecycle.Coordinator
	clock  lifecycle.Clock
	log    *zap.Logger
	checks []*checker // sorted by name
	runs   *tracker   // check goroutines
	cancel context.CancelFunc
	// prestop is the admin server's preStop handler, once an admin server
	// serves these probes.
	prestop atomic.Pointer[prestop]
}

// PrestopRefused counts the calls to the admin server's /prestop refused
// for a bad or missing token (0 when no admin server serves these probes).
func (p *Probes) PrestopRefused() int64 {
	if h := p.prestop.Load(); h != nil {
		return h.Refused()
	}
	return 0
}

// NewProbes returns the probes for the coordinator c and the checks. Options
// [WithLogger] and [WithClock] apply; the others are for [New]. Checks are
// listed and run in name order. The checks' goroutines belong to the
// returned Probes: call [Probes.Close] when done.
func NewProbes(cfg Config, c *lifecycle.Coordinator, checks []Check, opts ...Option) (*Probes, error) {
	if c == nil {
		return nil, configErrorf("nil *lifecycle.Coordinator")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	checks, err := validateChecks(cfg, checks)
	if err != nil {
		return nil, err
	}
	o := newOptions(opts)
	slices.SortFunc(checks, func(a, b Check) int { return strings.Compare(a.Name, b.Name) })
	base, cancel := context.WithCancel(context.Background())
	p := &Probes{c: c, clock: o.clock, log: o.log, runs: new(tracker), cancel: cancel}
	for _, ck := range checks {
		p.checks = append(p.checks, &checker{Check: ck, clock: o.clock, log: o.log, runs: p.runs, base: base})
	}
	return p, nil
}

// CheckStats returns what each readiness check has done so far, in name
// order. It takes each check's lock once and runs nothing: call it at the
// rate of a metrics scrape. The cached /readyz path does not touch what it
// reads.
func (p *Probes) CheckStats() []CheckStats {
	out := make([]CheckStats, len(p.checks))
	for i, k := range p.checks {
		out[i] = k.snapshot()
	}
	return out
}

// Register mounts /livez, /healthz, /readyz and /startupz on mux, for GET
// and HEAD (patterns "GET /livez" and so on; mux answers another method
// with 405). It panics, as [http.ServeMux.Handle] does, if mux already has
// a pattern that conflicts with one of them.
func (p *Probes) Register(mux *http.ServeMux) {
	mux.HandleFunc(http.MethodGet+" "+PathLivez, p.Livez)
	mux.HandleFunc(http.MethodGet+" "+PathHealthz, p.Livez)
	mux.HandleFunc(http.MethodGet+" "+PathReadyz, p.Readyz)
	mux.HandleFunc(http.MethodGet+" "+PathStartupz, p.Startupz)
}

// Close stops starting check runs, cancels the context of the runs in
// flight and waits for them until ctx ends. Probes answered after Close
// report the checks failed with [ErrClosed]. It may be called again to wait
// longer.
func (p *Probes) Close(ctx context.Context) error {
	p.cancel()
	if n, err := p.runs.close(ctx); err != nil {
		return fmt.Errorf("%d check runs still in flight: %w", n, err)
	}
	return nil
}

// Livez is the liveness probe: 200 "ok" as long as the process serves HTTP.
// The drain never touches it: a failing liveness probe gets the container
// killed. It serves every method: mount it for GET (which covers HEAD).
func (p *Probes) Livez(w http.ResponseWriter, r *http.Request) {
	if !verbose(r) {
		writeBody(w, http.StatusOK, okBody)
		return
	}
	writeBody(w, http.StatusOK, livezVerbose)
}

// Startupz is the startup probe: 503 until the coordinator has left
// [lifecycle.StateStarting] (every OnStart hook has run), then 200. It
// serves every method: mount it for GET (which covers HEAD).
func (p *Probes) Startupz(w http.ResponseWriter, r *http.Request) {
	var line report
	if p.c.State() == lifecycle.StateStarting {
		line = report{"starting", errNotStarted}
	} else {
		line = report{"started", nil}
	}
	p.answer(w, "startupz", []report{line}, verbose(r))
}

// Readyz is the readiness probe: 200 "ok" while the coordinator is serving
// ([lifecycle.StateServing]) and every check passes; 503 before the
// start, from D0 on, and while a check fails. While not ready from the
// coordinator's state it runs no check, unless ?verbose asks for every line.
// A check run waits no longer than the request's context. It serves every
// method: mount it for GET (which covers HEAD).
func (p *Probes) Readyz(w http.ResponseWriter, r *http.Request) {
	v := verbose(r)
	st := p.stateLine()
	if !v {
		if st.err != nil {
			p.answer(w, "readyz", []report{st}, false)
			return
		}
		if p.cachedPass() { // the hot path: no allocation
			writeBody(w, http.StatusOK, okBody)
			return
		}
	}
	lines := make([]report, 0, 1+len(p.checks))
	lines = append(lines, st)
	for i, err := range p.run(r.Context()) {
		lines = append(lines, report{p.checks[i].Name, err})
	}
	p.answer(w, "readyz", lines, v)
}

// cachedPass reports whether every check has a fresh passing outcome,
// without running anything.
func (p *Probes) cachedPass() bool {
	now := p.clock.Now()
	for _, k := range p.checks {
		if o, fresh := k.fresh(now); !fresh || o.err != nil {
			return false
		}
	}
	return true
}

// run returns each check's error (nil: passing), running the stale ones
// concurrently, so a probe waits at most for the longest timeout.
func (p *Probes) run(ctx context.Context) []error {
	now := p.clock.Now()
	errs := make([]error, len(p.checks))
	calls := make([]*call, len(p.checks))
	for i, k := range p.checks {
		if o, ok := k.fresh(now); ok {
			errs[i] = o.err
			continue
		}
		c, o := k.begin(now)
		if c == nil {
			errs[i] = o.err
		}
		calls[i] = c
	}
	for i, c := range calls {
		if c != nil {
			errs[i] = p.checks[i].wait(ctx, c)
		}
	}
	return errs
}

// stateLine is the coordinator's part of /readyz.
func (p *Probes) stateLine() report {
	switch st := p.c.State(); st {
	case lifecycle.StateStarting:
		return report{"starting", errNotStarted}
	case lifecycle.StateServing:
		return report{"serving", nil}
	default:
		// From D0 on: every state after serving passes through it, so D0
		// is set. Off the hot path: the snapshot reads the gauges.
		s := p.c.Telemetry().Report()
		return report{st.String(), shown(fmt.Errorf("draining since %s (%s)", s.D0.UTC().Format(timeFormat), s.Reason))}
	}
}

const timeFormat = "2006-01-02T15:04:05.000Z07:00"

var errNotStarted = shown(errors.New("not started"))

// report is one line of probe output.
type report struct {
	name string
	err  error
}

// answer writes the probe's answer: 200 "ok" or 503 with the failed lines;
// with verbose, every line and "<probe> check passed|failed".
func (p *Probes) answer(w http.ResponseWriter, probe string, lines []report, verbose bool) {
	failed := false
	for _, l := range lines {
		failed = failed || l.err != nil
	}
	if !failed && !verbose {
		writeBody(w, http.StatusOK, okBody)
		return
	}
	var b strings.Builder
	for _, l := range lines {
		switch {
		case l.err != nil:
			fmt.Fprintf(&b, "[-]%s failed: %s\n", l.name, oneLine(publicReason(l.err)))
		case verbose:
			fmt.Fprintf(&b, "[+]%s ok\n", l.name)
		}
	}
	code := http.StatusOK
	if failed {
		code = http.StatusServiceUnavailable
		fmt.Fprintf(&b, "%s check failed\n", probe)
	} else {
		fmt.Fprintf(&b, "%s check passed\n", probe)
	}
	writeBody(w, code, []byte(b.String()))
}

var (
	okBody       = []byte("ok")
	livezVerbose = []byte("[+]ping ok\nlivez check passed\n")

	// Shared header values, set without Header.Set's allocation. The
	// capacity is the length, so an append by anyone copies.
	textPlain = []string{"text/plain; charset=utf-8"}[:1:1]
	nosniff   = []string{"nosniff"}[:1:1]
	noStore   = []string{"no-store"}[:1:1]
)

// writeBody writes a probe's answer. A write error means the prober went
// away: there is no one left to tell.
func writeBody(w http.ResponseWriter, code int, body []byte) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["X-Content-Type-Options"] = nosniff
	h["Cache-Control"] = noStore
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// verbose reports whether the query has a "verbose" key, with any value or
// none, as the Kubernetes apiserver reads it. It does not allocate.
func verbose(r *http.Request) bool {
	q := r.URL.RawQuery
	for q != "" {
		var part string
		part, q, _ = strings.Cut(q, "&")
		key, _, _ := strings.Cut(part, "=")
		if key == "verbose" {
			return true
		}
	}
	return false
}
