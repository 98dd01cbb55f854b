package lifecycletest_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/echoroute"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
	"github.com/drainfx/drainfx/wsmod"
)

// webApp is a small drainfx app on free ports: GET /, POST /echo,
// GET /slow?ms=N, GET /ws (echo), GET /events (SSE), probes and preStop.
type webApp struct {
	Coord *lifecycle.Coordinator
	HTTP  *httpmod.Server
	Admin *probemod.Admin
}

func (a *webApp) url(path string) string   { return "http://" + a.HTTP.Addr().String() + path }
func (a *webApp) wsURL(path string) string { return "ws://" + a.HTTP.Addr().String() + path }
func (a *webApp) adminURL(path string) string {
	return "http://" + a.Admin.Addr() + path
}

// webOptions builds the app; populate a *webApp with fx.Populate of its
// fields (see populate).
func webOptions(lc lifecycle.Config) fx.Option {
	lc.IgnoreSignals = true // signals are the process tests' business
	return fx.Options(
		modules.Web(modules.Config{
			Lifecycle: lc,
			HTTP:      httpmod.Config{Addr: "127.0.0.1:0"},
			Probe:     probemod.Config{Addr: "127.0.0.1:0"},
		}),
		wsmod.Module,
		echoroute.Module,
		echoroute.AsRoute(func(reg *wsmod.Registry) echoroute.Route {
			return echoroute.RouteFunc(func(e *echo.Echo) {
				e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
				e.POST("/echo", func(c echo.Context) error {
					b, err := io.ReadAll(c.Request().Body)
					if err != nil {
						return err
					}
					return c.Blob(http.StatusOK, echo.MIMEOctetStream, b)
				})
				e.POST("/orders", func(c echo.Context) error { // JSON only
					if c.Request().Header.Get(echo.HeaderContentType) != echo.MIMEApplicationJSON {
						return c.String(http.StatusUnsupportedMediaType, "want JSON")
					}
					return c.String(http.StatusCreated, "taken")
				})
				e.GET("/slow", func(c echo.Context) error {
					ms, _ := strconv.Atoi(c.QueryParam("ms"))
					select {
					case <-time.After(time.Duration(ms) * time.Millisecond):
						return c.String(http.StatusOK, "ok")
					case <-c.Request().Context().Done():
						return nil
					}
				})
				e.GET("/ws", echo.WrapHandler(reg.WebSocket(func(_ context.Context, conn wsmod.Conn) error {
					for {
						mt, p, err := conn.ReadMessage()
						if err != nil {
							return err
						}
						if err := conn.WriteMessage(mt, p); err != nil {
							return err
						}
					}
				})))
				e.GET("/events", echo.WrapHandler(reg.SSE(func(ctx context.Context, s *wsmod.Stream) error {
					t := time.NewTicker(50 * time.Millisecond)
					defer t.Stop()
					for n := 0; ; n++ {
						if err := s.Send(wsmod.Event{Data: strconv.Itoa(n)}); err != nil {
							return err
						}
						select {
						case <-ctx.Done():
							return nil
						case <-t.C:
						}
					}
				})))
			})
		}),
	)
}

func (a *webApp) populate() fx.Option { return fx.Populate(&a.Coord, &a.HTTP, &a.Admin) }
