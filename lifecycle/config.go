package lifecycle

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// Defaults of [Config] (each field says its own). A zero field resolves to
// its default; [Config.WithDefaults] shows them all.
const (
	defaultGracePeriod     = 30 * time.Second
	defaultDrainDelay      = 5 * time.Second
	defaultDrainQuiet      = 1 * time.Second
	defaultTeardownReserve = 3 * time.Second
	defaultMargin          = 1 * time.Second
	// defaultDrainMissProbability is the default of
	// [Config.DrainMissProbability]: ln(1/0.001) ≈ 6.9, so a pod that saw
	// one request a second waits about 6.9 s without an arrival.
	defaultDrainMissProbability = 0.001
	// defaultStopShare is the most of the room between the drain and the
	// teardown reserve that a default [Config.MaxDrainDelay] leaves to the
	// stop phase (never more than half of it).
	defaultStopShare = 5 * time.Second
	// maxGracePeriod is the longest [Config.GracePeriod] accepted: a day.
	// Kubernetes sets no maximum on terminationGracePeriodSeconds, but no
	// drain needs that long — the slowest load balancers take minutes to
	// stop sending (an AWS target group's deregistration delay is at most
	// an hour), and the cluster autoscaler gives a pod 10 minutes by
	// default — so a longer value is a mistake (a unit, a stray digit)
	// that would leave a pod terminating for days, not a plan.
	maxGracePeriod = 24 * time.Hour
)

// None is the one way to ask for no time at all in a [Config] duration
// (DrainDelay, DrainQuiet, TeardownReserve, Margin): a zero field means
// its default, as in [net/http.Server], and a negative one means none, as
// [net.Dialer.KeepAlive] does. In the environment ([modules.FromEnv]) the
// same is written "0s" (Margin has no variable). None for DrainQuiet turns
// the adaptive drain off.
const None time.Duration = -1

// Config is the one time budget of a shutdown. All durations count from D0,
// the moment the drain begins (a preStop call, the first signal,
// [go.uber.org/fx.Shutdowner], or the app stopping — whichever comes first).
//
// The budget must fit: MaxDrainDelay + TeardownReserve + Margin < GracePeriod,
// so that the stop phase (HTTP Shutdown, WebSocket/SSE close) keeps some time.
type Config struct {
	// GracePeriod mirrors the pod's terminationGracePeriodSeconds: the kubelet
	// sends SIGKILL this long after the pod was deleted (preStop included).
	// Default 30s; at most 24h: no drain needs
	// longer, and a longer value is a mistake (a unit, a stray digit).
	GracePeriod time.Duration `yaml:"gracePeriod" json:"gracePeriod"`
	// DrainDelay is how long, at least, the service keeps serving after D0
	// while /readyz answers 503 and every response carries Connection: close,
	// so that proxies stop routing here. Default 5s; [None] for none.
	DrainDelay time.Duration `yaml:"drainDelay" json:"drainDelay"`
	// DrainQuiet is the adaptive drain: once DrainDelay has passed, the
	// drain ends as soon as no new connection has brought a request to a
	// public server for the quiet period (a bare TCP connect, such as a
	// load balancer's TCP health check, does not count): DrainQuiet, or longer for a pod whose traffic
	// before D0 was sparse (see DrainMissProbability). Default 1s; [None]
	// turns it off, and the drain lasts exactly DrainDelay.
	DrainQuiet time.Duration `yaml:"drainQuiet" json:"drainQuiet"`
	// DrainMissProbability is the adaptive drain's accepted risk ε of taking
	// a pause in this pod's own traffic for the end of the proxies' routing.
	// From the rate λ at which work arrived in the minute before D0, the
	// quiet period is max(DrainQuiet, ln(1/ε)/λ), capped by MaxDrainDelay:
	// a proxy still sending at rate λ leaves no gap that long with
	// probability 1 − ε. Default 0.001;
	// it must lie in (0, 1).
	DrainMissProbability float64 `yaml:"drainMissProbability" json:"drainMissProbability"`
	// MaxDrainDelay is the longest the adaptive drain may last; it is what the
	// budget reserves for the drain. Default: all the room the budget
	// leaves — GracePeriod − TeardownReserve − Margin minus the stop phase's
	// share (min(5s, half of that room)), never below
	// DrainDelay; DrainDelay for a fixed drain. It may not be below
	// DrainDelay.
	MaxDrainDelay time.Duration `yaml:"maxDrainDelay" json:"maxDrainDelay"`
	// TeardownReserve is the time kept at the end for the teardown hooks
	// that release resources (workers, clients, pools): the teardown
	// deadline is GracePeriod − Margin, and the hooks share what is left
	// until then ([Coordinator.AtTeardown]) — the reserve, or more if the
	// stop phase ended early. Default 3s; [None] for none.
	TeardownReserve time.Duration `yaml:"teardownReserve" json:"teardownReserve"`
	// Margin is kept free before SIGKILL for the shutdown report and the
	// logger sync. Default 1s; [None] for none.
	Margin time.Duration `yaml:"margin" json:"margin"`
	// PrestopToken, when set, must be sent in header X-Prestop-Token by a
	// preStop caller; other calls get 401 and change nothing. Default empty:
	// no token, and anyone who reaches the handler can drain the pod
	// (logged at WARN when the handler is built). A token no HTTP header
	// can carry as written is refused.
	PrestopToken string `yaml:"prestopToken" json:"-"`
	// IgnoreSignals leaves SIGTERM, SIGINT and SIGHUP alone (for tests, or
	// an app that handles them itself). Default false: the first signal
	// begins the drain and a second one exits at once.
	IgnoreSignals bool `yaml:"ignoreSignals" json:"ignoreSignals"`
}

// ErrBudget is matched (with [errors.Is]) by every error [Config.Validate]
// returns.
var ErrBudget = errors.New("lifecycle: invalid shutdown budget")

// WithDefaults returns c with every zero field set to its default. [None]
// stays None.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.GracePeriod, defaultGracePeriod)
	def(&c.DrainDelay, defaultDrainDelay)
	def(&c.DrainQuiet, defaultDrainQuiet)
	def(&c.TeardownReserve, defaultTeardownReserve)
	def(&c.Margin, defaultMargin)
	if c.DrainMissProbability == 0 {
		c.DrainMissProbability = defaultDrainMissProbability
	}
	if c.MaxDrainDelay == 0 {
		c.MaxDrainDelay = orNone(c.DrainDelay)
		if c.adaptive() {
			c.MaxDrainDelay = max(orNone(c.DrainDelay), defaultMaxDrain(c.GracePeriod, orNone(c.TeardownReserve), orNone(c.Margin)))
		}
	}
	return c
}

// orNone is the time a duration field asks for: [None] (any negative) is 0.
func orNone(d time.Duration) time.Duration { return max(d, 0) }

// adaptive reports whether the drain is adaptive: a quiet period is set.
func (c Config) adaptive() bool { return c.DrainQuiet > 0 }

// defaultMaxDrain is all the room the budget gives an adaptive drain: what
// the grace period leaves after the teardown reserve and the margin, less
// the stop phase's share, min(defaultStopShare, half of it). A budget that
// is valid for a fixed drain stays valid (the caller keeps DrainDelay as
// the floor), and a slow load balancer gets every second the pod can give.
func defaultMaxDrain(grace, reserve, margin time.Duration) time.Duration {
	room := grace - reserve - margin
	if room <= 0 {
		return 0
	}
	return room - min(defaultStopShare, room/2)
}

// show writes a duration as a user wrote it: None as "none".
func show(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return d.String()
}

// showFloat writes a float as compactly as it reads back: 1e-300, not a
// 300-digit decimal.
func showFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Validate resolves defaults and checks the budget. The error names every
// field at fault and its value.
func (c Config) Validate() error {
	// Checked as given, before defaults: a default derived from a bad field
	// (MaxDrainDelay from DrainDelay) is not named.
	var bad confcheck.Problems
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"GracePeriod", c.GracePeriod}, {"MaxDrainDelay", c.MaxDrainDelay}} {
		if f.v < 0 {
			bad.Addf("%s=%v is negative", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"DrainDelay", c.DrainDelay}, {"DrainQuiet", c.DrainQuiet}, {"TeardownReserve", c.TeardownReserve}, {"Margin", c.Margin}} {
		if f.v < 0 && f.v != None {
			bad.Addf("%s=%v is negative (lifecycle.None is none)", f.name, f.v)
		}
	}
	if c.GracePeriod > maxGracePeriod {
		bad.Addf("GracePeriod=%v is above %v, the longest accepted", c.GracePeriod, maxGracePeriod)
	}
	if p := c.DrainMissProbability; p < 0 || p >= 1 || p != p {
		bad.Addf("DrainMissProbability=%s is not in (0, 1)", showFloat(p))
	}
	if err := confcheck.HeaderValue(c.PrestopToken); err != nil {
		bad.Addf("PrestopToken %v", err)
	}
	if len(bad) > 0 {
		return confcheck.NewError(ErrBudget, "lifecycle: "+bad.String())
	}
	c = c.WithDefaults()
	if c.MaxDrainDelay < orNone(c.DrainDelay) {
		return confcheck.NewError(ErrBudget, fmt.Sprintf("lifecycle: MaxDrainDelay=%v is below DrainDelay=%v", c.MaxDrainDelay, show(c.DrainDelay)))
	}
	// Subtract rather than add: durations near the int64 limit must not
	// wrap around into a sum that seems to fit.
	left := c.GracePeriod
	for _, d := range []time.Duration{c.MaxDrainDelay, orNone(c.TeardownReserve), orNone(c.Margin)} {
		if left -= d; left <= 0 {
			break
		}
	}
	if left <= 0 {
		drain := "DrainDelay=" + show(c.DrainDelay)
		if c.MaxDrainDelay != orNone(c.DrainDelay) {
			drain = fmt.Sprintf("MaxDrainDelay=%v", c.MaxDrainDelay)
		}
		msg := fmt.Sprintf("%s + TeardownReserve=%s + Margin=%s", drain, show(c.TeardownReserve), show(c.Margin))
		if sum, ok := sumDurations(c.MaxDrainDelay, orNone(c.TeardownReserve), orNone(c.Margin)); ok {
			msg += fmt.Sprintf(" = %v", sum)
		}
		return confcheck.NewError(ErrBudget, fmt.Sprintf("lifecycle: %s must be below GracePeriod=%v", msg, c.GracePeriod))
	}
	return nil
}

// sumDurations adds non-negative durations; false if the sum overflows.
func sumDurations(ds ...time.Duration) (time.Duration, bool) {
	var sum time.Duration
	for _, d := range ds {
		if d > math.MaxInt64-sum {
			return 0, false
		}
		sum += d
	}
	return sum, true
}

// Plan is the budget resolved into deadlines, as offsets from D0.
type Plan struct {
	Config
	// DrainEnd is the latest end of the drain phase (MaxDrainDelay).
	DrainEnd time.Duration
	// StopDeadline ends the stop phase: HTTP Shutdown and the closing of
	// long-lived sessions must be done; what is left is cut.
	StopDeadline time.Duration
	// TeardownDeadline ends the teardown phase: the last teardown hook's
	// cut.
	TeardownDeadline time.Duration
	// StopTimeout is the fx stop timeout (for [go.uber.org/fx.StopTimeout]):
	// the whole GracePeriod. fx counts it from the moment its stop begins,
	// which can come a little before D0, so GracePeriod − Margin could
	// expire just as the last teardown hook's share ends. The phases keep
	// their own deadlines from D0; SIGKILL bounds the rest.
	StopTimeout time.Duration
}

// NewPlan validates c and derives its plan.
func NewPlan(c Config) (Plan, error) {
	if err := c.Validate(); err != nil {
		return Plan{}, err
	}
	c = c.WithDefaults()
	return Plan{
		Config:           c,
		DrainEnd:         c.MaxDrainDelay,
		StopDeadline:     c.GracePeriod - orNone(c.TeardownReserve) - orNone(c.Margin),
		TeardownDeadline: c.GracePeriod - orNone(c.Margin),
		StopTimeout:      c.GracePeriod,
	}, nil
}

// phases returns the plan's phases in order, each with its planned
// duration (the latest end the budget allows, from the phase's start) and
// an Actual of zero.
func (p Plan) phases() []Phase {
	planned := [len(phaseStates)]time.Duration{
		p.DrainEnd,
		0, // waiting for the stop: zero under SIGTERM
		p.StopDeadline - p.DrainEnd,
		p.TeardownDeadline - p.StopDeadline,
	}
	out := make([]Phase, len(phaseStates))
	for i, s := range phaseStates {
		out[i] = Phase{Name: s.String(), Planned: planned[i]}
	}
	return out
}

// planLog logs the plan as one zap object (the token is never logged).
type planLog Plan

func (p planLog) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddDuration("gracePeriod", p.GracePeriod)
	enc.AddDuration("drainDelay", orNone(p.DrainDelay))
	enc.AddDuration("drainQuiet", orNone(p.DrainQuiet))
	enc.AddDuration("maxDrainDelay", p.MaxDrainDelay)
	if Plan(p).adaptive() {
		// Through encoding/json, a number written compactly (1e-300):
		// AddFloat64 writes every digit of a tiny ε (zap uses 'f' format).
		if err := enc.AddReflected("drainMissProbability", p.DrainMissProbability); err != nil {
			return err
		}
	}
	enc.AddDuration("teardownReserve", orNone(p.TeardownReserve))
	enc.AddDuration("margin", orNone(p.Margin))
	enc.AddDuration("stopDeadline", p.StopDeadline)
	enc.AddDuration("teardownDeadline", p.TeardownDeadline)
	enc.AddDuration("fxStopTimeout", p.StopTimeout)
	enc.AddBool("prestopToken", p.PrestopToken != "")
	return nil
}
