package lifecycle

import (
	"math"
	"net"
	"testing"
	"time"
)

// samplesOf turns per-second arrival counts into the samples the sampler
// would have stored, one a second from t0 (the first at t0 with count 0).
func samplesOf(t0 time.Time, perSecond []int64) []sample {
	ss := []sample{{t0, 0}}
	var n int64
	for i, k := range perSecond {
		n += k
		ss = append(ss, sample{t0.Add(time.Duration(i+1) * time.Second), n})
	}
	return ss
}

func repeat(pattern []int64, times int) []int64 {
	var out []int64
	for range times {
		out = append(out, pattern...)
	}
	return out
}

func TestEstimateRate(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		give []sample
		want float64 // per second
	}{
		{"no samples", nil, 0},
		{"one sample", []sample{{t0, 5}}, 0},
		{"idle", samplesOf(t0, make([]int64, 60)), 0},
		// Busy: every interval saw arrivals, the occupancy rate is
		// unbounded and the count rate stands.
		{"busy", samplesOf(t0, repeat([]int64{20}, 60)), 20},
		// Sparse, Poisson-like: one arrival every 2 s. Count rate 0.5/s,
		// occupancy ½ → ln 2 ≈ 0.69/s: the smaller one.
		{"sparse", samplesOf(t0, repeat([]int64{1, 0}, 30)), 0.5},
		// Bursty: 600 requests in one second a minute. The count rate says
		// 10/s; no gap is that short: one busy interval in 60 → −ln(59/60).
		{"burst once a minute", samplesOf(t0, append([]int64{600}, make([]int64, 59)...)), -math.Log(59.0 / 60)},
		// Rate change: 10/s for 50 s, then nothing for 10 s. The recent
		// silence weighs in through the occupancy: −ln(10/60) ≈ 1.79/s.
		{"rate drops before D0", samplesOf(t0, append(repeat([]int64{10}, 50), make([]int64, 10)...)), -math.Log(10.0 / 60)},
		// Start-up: a pod that served half a second saw 3 requests; the
		// one short interval counts, busy, so the count rate stands.
		{"half a second of serving", []sample{{t0, 0}, {t0.Add(500 * time.Millisecond), 3}}, 6},
		// The last interval (to D0) shorter than half a period counts in
		// the count rate only.
		{"short last interval", append(samplesOf(t0, repeat([]int64{1, 0}, 5)), sample{t0.Add(10*time.Second + 100*time.Millisecond), 6}), 6 / 10.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := estimateRate(tt.give).PerSecond
			if math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("rate = %v/s, want %v/s", got, tt.want)
			}
		})
	}
}

func TestQuietFor(t *testing.T) {
	t.Parallel()
	const floor, most = time.Second, 20 * time.Second
	tests := []struct {
		name      string
		perSecond float64
		eps       float64
		want      time.Duration
	}{
		{"no traffic: the floor", 0, 0.001, floor},
		{"busy: the floor", 50, 0.001, floor},
		{"one a second, ε=1%", 1, 0.01, time.Duration(math.Log(100) * float64(time.Second))},
		{"one every 2 s, ε=0.1%", 0.5, 0.001, time.Duration(2 * math.Log(1000) * float64(time.Second))},
		{"very sparse: capped at the max", 0.01, 0.001, most},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := quietFor(trafficRate{PerSecond: tt.perSecond}, tt.eps, floor, most)
			if d := got - tt.want; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("quietFor(%v/s, ε=%v) = %v, want %v", tt.perSecond, tt.eps, got, tt.want)
			}
		})
	}
}

// The window keeps the last minute: older samples leave it.
func TestTrafficWindowSlides(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	w := testEstimator(t0)
	// 120 s: 10/s for the first minute, 1 every 2 s for the second.
	ss := samplesOf(t0, append(repeat([]int64{10}, 60), repeat([]int64{1, 0}, 30)...))
	for _, s := range ss {
		w.sample(s)
	}
	// D0 half a second after the last sample, nothing new since.
	last := ss[len(ss)-1]
	r, _ := w.begin(last.at.Add(500*time.Millisecond), last.count)
	if r.Window != 60500*time.Millisecond || r.Arrivals != 30 || math.Abs(r.PerSecond-30/60.5) > 1e-9 {
		t.Errorf("begin = %+v, want the last minute (and the half second to D0) only: 60.5s, 30 arrivals, 30/60.5 per second", r)
	}
	before := w.ring
	w.sample(sample{t0.Add(200 * time.Second), 1e6}) // after D0: dropped
	if w.ring != before {
		t.Error("a sample added after D0 was kept")
	}
}

func TestArrivalLogKeepsTheLatest(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	l := testEstimator(t0)
	l.begin(t0, 0)
	clk := l.clock.(*stepClock)
	for i := range 20 {
		clk.now = t0.Add(time.Duration(i) * time.Second)
		l.noteConn(&net.TCPAddr{IP: net.IPv4(10, 0, 0, byte(i)), Port: 1000})
	}
	clk.now = t0.Add(20 * time.Second)
	l.noteConn(nil) // no address: counted, not listed
	seen := l.seen(t0.Add(15 * time.Second))
	n, last, addrs := seen.Arrivals, seen.LastArrival, seen.LateRemotes
	if n != 21 || last != 20*time.Second {
		t.Errorf("count %d last %v, want 21 and 20s after D0", n, last)
	}
	want := []string{"10.0.0.15:1000", "10.0.0.16:1000", "10.0.0.17:1000", "10.0.0.18:1000", "10.0.0.19:1000"}
	if len(addrs) != len(want) {
		t.Fatalf("addrs = %v, want %v", addrs, want)
	}
	for i := range want {
		if addrs[i] != want[i] {
			t.Errorf("addrs = %v, want %v", addrs, want)
			break
		}
	}
	if all := l.seen(t0).LateRemotes; len(all) != recentArrivals-1 {
		t.Errorf("kept %d addresses, want the last %d arrivals less the one without an address", len(all), recentArrivals-1)
	}
}

// A pod that began serving less than a minute before D0 is judged from its
// first arrival: the seconds before a proxy added it do not count.
func TestTrafficWindowStartUp(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name          string
		perSecond     []int64
		wantWindow    time.Duration
		wantRate      float64
		wantUncertain bool
	}{
		// From the first busy second: 5 s, 50 arrivals, the first not counted.
		{"first arrival after 3 s", append([]int64{0, 0, 0}, repeat([]int64{10}, 5)...), 5 * time.Second, 10 * 49.0 / 50, false},
		{"no arrival yet", make([]int64, 8), 8 * time.Second, 0, false},
		// 8 s, 4 arrivals: 0.5/s, less the first: 0.375/s.
		{"arrivals from the start", repeat([]int64{1, 0}, 4), 8 * time.Second, 0.5 * 3 / 4, false},
		// One arrival, moments before D0: no rate to speak of.
		{"one arrival", append(make([]int64, 5), 1), time.Second, 0, true},
		// One busy second of three: the occupancy rate, −ln(2/3), less the first arrival.
		{"one busy second, three arrivals", append(make([]int64, 5), 3, 0, 0), 3 * time.Second, -math.Log(2.0/3) * 2 / 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := testEstimator(t0)
			ss := samplesOf(t0, tt.perSecond)
			for _, s := range ss {
				w.sample(s)
			}
			last := ss[len(ss)-1]
			r, _ := w.begin(last.at, last.count)
			if r.Window != tt.wantWindow || math.Abs(r.PerSecond-tt.wantRate) > 1e-9 || r.Uncertain != tt.wantUncertain {
				t.Errorf("freeze = %+v, want window %v, %v/s, uncertain %v", r, tt.wantWindow, tt.wantRate, tt.wantUncertain)
			}
			if got := quietFor(r, 0.001, time.Second, 20*time.Second); tt.wantUncertain && got != 20*time.Second {
				t.Errorf("quiet for an uncertain rate = %v, want the max", got)
			}
		})
	}
}

// stepClock is a clock a test sets by hand (the estimator reads Now only).
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time { return c.now }

func (c *stepClock) AfterFunc(time.Duration, func()) func() bool { return func() bool { return false } }

// testEstimator is an estimator of the default (adaptive) budget on a clock
// at t0.
func testEstimator(t0 time.Time) *estimator {
	plan := Plan{Config: Config{}.WithDefaults()}
	return newEstimator(&stepClock{now: t0}, plan)
}
