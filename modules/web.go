package modules

import (
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules/metricsmod"
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
	// Metrics is the admin server's /metrics; see [metricsmod.Config].
	Metrics metricsmod.Config `yaml:"metrics" json:"metrics"`
	// FxLogLevel is the level of fx's own events (provided, invoked, hook
	// ran). Default info; errors are always logged at error.
	FxLogLevel zapcore.Level `yaml:"fxLogLevel" json:"fxLogLevel"`
	// FixedDrain turns the adaptive drain off: the drain lasts exactly
	// Lifecycle.DrainDelay. Default false: the bundle drains adaptively,
	// with Lifecycle.DrainQuiet = [DefaultDrainQuiet] when it is zero.
	FixedDrain bool `yaml:"fixedDrain" json:"fixedDrain"`
}

// DefaultDrainQuiet is the bundle's quiet period for the adaptive drain: the
// drain ends (after DrainDelay) once no new connection has reached the
// public port for this long, because the proxies have stopped sending.
const DefaultDrainQuiet = time.Second

// LifecycleConfig is the lifecycle configuration the bundle supplies: Lifecycle
// with the bundle's adaptive-drain default applied.
func (c Config) LifecycleConfig() lifecycle.Config {
	lc := c.Lifecycle
	if c.FixedDrain {
		lc.DrainQuiet = 0
	} else if lc.DrainQuiet == 0 {
		lc.DrainQuiet = DefaultDrainQuiet
	}
	return lc
}

// Web returns lifecycle + httpmod + probemod + metricsmod with cfg
// supplied, fx's events logged through the app's *zap.Logger at
// [Config.FxLogLevel] (if a logger is provided; nothing is logged
// otherwise), [lifecycle.DrainOnShutdown] (a call to fx.Shutdowner begins
// the drain at once), and fx.StopTimeout derived from the budget. The
// metrics go on the app's *prometheus.Registry if it provides one, else on
// a registry of their own ([metricsmod.Metrics.Registry]). An invalid
// budget makes fx.New fail with an error naming the fields and values.
//
// Web is a top-level option (it sets fx.StopTimeout): pass it to fx.New, not
// to an fx.Module.
func Web(cfg Config) fx.Option {
	lc := cfg.LifecycleConfig()
	plan, err := lifecycle.NewPlan(lc)
	if err != nil {
		return fx.Error(err)
	}
	return fx.Options(
		fx.Supply(lc, cfg.HTTP, cfg.Probe, cfg.Metrics),
		lifecycle.Module,
		lifecycle.DrainOnShutdown,
		httpmod.Module,
		probemod.Module,
		metricsmod.Module,
		fx.WithLogger(func(p loggerParams) fxevent.Logger {
			return newFxLogger(p.Logger, cfg.FxLogLevel, p.Coordinator)
		}),
		fx.StopTimeout(plan.StopTimeout),
	)
}

type loggerParams struct {
	fx.In

	Logger      *zap.Logger `optional:"true"`
	Coordinator *lifecycle.Coordinator
}

// fxLogger logs fx's events through zap and tells the coordinator when fx
// reports that every OnStart hook has run (that is when /startupz passes)
// and when app.Run caught a signal (the drain's reason).
type fxLogger struct {
	fxevent.Logger
	c *lifecycle.Coordinator
}

func newFxLogger(log *zap.Logger, level zapcore.Level, c *lifecycle.Coordinator) fxevent.Logger {
	var inner fxevent.Logger = fxevent.NopLogger
	if log != nil {
		zl := &fxevent.ZapLogger{Logger: log.With(zap.String("component", "fx"))}
		zl.UseLogLevel(level)
		inner = zl
	}
	return fxLogger{Logger: inner, c: c}
}

func (l fxLogger) LogEvent(e fxevent.Event) {
	if s, ok := e.(*fxevent.Stopping); ok {
		// app.Run caught a signal and is about to stop the app. The
		// coordinator's own handler sees the same signal, but fx may reach
		// the HTTP module's OnStop first, which would begin the drain as
		// "app stopping": name the signal here, before the stop. (After a
		// Shutdowner call fx reports SIGTERM too, but DrainOnShutdown has
		// begun the drain already and this does nothing.)
		l.c.BeginDrain(lifecycle.ReasonSignal + " " + s.Signal.String())
	}
	l.Logger.LogEvent(e)
	if s, ok := e.(*fxevent.Started); ok && s.Err == nil {
		l.c.MarkStarted()
	}
}
