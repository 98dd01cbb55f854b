package probemod_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// BenchmarkReadyz compares a cached /readyz with five checks to a bare echo
// handler answering 200 ok, both through echo's ServeHTTP into a reused
// ResponseWriter (no network, no recorder allocations).
func BenchmarkReadyz(b *testing.B) {
	b.Run("baseline", func(b *testing.B) {
		e := echo.New()
		e.GET("/readyz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
		benchServe(b, e)
	})
	b.Run("cached5", func(b *testing.B) {
		c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Stop(context.Background()) // no drain to wait for: stops at once
		c.MarkStarted()
		var checks []probemod.Check
		for i := range 5 {
			checks = append(checks, probemod.Check{Name: "dep" + strconv.Itoa(i), Check: func(context.Context) error { return nil }})
		}
		p, err := probemod.NewProbes(probemod.Config{CacheTTL: time.Hour}, c, checks)
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close(context.Background())
		e := echo.New()
		p.Register(e)
		benchServe(b, e) // the first request fills the cache
	})
}

func benchServe(b *testing.B, h http.Handler) {
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	w := &benchWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.code != http.StatusOK || w.n != 2 {
		b.Fatalf("/readyz = %d (%d bytes), want 200 ok", w.code, w.n)
	}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.code, w.n = 0, 0
		h.ServeHTTP(w, req)
	}
	if w.code != http.StatusOK {
		b.Fatalf("/readyz = %d", w.code)
	}
}

type benchWriter struct {
	h    http.Header
	code int
	n    int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) WriteHeader(code int)        { w.code = code }
func (w *benchWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
