package httpmod

import (
	"github.com/drainfx/drainfx/internal/fxserver"
	"github.com/drainfx/drainfx/lifecycle"
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// routesGroup is the value group of [Route]s; [AsRoute] hides it.
const routesGroup = `group:"drainfx.httpmod.routes"`

// Module provides the [*Server] built from the [Config] in the graph (zero
// Config if none) and the [Route]s provided with [AsRoute], and runs it:
// [Server.Start] in OnStart, [Server.Stop] in OnStop (which waits for the
// coordinator's whole shutdown timeline; the server's own stop is its stop
// participant). It needs
// [lifecycle.Module] (or another provider of [*lifecycle.Coordinator]).
// The server is built even if nothing asks for it.
var Module = fx.Module("http",
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
	Routes      []Route `group:"drainfx.httpmod.routes"`
}

// NewFx builds the server with [New] and appends its hooks. A Serve error
// other than [net/http.ErrServerClosed] stops the app with exit code 1.
func NewFx(p Params) (*Server, error) {
	s, err := New(p.Config, p.Coordinator,
		WithLogger(p.Logger),
		WithRoutes(p.Routes...),
		WithServeError(fxserver.ShutdownOnServeError(p.Shutdowner, p.Logger, "http")),
	)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s, nil
}

// AsRoute provides the result of constructor — a type that implements
// [Route], such as a handler struct or a [RouteFunc] — to [Module]'s routes,
// so that no one writes a value-group tag. constructor is an fx constructor:
// its parameters are injected, and it may also return an error.
//
//	httpmod.AsRoute(newChatHandler) // func newChatHandler(reg *wsmod.Registry) *ChatHandler
func AsRoute(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor,
		fx.As(new(Route)),
		fx.ResultTags(routesGroup),
	))
}
