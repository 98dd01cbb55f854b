package lifecycle

import (
	"errors"
	"fmt"
	"math"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// Defaults of [Config]. A zero field resolves to its default.
const (
	DefaultGracePeriod     = 30 * time.Second
	DefaultDrainDelay      = 5 * time.Second
	DefaultTeardownReserve = 3 * time.Second
	DefaultMargin          = 1 * time.Second
	// DefaultDrainMissProbability is the default of
	// [Config.DrainMissProbability]: ln(1/0.001) ≈ 6.9, so a pod that saw
	// one request a second waits about 6.9 s without an arrival.
	DefaultDrainMissProbability = 0.001
	// DefaultStopShare is the most of the room between the drain and the
	// teardown reserve that a default [Config.MaxDrainDelay] leaves to the
	// stop phase (never more than half of it).
	DefaultStopShare = 5 * time.Second
)

// NoDelay is a DrainDelay (or Margin, or TeardownReserve) that asks for no
// time at all. A zero field means "the default", as in [net/http.Server], so
// the smallest positive duration stands for "none"; it is below anything a
// clock can tell apart from zero.
const NoDelay = time.Nanosecond

// Config is the one time budget of a shutdown. All durations count from D0,
// the moment the drain begins (a preStop call, the first SIGTERM/SIGINT,
// [go.uber.org/fx.Shutdowner], or the app stopping — whichever comes first).
//
// The budget must fit: MaxDrainDelay + TeardownReserve + Margin < GracePeriod,
// so that the stop phase (HTTP Shutdown, WebSocket/SSE close) keeps some time.
type Config struct {
	// GracePeriod mirrors the pod's terminationGracePeriodSeconds: the kubelet
	// sends SIGKILL this long after the pod was deleted (preStop included).
	// Default 30s.
	GracePeriod time.Duration `yaml:"gracePeriod" json:"gracePeriod"`
	// DrainDelay is how long, at least, the service keeps serving after D0
	// while /readyz answers 503 and every response carries Connection: close,
	// so that proxies stop routing here. Default 5s; use [NoDelay] for none.
	DrainDelay time.Duration `yaml:"drainDelay" json:"drainDelay"`
	// DrainQuiet turns on the adaptive drain: once DrainDelay has passed, the
	// drain ends as soon as no new connection has reached a public listener
	// for the quiet period: DrainQuiet, or longer for a pod whose traffic
	// before D0 was sparse (see DrainMissProbability). Default 0: off, the
	// drain lasts exactly DrainDelay (the modules.Web bundle turns it on at
	// 1s).
	DrainQuiet time.Duration `yaml:"drainQuiet" json:"drainQuiet"`
	// DrainMissProbability is the adaptive drain's accepted risk ε of taking
	// a pause in this pod's own traffic for the end of the proxies' routing.
	// From the rate λ at which work arrived in the minute before D0, the
	// quiet period is max(DrainQuiet, ln(1/ε)/λ), capped by MaxDrainDelay:
	// a proxy still sending at rate λ leaves no gap that long with
	// probability 1 − ε. Default 0.001 ([DefaultDrainMissProbability]);
	// it must lie in (0, 1).
	DrainMissProbability float64 `yaml:"drainMissProbability" json:"drainMissProbability"`
	// MaxDrainDelay is the longest the adaptive drain may last; it is what the
	// budget reserves for the drain. Default: DrainDelay when DrainQuiet is 0;
	// with the adaptive drain, all the room the budget leaves:
	// GracePeriod − TeardownReserve − Margin minus the stop phase's share
	// (min([DefaultStopShare], half of that room)), never below DrainDelay.
	// It may not be below DrainDelay.
	MaxDrainDelay time.Duration `yaml:"maxDrainDelay" json:"maxDrainDelay"`
	// TeardownReserve is the time kept at the end for the OnStop hooks that
	// release resources (workers, clients, pools), shared among the hooks
	// wrapped with [Coordinator.StopHook]. Default 3s.
	TeardownReserve time.Duration `yaml:"teardownReserve" json:"teardownReserve"`
	// Margin is kept free before SIGKILL for the shutdown report and the
	// logger sync. Default 1s.
	Margin time.Duration `yaml:"margin" json:"margin"`
	// PrestopToken, when set, must be sent in header X-Prestop-Token by a
	// preStop caller; other calls get 401 and change nothing. Default empty:
	// no token.
	PrestopToken string `yaml:"prestopToken" json:"-"`
	// IgnoreSignals leaves SIGTERM/SIGINT alone (for tests, or an app that
	// handles them itself). Default false: the first signal begins the drain
	// and a second one exits at once.
	IgnoreSignals bool `yaml:"ignoreSignals" json:"ignoreSignals"`
}

// ErrBudget is matched (with [errors.Is]) by every error [Config.Validate]
// returns.
var ErrBudget = errors.New("lifecycle: invalid shutdown budget")

type budgetError struct{ msg string }

func (e *budgetError) Error() string { return "lifecycle: " + e.msg }
func (e *budgetError) Is(target error) bool {
	return target == ErrBudget
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.GracePeriod == 0 {
		c.GracePeriod = DefaultGracePeriod
	}
	if c.DrainDelay == 0 {
		c.DrainDelay = DefaultDrainDelay
	}
	if c.TeardownReserve == 0 {
		c.TeardownReserve = DefaultTeardownReserve
	}
	if c.Margin == 0 {
		c.Margin = DefaultMargin
	}
	if c.DrainMissProbability == 0 {
		c.DrainMissProbability = DefaultDrainMissProbability
	}
	if c.MaxDrainDelay == 0 {
		c.MaxDrainDelay = c.DrainDelay
		if c.DrainQuiet > 0 {
			c.MaxDrainDelay = max(c.DrainDelay, defaultMaxDrain(c.GracePeriod, c.TeardownReserve, c.Margin))
		}
	}
	return c
}

// defaultMaxDrain is all the room the budget gives an adaptive drain: what
// the grace period leaves after the teardown reserve and the margin, less
// the stop phase's share, min(DefaultStopShare, half of it). A budget that
// is valid for a fixed drain stays valid (the caller keeps DrainDelay as
// the floor), and a slow load balancer gets every second the pod can give.
func defaultMaxDrain(grace, reserve, margin time.Duration) time.Duration {
	room := grace - reserve - margin
	if room <= 0 {
		return 0
	}
	return room - min(DefaultStopShare, room/2)
}

// Validate resolves defaults and checks the budget. The error names every
// field at fault and its value.
func (c Config) Validate() error {
	// Negative values are checked as given, before defaults: a default
	// derived from a bad field (MaxDrainDelay from DrainDelay) is not named.
	var bad confcheck.Problems
	bad.Negative("GracePeriod", c.GracePeriod)
	bad.Negative("DrainDelay", c.DrainDelay)
	bad.Negative("DrainQuiet", c.DrainQuiet)
	bad.Negative("MaxDrainDelay", c.MaxDrainDelay)
	bad.Negative("TeardownReserve", c.TeardownReserve)
	bad.Negative("Margin", c.Margin)
	if p := c.DrainMissProbability; p < 0 || p >= 1 || p != p {
		bad.Addf("DrainMissProbability=%v is not in (0, 1)", p)
	}
	if len(bad) > 0 {
		return &budgetError{bad.String()}
	}
	c = c.WithDefaults()
	if c.MaxDrainDelay < c.DrainDelay {
		return &budgetError{fmt.Sprintf("MaxDrainDelay=%v is below DrainDelay=%v", c.MaxDrainDelay, c.DrainDelay)}
	}
	// Subtract rather than add: durations near the int64 limit must not
	// wrap around into a sum that seems to fit.
	left := c.GracePeriod
	for _, d := range []time.Duration{c.MaxDrainDelay, c.TeardownReserve, c.Margin} {
		if left -= d; left <= 0 {
			break
		}
	}
	if left <= 0 {
		drain := fmt.Sprintf("DrainDelay=%v", c.DrainDelay)
		if c.MaxDrainDelay != c.DrainDelay {
			drain = fmt.Sprintf("MaxDrainDelay=%v", c.MaxDrainDelay)
		}
		msg := fmt.Sprintf("%s + TeardownReserve=%v + Margin=%v", drain, c.TeardownReserve, c.Margin)
		if sum, ok := sumDurations(c.MaxDrainDelay, c.TeardownReserve, c.Margin); ok {
			msg += fmt.Sprintf(" = %v", sum)
		}
		return &budgetError{fmt.Sprintf("%s must be below GracePeriod=%v", msg, c.GracePeriod)}
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
	// TeardownDeadline ends the teardown phase: the last OnStop hook's cut.
	TeardownDeadline time.Duration
	// StopTimeout is the fx stop timeout (for [go.uber.org/fx.StopTimeout]):
	// the whole GracePeriod. fx counts it from the moment its stop begins,
	// which can come a little before D0 (fxtest, Shutdowner, httpmod's
	// OnStop setting D0), so GracePeriod − Margin could expire just as the
	// last teardown hook's share ends and fx would skip the report. The
	// phases keep their own deadlines from D0; SIGKILL bounds the rest.
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
		StopDeadline:     c.GracePeriod - c.TeardownReserve - c.Margin,
		TeardownDeadline: c.GracePeriod - c.Margin,
		StopTimeout:      c.GracePeriod,
	}, nil
}

// MarshalLogObject logs the plan as one zap object (the token is never logged).
func (p Plan) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddDuration("gracePeriod", p.GracePeriod)
	enc.AddDuration("drainDelay", p.DrainDelay)
	enc.AddDuration("drainQuiet", p.DrainQuiet)
	enc.AddDuration("maxDrainDelay", p.MaxDrainDelay)
	if p.DrainQuiet > 0 {
		enc.AddFloat64("drainMissProbability", p.DrainMissProbability)
	}
	enc.AddDuration("teardownReserve", p.TeardownReserve)
	enc.AddDuration("margin", p.Margin)
	enc.AddDuration("stopDeadline", p.StopDeadline)
	enc.AddDuration("teardownDeadline", p.TeardownDeadline)
	enc.AddDuration("fxStopTimeout", p.StopTimeout)
	enc.AddBool("prestopToken", p.PrestopToken != "")
	return nil
}
