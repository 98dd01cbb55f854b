package metricsmod

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// Module provides the [*Metrics] for the [*lifecycle.Coordinator] in the
// graph, on the *prometheus.Registry in the graph if there is one (a new one
// otherwise), with the [Config] in the graph (zero Config if none); it
// serves them at [Config.Path] on probemod's admin server and adds the
// checks of probemod's [*probemod.Probes] when [probemod.Module] is in the
// app. It starts nothing: the admin server serves the route.
var Module = fx.Module("metrics",
	fx.Provide(NewFx),
	probemod.AsAdminRoute(func(m *Metrics) probemod.AdminRoute { return m.Route() }),
	fx.Invoke(addProbes),
)

// Params are the metrics' dependencies under fx.
type Params struct {
	fx.In

	Config      Config               `optional:"true"`
	Registry    *prometheus.Registry `optional:"true"`
	Logger      *zap.Logger          `optional:"true"`
	Coordinator *lifecycle.Coordinator
}

// NewFx builds the metrics with [New].
func NewFx(p Params) (*Metrics, error) {
	return New(p.Config, p.Coordinator, WithRegistry(p.Registry), WithLogger(p.Logger))
}

// probesParams: the probes are added after the fact, since the admin server
// that owns them takes the metrics route.
type probesParams struct {
	fx.In

	Metrics *Metrics
	Probes  *probemod.Probes `optional:"true"`
}

func addProbes(p probesParams) error {
	if p.Probes == nil {
		return nil
	}
	return p.Metrics.AddProbes(p.Probes)
}
