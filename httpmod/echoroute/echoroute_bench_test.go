package echoroute_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/echoroute"
	"github.com/drainfx/drainfx/lifecycle"
)

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddleware compares a bare echo instance ("bare") with the same
// instance behind httpmod's drain middleware ("drain"): the middleware
// wraps echo as a plain http.Handler and adds no allocation to echo's.
func BenchmarkMiddleware(b *testing.B) {
	newEcho := func() *echo.Echo {
		return echoroute.New(echoroute.RouteFunc(func(e *echo.Echo) {
			e.GET("/", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
		}))
	}
	c, err := lifecycle.New(lifecycle.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Stop(ended) // cuts the drain short
		if err := c.Stop(context.Background()); err != nil {
			b.Error(err)
		}
	})
	d, err := httpmod.NewDrain(c)
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	tests := []struct {
		name string
		give http.Handler
	}{
		{"bare", newEcho()},
		{"drain", d.Handler(newEcho())},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			w := &discardWriter{h: make(http.Header)}
			b.ReportAllocs()
			for b.Loop() {
				tt.give.ServeHTTP(w, req)
			}
		})
	}
}
