package lifecycle

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// estimator is the adaptive drain, whole: the traffic window it learns this
// pod's rate from while serving, the new connections it sees after D0, and
// the quiet rule that says when the drain ends (see "Estimator" above
// and "The adaptive drain" in the package documentation). The coordinator
// owns it: the sampler feeds the window, the driver asks it when the drain
// ends, and Telemetry passes it the new connections and reads a preview
// of it for metrics.
//
// Lock rule: mu guards every field below it; methods take it themselves.
// The request path's part (noteConn before D0) is lock-free: one clock
// read and one atomic store.
type estimator struct {
	clock Clock
	plan  Plan

	draining atomic.Bool  // D0 has come: new connections are logged
	lastConn atomic.Int64 // clock time of the last new connection, UnixNano

	mu sync.Mutex
	// Before D0: the ring of samples.
	ring    [windowSamples + 1]sample
	n, next int
	// From D0: the estimate taken then, the quiet period (which only grows),
	// and the new connections since.
	d0     time.Time
	rate   trafficRate
	quiet  time.Duration
	count  int64
	last   time.Time
	recent [recentArrivals]arrival
	seenN  int
}

// recentArrivals bounds the remote addresses kept (and logged).
const recentArrivals = 8

type arrival struct {
	at   time.Time
	addr string
}

func newEstimator(clock Clock, plan Plan) *estimator {
	return &estimator{clock: clock, plan: plan}
}

// sample adds a sample of the arrival counters to the window (while
// serving); after D0 it does nothing.
func (e *estimator) sample(s sample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.d0.IsZero() {
		return
	}
	e.ring[e.next] = s
	e.next = (e.next + 1) % len(e.ring)
	if e.n < len(e.ring) {
		e.n++
	}
}

// noteConn records a new connection's first request from remote (nil if
// unknown) now ([Telemetry.NoteNewConnection]).
func (e *estimator) noteConn(remote net.Addr) {
	now := e.clock.Now()
	e.lastConn.Store(now.UnixNano())
	if !e.draining.Load() {
		return
	}
	addr := ""
	if remote != nil {
		addr = remote.String()
	}
	e.mu.Lock()
	e.count++
	e.last = now
	e.recent[e.seenN%recentArrivals] = arrival{now, addr}
	e.seenN++
	e.mu.Unlock()
}

// begin takes the estimate at D0, with a last sample of the counters (n),
// and returns the rate and the quiet period it gives. The window is
// frozen from then on.
func (e *estimator) begin(d0 time.Time, n int64) (trafficRate, time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.d0 = d0
	if e.plan.adaptive() {
		e.rate = e.estimateLocked(sample{d0, n})
		e.quiet = e.quietFor(e.rate)
	}
	e.draining.Store(true)
	return e.rate, e.quiet
}

// quietEnd is the one rule of the adaptive drain's end: the moment the
// quiet period since the last new connection (or since D0: a connection
// before it says nothing of the proxies after it) runs out, as known now.
// A pod that saw no arrival in its window but is sent connections during
// the drain judges its quiet period by the rate since D0 (it only grows).
func (e *estimator) quietEnd(now time.Time) time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r := e.rate; r.Window > 0 && r.Arrivals == 0 && !r.Uncertain && e.count > 0 {
		since := now.Sub(e.d0)
		if q := e.quietFor(trafficRate{Window: since, Arrivals: e.count, PerSecond: float64(e.count) / since.Seconds()}); q > e.quiet {
			e.quiet = q
		}
	}
	last := time.Unix(0, e.lastConn.Load())
	if last.Before(e.d0) {
		last = e.d0
	}
	return last.Add(e.quiet)
}

// preview is the rate and quiet period a drain beginning now would use,
// for metrics before D0; false once D0 has come or with no sample yet.
func (e *estimator) preview(now time.Time, n int64) (trafficRate, time.Duration, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.d0.IsZero() || e.n == 0 || !e.plan.adaptive() {
		return trafficRate{}, 0, false
	}
	r := e.estimateLocked(sample{now, n})
	return r, e.quietFor(r), true
}

// seen is what the drain has seen by now: the estimate, the quiet period,
// the new connections since D0, and the remote addresses of those at or
// after lateFrom (the last quarter of the drain, at its end).
func (e *estimator) seen(lateFrom time.Time) DrainSeen {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := DrainSeen{Quiet: e.quiet, Arrivals: e.count}
	s.setRate(e.rate)
	if !e.last.IsZero() {
		s.LastArrival = e.last.Sub(e.d0)
	}
	if lateFrom.IsZero() {
		return s
	}
	k := min(e.seenN, recentArrivals)
	for i := e.seenN - k; i < e.seenN; i++ {
		a := e.recent[i%recentArrivals]
		if !a.at.Before(lateFrom) && a.addr != "" {
			s.LateRemotes = append(s.LateRemotes, a.addr)
		}
	}
	return s
}

func (e *estimator) quietFor(r trafficRate) time.Duration {
	return quietFor(r, e.plan.DrainMissProbability, e.plan.DrainQuiet, e.plan.MaxDrainDelay)
}

// estimateLocked reads the rate off the window with a last sample.
func (e *estimator) estimateLocked(last sample) trafficRate {
	ss := make([]sample, 0, e.n+1)
	for i := range e.n {
		ss = append(ss, e.ring[(e.next-e.n+i+len(e.ring))%len(e.ring)])
	}
	ss = append(ss, last)
	if e.n < len(e.ring) && last.count > ss[0].count {
		// Start-up (the ring never filled: the first sample is the
		// start of serving): from the interval of the first arrival.
		for len(ss) > 2 && ss[1].count == ss[0].count {
			ss = ss[1:]
		}
		r := estimateRate(ss)
		if r.Arrivals <= 1 {
			return trafficRate{Window: r.Window, Arrivals: r.Arrivals, Uncertain: true}
		}
		r.PerSecond *= float64(r.Arrivals-1) / float64(r.Arrivals)
		return r
	}
	return estimateRate(ss)
}
