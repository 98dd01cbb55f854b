// Command naive serves the example service's route contract (README.md, "The example service") the way a textbook
// echo service does: on SIGTERM it calls e.Shutdown with a 10 s timeout and
// nothing else — no drain, readiness never fails, /prestop answers at once,
// WebSocket and SSE sessions are left to the process exit. The rollout check
// must report losses against it.
package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/labstack/echo/v4"
)

func main() {
	port, admin := env("PORT", "8080"), env("ADMIN_PORT", "9090")

	e := echo.New()
	e.HideBanner = true
	e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	e.POST("/echo", func(c echo.Context) error {
		b, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		return c.Blob(http.StatusOK, "application/octet-stream", b)
	})
	e.GET("/slow", func(c echo.Context) error {
		ms, _ := strconv.Atoi(c.QueryParam("ms"))
		time.Sleep(time.Duration(ms) * time.Millisecond)
		return c.String(http.StatusOK, "ok")
	})
	var upgrader websocket.Upgrader
	e.GET("/ws", func(c echo.Context) error {
		conn, err := upgrader.Upgrade(c.Response(), c.Request(), nil)
		if err != nil {
			return nil
		}
		defer conn.Close()
		for {
			mt, p, err := conn.ReadMessage()
			if err != nil {
				return nil
			}
			if err := conn.WriteMessage(mt, p); err != nil {
				return nil
			}
		}
	})
	e.GET("/events", func(c echo.Context) error {
		w := c.Response()
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for n := 0; ; n++ {
			if _, err := io.WriteString(w, "data: "+strconv.Itoa(n)+"\n\n"); err != nil {
				return nil
			}
			w.Flush()
			select {
			case <-c.Request().Context().Done():
				return nil
			case <-t.C:
			}
		}
	})

	mux := http.NewServeMux()
	okay := func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }
	mux.HandleFunc("/livez", okay)
	mux.HandleFunc("/healthz", okay)
	mux.HandleFunc("/readyz", okay)
	mux.HandleFunc("/startupz", okay)
	mux.HandleFunc("/prestop", okay)
	go http.ListenAndServe(net.JoinHostPort("", admin), mux)

	// The echo guide's graceful shutdown, with SIGTERM added.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		if err := e.Start(net.JoinHostPort("", port)); err != nil && err != http.ErrServerClosed {
			e.Logger.Fatal("shutting down the server")
		}
	}()
	<-ctx.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		e.Logger.Fatal(err)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
