package grpcmod

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/fxserver"
	"github.com/drainfx/drainfx/lifecycle"
)

// servicesGroup is the value group of [Service]s; [AsService] hides it.
const servicesGroup = `group:"drainfx.grpcmod.services"`

// Module provides the [*Server] for the [Config] in the graph (zero Config
// if none: ":9000") with the services provided with [AsService], and runs
// it: [Server.Start] in OnStart; the server stops in the coordinator's
// stop phase, and [Server.Stop] in OnStop asks for the stop and waits for
// it. It needs [lifecycle.Module]. The server is built even if nothing asks
// for it.
var Module = fx.Module("grpc",
	fx.Provide(NewFx),
	fx.Invoke(func(*Server) {}),
)

// Params are the server's dependencies under fx.
type Params struct {
	fx.In

	Config      Config      `optional:"true"`
	Logger      *zap.Logger `optional:"true"`
	Coordinator *lifecycle.Coordinator
	Lifecycle   fx.Lifecycle
	Shutdowner  fx.Shutdowner
	Services    []Service `group:"drainfx.grpcmod.services"`
}

// NewFx builds the server with [New] and appends its hooks. A Serve error
// stops the app with exit code 1.
func NewFx(p Params) (*Server, error) {
	s, err := New(p.Config, p.Coordinator,
		WithLogger(p.Logger),
		WithServices(p.Services...),
		WithServeError(fxserver.ShutdownOnServeError(p.Shutdowner, p.Logger, "grpc")),
	)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s, nil
}

// AsService provides the result of constructor — a type that implements
// [Service], such as a [ServiceFunc] — to [Module]'s services, so that no
// one writes a value-group tag. constructor is an fx constructor: its
// parameters are injected, and it may also return an error.
//
//	grpcmod.AsService(func(db *sql.DB) grpcmod.Service {
//		return grpcmod.ServiceFunc(func(s grpc.ServiceRegistrar) { pb.RegisterOrdersServer(s, &orders{db}) })
//	})
func AsService(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor,
		fx.As(new(Service)),
		fx.ResultTags(servicesGroup),
	))
}
