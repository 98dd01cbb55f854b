package metricsmod

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// Option configures [New].
type Option func(*options)

type options struct {
	reg    *prometheus.Registry
	probes *probemod.Probes
	log    *zap.Logger
}

// WithRegistry registers the metrics on reg (default: a new registry). Pass
// the registry the app's own metrics live on, so that one /metrics serves
// both. A nil reg means the default.
func WithRegistry(reg *prometheus.Registry) Option {
	return func(o *options) { o.reg = reg }
}

// WithProbes adds the readiness checks' metrics ([NewCheckCollector]). Nil
// means none.
func WithProbes(p *probemod.Probes) Option {
	return func(o *options) { o.probes = p }
}

// WithLogger sets the logger of the handler's errors (default
// [zap.NewNop]); it adds the field component=metrics.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// Metrics is the drainfx collectors on a registry, and the handler that
// serves that registry.
type Metrics struct {
	cfg     Config
	reg     *prometheus.Registry
	handler http.Handler
}

// New registers the coordinator's collector ([NewCollector]), the checks'
// if [WithProbes] is given, and the Go and process collectors (unless
// [Config.NoRuntimeMetrics]; skipped if the registry has them already) on
// the registry, and returns the metrics, ready to serve. It fails with an
// error matching [ErrConfig] for an invalid cfg, or with the registry's
// error if a collector clashes with one registered before.
func New(cfg Config, c *lifecycle.Coordinator, opts ...Option) (*Metrics, error) {
	if c == nil {
		return nil, errors.New("metricsmod: nil *lifecycle.Coordinator")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.reg == nil {
		o.reg = prometheus.NewRegistry()
	}
	m := &Metrics{cfg: cfg.WithDefaults(), reg: o.reg}
	if err := m.reg.Register(NewCollector(c)); err != nil {
		return nil, fmt.Errorf("metricsmod: register the drainfx collector: %w", err)
	}
	if o.probes != nil {
		if err := m.AddProbes(o.probes); err != nil {
			return nil, err
		}
	}
	if !cfg.NoRuntimeMetrics {
		for _, col := range []prometheus.Collector{
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		} {
			// The default registry, say, has them already.
			if err := m.reg.Register(col); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
				return nil, fmt.Errorf("metricsmod: register the runtime collectors (or set NoRuntimeMetrics): %w", err)
			}
		}
	}
	log := o.log.With(zap.String("component", "metrics"))
	m.handler = promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: zap.NewStdLog(log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
		// A failing collector of the app's must not hide the drain's
		// metrics in the middle of a shutdown: serve what was gathered.
		ErrorHandling: promhttp.ContinueOnError,
	})
	return m, nil
}

// AddProbes registers the collector of p's readiness checks
// ([NewCheckCollector]). Under fx, [Module] calls it with the admin
// server's probes.
func (m *Metrics) AddProbes(p *probemod.Probes) error {
	if err := m.reg.Register(NewCheckCollector(p)); err != nil {
		return fmt.Errorf("metricsmod: register the checks collector: %w", err)
	}
	return nil
}

// Registry returns the registry the metrics are on: register the app's own
// metrics here to serve them on the same /metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text (or OpenMetrics, as
// the scraper asks) format.
func (m *Metrics) Handler() http.Handler { return m.handler }

// Route is the admin route "GET <Config.Path>" (GET and HEAD), for
// [probemod.WithRoutes] or [probemod.AsAdminRoute]. Without the route,
// mount [Metrics.Handler] with [probemod.WithHandler].
func (m *Metrics) Route() probemod.AdminRoute {
	return probemod.AdminRoute{Pattern: http.MethodGet + " " + m.cfg.Path, Handler: m.handler}
}
