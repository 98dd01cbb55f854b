package httpmod

import "github.com/labstack/echo/v4"

// Route registers handlers (and, if it must, route-level middleware) on the
// server's echo instance. Routes are registered once, when the server is
// built. Under fx, provide them with [AsRoute].
type Route interface {
	Register(e *echo.Echo)
}

// RouteFunc adapts a function to [Route].
type RouteFunc func(e *echo.Echo)

// Register calls f(e).
func (f RouteFunc) Register(e *echo.Echo) { f(e) }
