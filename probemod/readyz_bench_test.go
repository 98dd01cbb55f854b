package probemod_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// BenchmarkReadyz compares a cached /readyz with five checks to a bare
// http.HandlerFunc answering 200 ok, both called directly into a reused
// ResponseWriter (no network, no recorder allocations). The /mux pair
// serves both through a ServeMux, as the admin server does.
func BenchmarkReadyz(b *testing.B) {
	b.Run("baseline", func(b *testing.B) {
		benchServe(b, http.HandlerFunc(writeOK))
	})
	b.Run("baseline/mux", func(b *testing.B) {
		mux := http.NewServeMux()
		mux.HandleFunc("GET /readyz", writeOK)
		benchServe(b, mux)
	})
	b.Run("cached5", func(b *testing.B) {
		p := benchProbes(b)
		benchServe(b, http.HandlerFunc(p.Readyz)) // the first request fills the cache
	})
	b.Run("cached5/mux", func(b *testing.B) {
		p := benchProbes(b)
		mux := http.NewServeMux()
		p.Register(mux)
		benchServe(b, mux)
	})
}

var okBytes = []byte("ok")

func writeOK(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(okBytes) }

// benchProbes returns serving probes with five passing checks, cached for
// an hour; they are closed when b ends.
func benchProbes(b *testing.B) *probemod.Probes {
	c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = c.Stop(context.Background()) }) // no drain to wait for: stops at once
	c.MarkStarted()
	var checks []probemod.Check
	for i := range 5 {
		checks = append(checks, probemod.Check{Name: "dep" + strconv.Itoa(i), Check: func(context.Context) error { return nil }})
	}
	p, err := probemod.NewProbes(probemod.Config{CacheTTL: time.Hour}, c, checks)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
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

func (w *benchWriter) Header() http.Header  { return w.h }
func (w *benchWriter) WriteHeader(code int) { w.code = code }

// Write implies 200, as net/http's does, for a handler that calls no
// WriteHeader.
func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
