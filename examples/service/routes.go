package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/drainfx/drainfx/httpmod/echoroute"
	"github.com/drainfx/drainfx/internal/demo"
	"github.com/drainfx/drainfx/wsmod"
)

const (
	maxEchoBody   = 1 << 20 // POST /echo
	maxSlow       = 60 * time.Second
	eventInterval = 100 * time.Millisecond // GET /events
)

type routeParams struct {
	fx.In

	Registry *wsmod.Registry
	Store    *store
	Logger   *zap.Logger `optional:"true"`
}

// newRoutes registers the public routes: the route contract of README.md ("The example service"), which the Kubernetes manifests and the rollout check are written for.
func newRoutes(p routeParams) echoroute.Route {
	st, log := p.Store, p.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("component", "service"))
	hits := func(c echo.Context, get func(context.Context) (int64, error)) error {
		n, err := get(c.Request().Context())
		if err != nil {
			// The error names no DSN (the store's errors never do); it is
			// logged, and the client gets no detail.
			log.Error("hits", zap.Error(err))
			return echo.NewHTTPError(http.StatusServiceUnavailable, "database unavailable")
		}
		return c.String(http.StatusOK, strconv.FormatInt(n, 10))
	}
	reg := p.Registry
	return echoroute.RouteFunc(func(e *echo.Echo) {
		e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
		e.POST("/echo", echoBody)
		e.GET("/slow", slow)
		// wsmod's handlers are http.Handlers: echo mounts them as any other.
		e.GET("/ws", echo.WrapHandler(reg.WebSocket(demo.Echo)))
		e.GET("/events", echo.WrapHandler(reg.SSE(demo.Ticks(eventInterval))))
		e.POST("/hits", func(c echo.Context) error { return hits(c, st.Hit) })
		e.GET("/hits", func(c echo.Context) error { return hits(c, st.Hits) })
		e.GET("/instances", func(c echo.Context) error {
			ids, err := st.Instances(c.Request().Context())
			if err != nil {
				log.Error("instances", zap.Error(err))
				return echo.NewHTTPError(http.StatusServiceUnavailable, "database unavailable")
			}
			return c.String(http.StatusOK, strings.Join(ids, "\n"))
		})
	})
}

// echoBody answers with the request body (up to 1 MiB) and its content type.
func echoBody(c echo.Context) error {
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxEchoBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "body over 1 MiB")
		}
		return echo.NewHTTPError(http.StatusBadRequest, "reading the body: "+err.Error())
	}
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct == "" {
		ct = echo.MIMEOctetStream
	}
	return c.Blob(http.StatusOK, ct, body)
}

// slow sleeps ms milliseconds, or until the client leaves.
func slow(c echo.Context) error {
	// The range is checked on the number, before it becomes a Duration: a
	// huge ms would overflow the multiplication and sleep for no time.
	ms, err := strconv.ParseInt(c.QueryParam("ms"), 10, 64)
	if err != nil || ms < 0 || ms > maxSlow.Milliseconds() {
		return echo.NewHTTPError(http.StatusBadRequest, fmt.Sprintf("ms=%q: want 0 to %d", c.QueryParam("ms"), maxSlow.Milliseconds()))
	}
	d := time.Duration(ms) * time.Millisecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return c.String(http.StatusOK, "ok")
	case <-c.Request().Context().Done():
		return nil // the client left; nobody reads an answer
	}
}
