// Package echoroute serves an echo v4 application ([github.com/labstack/echo/v4])
// on the draining server of package httpmod: echo is one
// [net/http.Handler] among others, and httpmod drains it like any other.
//
// Under fx, add [Module] beside [httpmod.Module] and provide routes with
// [AsRoute]:
//
//	fx.New(
//		lifecycle.Module,
//		httpmod.Module,
//		echoroute.Module,
//		echoroute.AsRoute(newChatHandler), // func newChatHandler(reg *wsmod.Registry) *ChatHandler
//	)
//
// Module builds the echo instance with [New] and hands it to httpmod as
// its handler ([httpmod.AsHandler]); the server's [httpmod.Server.Handler]
// returns it. Without fx, pass [New]'s result to [httpmod.New].
//
// # Middleware
//
// httpmod's drain middleware wraps the echo instance as a plain
// [net/http.Handler], in front of echo's router, rather than as an echo
// middleware: echo applies its middleware chain on every request, which
// allocates a closure per middleware per request, while the drain
// middleware allocates nothing while serving. Add echo middleware (logging,
// CORS, auth) in a Route's Register with e.Use or e.Pre; echo's Recover
// middleware is not needed, the drain middleware turns a panic into a 500.
//
// # Limits
//
//   - Routes are registered once, when the instance is built.
//   - Do not call the instance's Start or Shutdown methods: httpmod owns
//     the listener and the [net/http.Server].
//   - Module does not put the *echo.Echo in the graph; a component that
//     needs it takes part as a [Route].
package echoroute
