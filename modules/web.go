package modules

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// Config configures the [Web] bundle: one struct, one file or environment.
type Config struct {
	// Lifecycle is the shutdown budget; see [lifecycle.Config] for defaults.
	Lifecycle lifecycle.Config `yaml:"lifecycle" json:"lifecycle"`
	// HTTP is the public server; see [httpmod.Config] (default ":8080").
	HTTP httpmod.Config `yaml:"http" json:"http"`
	// Probe is the admin server; see [probemod.Config] (default ":9090").
	Probe probemod.Config `yaml:"probe" json:"probe"`
	// MemoryLimitRatio is the share of the container's memory limit (its
	// cgroup's, read with automemlimit) that the Go runtime gets as its
	// soft memory limit when the app is built, so that the garbage
	// collector works harder before the kernel's OOM killer steps in.
	// Default 0.9 ([DefaultMemoryLimitRatio]); negative: none. GOMEMLIMIT,
	// if set, is left as it is; AUTOMEMLIMIT (a ratio, or "off") replaces
	// this field. What was done is logged once.
	MemoryLimitRatio float64 `yaml:"memoryLimitRatio" json:"memoryLimitRatio"`
	// FxLogLevel is the level of fx's own events (provided, invoked, hook
	// ran) in the app's *zap.Logger. Default (nil) debug, so that a start
	// logs drainfx's lines, not fx's hundred; fx's errors are logged at
	// error whatever the level.
	FxLogLevel *zapcore.Level `yaml:"fxLogLevel" json:"fxLogLevel"`
}

// DefaultFxLogLevel is the level of fx's own events when
// [Config.FxLogLevel] is nil.
const DefaultFxLogLevel = zapcore.DebugLevel

// fxLogLevel is FxLogLevel with its default applied.
func (c Config) fxLogLevel() zapcore.Level {
	if c.FxLogLevel == nil {
		return DefaultFxLogLevel
	}
	return *c.FxLogLevel
}

// checkAddrs fails if the public and the admin server would listen on one
// port: the second listen would fail start-up anyway, after the first
// server had started.
func (c Config) checkAddrs() error {
	h, a := c.HTTP.WithDefaults().Addr, c.Probe.WithDefaults().Addr
	hHost, hPort, err1 := net.SplitHostPort(h)
	aHost, aPort, err2 := net.SplitHostPort(a)
	if err1 != nil || err2 != nil {
		return nil // the modules' own Validate names a malformed address
	}
	if samePort(hPort, aPort) && sameHost(hHost, aHost) {
		return fmt.Errorf("modules: HTTP.Addr=%q and Probe.Addr=%q: the public and the admin server need a port each", h, a)
	}
	return nil
}

// samePort reports whether two ports of host:port addresses are one fixed
// port ("8080" and "08080" are; "0", a free port each, never is).
func samePort(p, q string) bool {
	n, err1 := strconv.Atoi(p)
	m, err2 := strconv.Atoi(q)
	if err1 != nil || err2 != nil {
		return p == q && p != "" // service names, as net.Listen takes them
	}
	return n == m && n != 0
}

// sameHost reports whether listeners on hosts h and k would clash: the same
// host, or either one on every address ("", "0.0.0.0", "::").
func sameHost(h, k string) bool {
	wildcard := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "" || (ip != nil && ip.IsUnspecified())
	}
	return h == k || wildcard(h) || wildcard(k)
}

// Web returns lifecycle + httpmod + probemod with cfg supplied, fx's events
// logged through the app's *zap.Logger at [Config.FxLogLevel] (if a logger
// is provided; otherwise only fx's errors are written, to stderr),
// [lifecycle.AppOptions] (Serving once every OnStart hook has run, whatever
// fx logger the app uses; a call to fx.Shutdowner begins the drain at
// once), and fx.StopTimeout derived from the budget. Prometheus metrics on
// the admin server are one more line, metricsmod.Module (the module
// github.com/drainfx/drainfx/modules/metricsmod, of its own so that the
// Prometheus client stays out of the graph of an app without it; README,
// "Modules"). As the app is built, Web sets the Go
// runtime's memory limit from the container's ([Config.MemoryLimitRatio])
// unless GOMEMLIMIT is set. An invalid budget, HTTP.Addr and Probe.Addr on
// one port, or an AUTOMEMLIMIT that is neither a ratio nor "off", makes
// fx.New fail with an error naming the fields or variable and values.
//
// Web is a top-level option (it sets fx.StopTimeout and decorates at the
// top level): pass it to fx.New, not to an fx.Module. See
// [lifecycle.AppOptions] for what readiness waits for and its limits.
func Web(cfg Config) fx.Option { return web(cfg, os.Stderr) }

// web is [Web] with the writer of fx's errors when the app has no
// *zap.Logger.
func web(cfg Config, stderr io.Writer) fx.Option {
	lc := cfg.Lifecycle
	plan, err := lifecycle.NewPlan(lc)
	if err != nil {
		return fx.Error(err)
	}
	if err := cfg.checkAddrs(); err != nil {
		return fx.Error(err)
	}
	if err := checkMemoryLimitRatio(cfg.MemoryLimitRatio); err != nil {
		return fx.Error(err)
	}
	level := cfg.fxLogLevel()
	return fx.Options(
		fx.Supply(lc, cfg.HTTP, cfg.Probe),
		lifecycle.Module,
		lifecycle.AppOptions, // Serving once every OnStart hook has run; fx.Shutdowner drains
		httpmod.Module,
		probemod.Module,
		fx.WithLogger(func(p loggerParams) fxevent.Logger {
			if p.Slog != nil { // modules.Slog: fx's events through slog too
				sl := &fxevent.SlogLogger{Logger: p.Slog}
				sl.UseLogLevel(slogLevel(level))
				return sl
			}
			return newFxLogger(p.Logger, level, stderr)
		}),
		fx.StopTimeout(plan.StopTimeout),
		memoryLimit(cfg.MemoryLimitRatio),
	)
}

type loggerParams struct {
	fx.In

	Logger *zap.Logger  `optional:"true"`
	Slog   *slog.Logger `optional:"true"` // from Slog
}

// newFxLogger logs fx's events through log at level, fx's errors at error;
// with no log, it writes fx's errors (only) to stderr, so that a start that
// fails is never silent.
func newFxLogger(log *zap.Logger, level zapcore.Level, stderr io.Writer) fxevent.Logger {
	if log == nil {
		return errorsOnly{&fxevent.ConsoleLogger{W: stderr}}
	}
	zl := &fxevent.ZapLogger{Logger: log.With(zap.String("component", "fx"))}
	zl.UseLogLevel(level)
	return zl
}

// errorsOnly passes on the events that carry an error and drops the others.
type errorsOnly struct{ next fxevent.Logger }

func (l errorsOnly) LogEvent(e fxevent.Event) {
	if eventErr(e) != nil {
		l.next.LogEvent(e)
	}
}

// eventErr is the error an fx event carries, or nil.
func eventErr(e fxevent.Event) error {
	switch e := e.(type) {
	case *fxevent.OnStartExecuted:
		return e.Err
	case *fxevent.OnStopExecuted:
		return e.Err
	case *fxevent.Supplied:
		return e.Err
	case *fxevent.Provided:
		return e.Err
	case *fxevent.Replaced:
		return e.Err
	case *fxevent.Decorated:
		return e.Err
	case *fxevent.Run:
		return e.Err
	case *fxevent.Invoked:
		return e.Err
	case *fxevent.Stopped:
		return e.Err
	case *fxevent.RollingBack:
		return e.StartErr
	case *fxevent.RolledBack:
		return e.Err
	case *fxevent.Started:
		return e.Err
	case *fxevent.LoggerInitialized:
		return e.Err
	}
	return nil
}
