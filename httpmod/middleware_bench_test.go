package httpmod_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/labstack/echo/v4"
)

// discardWriter is a reusable http.ResponseWriter, so that the figures are
// those of the handler chain, not of httptest.ResponseRecorder's own
// allocations (which would hide the difference).
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// BenchmarkMiddleware compares a bare echo handler ("bare") with the same
// handler behind the drain middleware — in-flight count, drain check, panic
// recovery — while serving ("drain", the hot path) and while draining
// ("draining": one more allocation, the Connection: close header value).
// "bare+inflight" is the bare handler with only the in-flight count's two
// atomic adds around it: the floor of any exact count of the requests in
// flight, and nearly all of what "drain" adds to "bare".
func BenchmarkMiddleware(b *testing.B) {
	handler := func(c echo.Context) error { return c.String(http.StatusOK, "ok") }
	bare := echo.New()
	bare.GET("/", handler)

	newServer := func(drain bool) *httpmod.Server {
		c, err := lifecycle.New(lifecycle.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() {
			// An ended ctx cuts the drain short; the second Stop waits
			// for the timeline's goroutines.
			ended, cancel := context.WithCancel(context.Background())
			cancel()
			_ = c.Stop(ended)
			if err := c.Stop(context.Background()); err != nil {
				b.Error(err)
			}
		})
		s, err := httpmod.New(httpmod.Config{}, c,
			httpmod.WithRoutes(httpmod.RouteFunc(func(e *echo.Echo) { e.GET("/", handler) })))
		if err != nil {
			b.Fatal(err)
		}
		if drain {
			c.MarkStarted()
			c.BeginDrain("benchmark") // a 5s drain at least: draining throughout
		}
		return s
	}

	var inFlight atomic.Int64
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		bare.ServeHTTP(w, r)
		inFlight.Add(-1)
	})

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	tests := []struct {
		name string
		give http.Handler
	}{
		{"bare", bare},
		{"bare+inflight", counted},
		{"drain", newServer(false)},
		{"draining", newServer(true)},
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
