package httpmod

import (
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/fxserver"
	"github.com/drainfx/drainfx/lifecycle"
)

// The value groups of [AsHandler] and [AsRoute], which hide them.
const (
	handlersGroup = `group:"drainfx.httpmod.handlers"`
	routesGroup   = `group:"drainfx.httpmod.routes"`
)

// Module provides the [*Server] built from the [Config] in the graph (zero
// Config if none) and the handler: the one provided with [AsHandler], or
// else a [net/http.ServeMux] with the [Route]s provided with [AsRoute] (an
// empty one, which answers 404, if there are none). It runs the server:
// [Server.Start] in OnStart, [Server.Stop] in OnStop (which waits for the
// coordinator's whole shutdown timeline; the server's own stop is its stop
// participant). It needs [lifecycle.Module] (or another provider of
// [*lifecycle.Coordinator]). The server is built even if nothing asks for
// it.
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
	Handlers    []http.Handler `group:"drainfx.httpmod.handlers"`
	Routes      []Route        `group:"drainfx.httpmod.routes"`
}

// NewFx builds the server with [New] and appends its hooks. A Serve error
// other than [net/http.ErrServerClosed] stops the app with exit code 1. It
// fails if more than one handler was provided with [AsHandler], or a
// handler and routes ([AsRoute]).
func NewFx(p Params) (*Server, error) {
	h, err := handlerOf(p.Handlers, p.Routes)
	if err != nil {
		return nil, err
	}
	s, err := New(p.Config, p.Coordinator, h,
		WithLogger(p.Logger),
		WithServeError(fxserver.ShutdownOnServeError(p.Shutdowner, p.Logger, "http")),
	)
	if err != nil {
		return nil, err
	}
	p.Lifecycle.Append(fx.Hook{OnStart: s.Start, OnStop: s.Stop})
	return s, nil
}

// handlerOf picks the server's handler: the one of AsHandler, or a
// ServeMux with the routes of AsRoute.
func handlerOf(handlers []http.Handler, routes []Route) (http.Handler, error) {
	switch {
	case len(handlers) > 1:
		return nil, fmt.Errorf("httpmod: %d handlers provided with AsHandler, want at most one", len(handlers))
	case len(handlers) == 1 && len(routes) > 0:
		return nil, fmt.Errorf("httpmod: a handler provided with AsHandler (%T) and %d routes with AsRoute: "+
			"AsRoute's routes go on the built-in ServeMux, which a handler replaces; register them on the handler", handlers[0], len(routes))
	case len(handlers) == 1:
		if handlers[0] == nil {
			return nil, errors.New("httpmod: the handler provided with AsHandler is nil")
		}
		return handlers[0], nil
	}
	return newMux(routes)
}

// AsHandler provides the result of constructor — the app's whole
// [net/http.Handler]: a chi or gorilla/mux router, a *gin.Engine, an
// *echo.Echo (package echoroute does that one for you), a ServeMux — as
// the handler [Module] serves, so that no one writes a value-group tag.
// constructor is an fx constructor: its parameters are injected, and it
// may also return an error. Provide one handler at most, and no routes
// with [AsRoute] beside it.
//
//	httpmod.AsHandler(newRouter) // func newRouter(reg *wsmod.Registry) *chi.Mux
func AsHandler(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor,
		fx.As(new(http.Handler)),
		fx.ResultTags(handlersGroup),
	))
}

// AsRoute provides the result of constructor — a type that implements
// [Route], such as a handler struct or a [RouteFunc] — to the routes that
// [Module] registers on its [net/http.ServeMux], so that no one writes a
// value-group tag. constructor is an fx constructor: its parameters are
// injected, and it may also return an error.
//
//	httpmod.AsRoute(newChatHandler) // func newChatHandler(reg *wsmod.Registry) *ChatHandler
func AsRoute(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor,
		fx.As(new(Route)),
		fx.ResultTags(routesGroup),
	))
}
