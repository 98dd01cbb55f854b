package lifecycle

import (
	"fmt"
	"math"
	"time"

	"go.uber.org/zap/zapcore"
)

// The traffic window: how the adaptive drain learns this pod's own rate of
// arrivals before D0. While serving, the coordinator samples the arrival
// counters of the public servers ([Coordinator.TrackArrivals]) every
// sampleEvery and keeps the last windowSamples intervals (windowSamples+1
// samples): a sliding window of one minute, no decay within it. The request path pays nothing: the
// counters are the ones the servers keep for their in-flight counts.
const (
	sampleEvery   = time.Second
	windowSamples = 60
)

// Estimator. Two rates are read off the window and the smaller one is used:
//
//   - the count rate, arrivals / time covered;
//   - the occupancy rate, −ln(1 − p)/τ, where p is the share of sampling
//     intervals (length τ) in which anything arrived.
//
// For Poisson arrivals both estimate the same λ (no arrival in τ has
// probability e^(−λτ)). For bursty traffic they differ, and the occupancy
// rate is the honest one: a burst of a thousand requests once a minute is a
// rate of one burst a minute as far as a quiet gap is concerned, not of
// sixteen requests a second. Taking the smaller rate can only lengthen the
// quiet period. When every interval saw arrivals the occupancy rate is
// unbounded and the count rate stands; with no arrival in the window the
// rate is 0 and the plain DrainQuiet rule applies.
//
// Start-up: a pod that began serving less than a minute before D0 is judged
// from the sampling interval of its first arrival on. Before that no proxy
// routed to it (being added to a load balancer takes seconds, as being
// removed does), and that time says nothing of its traffic. The first
// arrival itself only marks the start: the rate is scaled by (n − 1)/n for
// n arrivals, so a pod that saw a handful is not judged busier than it is,
// and a pod that saw one cannot estimate a rate at all: it is Uncertain,
// and its drain waits up to MaxDrainDelay.
//
// After D0: a pod that saw no arrival in its window, and then sees new
// connections during the drain, is being sent work after all (a pod just
// added to a load balancer, a long gap in sparse traffic). Its quiet
// period is then judged by the rate since D0, arrivals / time since D0,
// re-read each time the drain wakes; it only ever grows.

type sample struct {
	at    time.Time
	count int64
}

// trafficRate is what the adaptive drain learnt of this pod's traffic in
// the window before D0 (the fields of the same names in [DrainSeen]).
type trafficRate struct {
	Window    time.Duration
	Arrivals  int64
	PerSecond float64
	Uncertain bool
}

// rateLog writes a rate as zap fields.
type rateLog trafficRate

func (r rateLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddDuration("window", r.Window)
	enc.AddInt64("arrivals", r.Arrivals)
	enc.AddFloat64("perSecond", math.Round(r.PerSecond*1000)/1000)
	if r.Uncertain {
		enc.AddBool("uncertain", true)
	}
	return nil
}

// estimateRate reads the rate off samples in time order.
func estimateRate(ss []sample) trafficRate {
	if len(ss) < 2 {
		return trafficRate{}
	}
	first, last := ss[0], ss[len(ss)-1]
	r := trafficRate{Window: last.at.Sub(first.at), Arrivals: last.count - first.count}
	if r.Window <= 0 || r.Arrivals <= 0 {
		r.Arrivals = max(r.Arrivals, 0)
		return r
	}
	countRate := float64(r.Arrivals) / r.Window.Seconds()

	// Occupancy over the intervals at least half a sampling period long
	// (the last one, ending at D0, is usually shorter: it counts in the
	// count rate only).
	var total, busy int
	var length time.Duration
	for i := 1; i < len(ss); i++ {
		d := ss[i].at.Sub(ss[i-1].at)
		if d < sampleEvery/2 {
			continue
		}
		total++
		length += d
		if ss[i].count > ss[i-1].count {
			busy++
		}
	}
	r.PerSecond = countRate
	if total > 0 && busy < total {
		tau := length.Seconds() / float64(total)
		occRate := -math.Log(1-float64(busy)/float64(total)) / tau
		r.PerSecond = min(countRate, occRate)
	}
	return r
}

// quietFor is the quiet period that ends the adaptive drain for a pod whose
// traffic arrived at rate λ: no arrival for ln(1/ε)/λ has probability ε
// while a proxy still sends at that rate. Never below floor (DrainQuiet),
// never above ceiling (MaxDrainDelay: the drain ends there anyway); the floor
// alone with no traffic.
func quietFor(r trafficRate, eps float64, floor, ceiling time.Duration) time.Duration {
	perSecond := r.PerSecond
	if r.Uncertain {
		return max(floor, ceiling)
	}
	if perSecond <= 0 {
		return floor
	}
	secs := math.Log(1/eps) / perSecond
	if secs >= ceiling.Seconds() {
		return max(floor, ceiling)
	}
	return max(floor, time.Duration(secs*float64(time.Second)))
}

// DrainSeen is what the drain saw: the traffic before D0 that set its quiet
// period, and the arrivals after D0 (the proxies still sending).
type DrainSeen struct {
	// Window is the time the rate estimate covers: up to one minute before
	// D0, less for a pod that served for less.
	Window time.Duration `json:"window"`
	// WindowArrivals is the work that arrived in the window (requests,
	// session opens, RPCs).
	WindowArrivals int64 `json:"windowArrivals"`
	// PerSecond is the estimated rate λ: the smaller of the count rate and
	// the occupancy rate (see "The adaptive drain" in the package
	// documentation); 0 with no arrival. At start-up the first arrival is
	// not counted in it, only in WindowArrivals: (n − 1)/n of the rate over
	// Window.
	PerSecond float64 `json:"perSecond"`
	// Uncertain: work arrived, but too little to estimate a rate (a pod
	// that began serving moments before D0). The drain waits up to
	// MaxDrainDelay, as for a rate near zero.
	Uncertain bool `json:"uncertain,omitempty"`
	// Quiet is the quiet period used: how long without a new connection
	// ended the drain (zero for a fixed drain).
	Quiet time.Duration `json:"quiet"`
	// Arrivals counts the new connections whose first request reached the
	// public servers from D0 to the drain's end
	// ([Telemetry.NoteNewConnection]).
	Arrivals int64 `json:"arrivals"`
	// LastArrival is the last of them, from D0: the propagation delay this
	// pod observed (0 if none arrived).
	LastArrival time.Duration `json:"lastArrival"`
	// LateRemotes are the remote addresses (at most 8) of connections that
	// arrived in the last quarter of the drain: the hops still sending.
	LateRemotes []string `json:"lateRemotes,omitempty"`
}

// rate is the estimate of the traffic before D0.
func (s DrainSeen) rate() trafficRate {
	return trafficRate{Window: s.Window, Arrivals: s.WindowArrivals, PerSecond: s.PerSecond, Uncertain: s.Uncertain}
}

// setRate sets the estimate of the traffic before D0.
func (s *DrainSeen) setRate(r trafficRate) {
	s.Window, s.WindowArrivals, s.PerSecond, s.Uncertain = r.Window, r.Arrivals, r.PerSecond, r.Uncertain
}

// drainSeenLog writes what the drain saw as zap fields.
type drainSeenLog DrainSeen

func (s drainSeenLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	_ = enc.AddObject("rate", rateLog(DrainSeen(s).rate()))
	enc.AddDuration("quiet", s.Quiet)
	enc.AddInt64("arrivals", s.Arrivals)
	enc.AddDuration("lastArrival", s.LastArrival)
	if len(s.LateRemotes) > 0 {
		_ = enc.AddArray("lateRemotes", zapcore.ArrayMarshalerFunc(func(a zapcore.ArrayEncoder) error {
			for _, r := range s.LateRemotes {
				a.AppendString(r)
			}
			return nil
		}))
	}
	return nil
}

// describe says the rate in words, for a person reading the log.
func (r trafficRate) describe() string {
	switch {
	case r.Window == 0:
		return "no traffic measured"
	case r.Uncertain:
		return fmt.Sprintf("%d arrivals in %v, too few to judge", r.Arrivals, r.Window.Round(time.Second))
	default:
		return fmt.Sprintf("%.3g/s over the last %v", r.PerSecond, r.Window.Round(time.Second))
	}
}
