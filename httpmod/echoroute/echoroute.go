package echoroute

import (
	"github.com/labstack/echo/v4"
	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
)

// routesGroup is the value group of [Route]s; [AsRoute] hides it.
const routesGroup = `group:"drainfx.echoroute.routes"`

// Route registers handlers (and, if it must, echo middleware) on the echo
// instance. Routes are registered once, when the instance is built. Under
// fx, provide them with [AsRoute].
type Route interface {
	Register(e *echo.Echo)
}

// RouteFunc adapts a function to [Route].
type RouteFunc func(e *echo.Echo)

// Register calls f(e).
func (f RouteFunc) Register(e *echo.Echo) { f(e) }

// New returns an echo instance with its banner and port message hidden
// (the server logs its own start) and routes registered, in order; nil
// routes are skipped. Serve it with [httpmod.New], or with your own
// [net/http.Server] behind [httpmod.Drain.Handler]; do not call its Start
// or Shutdown methods.
func New(routes ...Route) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	for _, r := range routes {
		if r != nil {
			r.Register(e)
		}
	}
	return e
}

// Module builds the echo instance ([New]) from the [Route]s provided with
// [AsRoute] and hands it to [httpmod.Module] as the handler, as
// [httpmod.AsHandler] does. Use it beside httpmod.Module, and provide no
// other handler nor [httpmod.AsRoute] routes.
var Module = fx.Module("echoroute",
	httpmod.AsHandler(newFx),
)

type params struct {
	fx.In

	Routes []Route `group:"drainfx.echoroute.routes"`
}

func newFx(p params) *echo.Echo { return New(p.Routes...) }

// AsRoute provides the result of constructor — a type that implements
// [Route], such as a handler struct or a [RouteFunc] — to [Module]'s
// routes, so that no one writes a value-group tag. constructor is an fx
// constructor: its parameters are injected, and it may also return an
// error.
//
//	echoroute.AsRoute(newChatHandler) // func newChatHandler(reg *wsmod.Registry) *ChatHandler
func AsRoute(constructor any) fx.Option {
	return fx.Provide(fx.Annotate(constructor,
		fx.As(new(Route)),
		fx.ResultTags(routesGroup),
	))
}
