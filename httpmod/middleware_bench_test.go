package httpmod_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
)

// discardWriter is a reusable http.ResponseWriter, so that the figures are
// those of the handler chain, not of httptest.ResponseRecorder's own
// allocations (which would hide the difference).
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

// deadlineWriter is a discardWriter that takes a read deadline, as
// net/http's ResponseWriter does, so that the drain middleware's body
// deadline goes through http.ResponseController as it does when serving.
type deadlineWriter struct{ discardWriter }

func (*deadlineWriter) SetReadDeadline(time.Time) error { return nil }

// okBytes is the body of the benchmarks' handler.
var okBytes = []byte("ok")

// benchHandler is a bare handler writing "ok".
var benchHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(okBytes) })

// newBenchCoordinator returns a coordinator (default budget: a 5s drain at
// least) stopped at cleanup; the service is marked started.
func newBenchCoordinator(b *testing.B) *lifecycle.Coordinator {
	b.Helper()
	c, err := lifecycle.New(lifecycle.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		// An ended ctx cuts the drain short; the second Stop waits for
		// the timeline's goroutines.
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Stop(ended)
		if err := c.Stop(context.Background()); err != nil {
			b.Error(err)
		}
	})
	c.MarkStarted()
	return c
}

// BenchmarkMiddleware compares a bare handler served in-process ("bare")
// with the same handler behind the drain middleware — in-flight count,
// drain check, panic recovery — while serving ("drain", the hot path) and
// while draining ("draining": one more allocation, the Connection: close
// header value). "bare+inflight" is the bare handler with only the
// in-flight count's two atomic adds around it: the floor of any exact
// count of the requests in flight, and nearly all of what "drain" adds to
// "bare". The "POST" rows send a request with a body, for which the
// middleware also sets the body's read deadline (BodyReadTimeout) through
// http.ResponseController: here on a writer whose SetReadDeadline does
// nothing, so the figure is the middleware's own; BenchmarkLoopback's POST
// rows include the deadline on a real connection.
func BenchmarkMiddleware(b *testing.B) {
	drainOf := func(draining bool) http.Handler {
		c := newBenchCoordinator(b)
		d, err := httpmod.NewDrain(c)
		if err != nil {
			b.Fatal(err)
		}
		if draining {
			c.BeginDrain("benchmark") // a 5s drain at least: draining throughout
		}
		return d.Handler(benchHandler)
	}
	var inFlight atomic.Int64
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inFlight.Add(1)
		benchHandler.ServeHTTP(w, r)
		inFlight.Add(-1)
	})

	get := httptest.NewRequest(http.MethodGet, "/", nil)
	post := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("body"))
	drain := drainOf(false)
	tests := []struct {
		name string
		give http.Handler
		req  *http.Request
	}{
		{"bare", benchHandler, get},
		{"bare+inflight", counted, get},
		{"drain", drain, get},
		{"draining", drainOf(true), get},
		{"bare POST", benchHandler, post},
		{"drain POST", drain, post},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			w := &deadlineWriter{discardWriter{h: make(http.Header)}}
			b.ReportAllocs()
			for b.Loop() {
				tt.give.ServeHTTP(w, tt.req)
			}
		})
	}
}

// bodyHandler reads the request's body, then writes "ok".
var bodyHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	_, _ = w.Write(okBytes)
})

// BenchmarkLoopback compares the requests of one keep-alive client over
// real TCP on 127.0.0.1 to a plain http.Server ("bare") and to the
// httpmod.Server ("drainfx"), both serving the same handler with the same
// timeouts. Client and
// server run in this process: the figures (allocations too) are those of a
// whole round trip, of which the drain middleware is a small part. The
// "POST" rows send a 4-byte body, which the handler reads: drainfx sets
// its read deadline (BodyReadTimeout) on the connection.
func BenchmarkLoopback(b *testing.B) {
	bareURL := func(b *testing.B) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		// The timeouts of httpmod's defaults: a deadline per request and
		// one per idle wait cost the same on both sides.
		srv := &http.Server{
			Handler:           bodyHandler,
			ReadHeaderTimeout: httpmod.DefaultReadHeaderTimeout,
			IdleTimeout:       httpmod.DefaultIdleTimeout,
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ln) }()
		b.Cleanup(func() {
			_ = srv.Close()
			<-done
		})
		return "http://" + ln.Addr().String() + "/"
	}
	drainfxURL := func(b *testing.B) string {
		c := newBenchCoordinator(b)
		s, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, c, bodyHandler)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		return "http://" + s.Addr().String() + "/"
	}
	tests := []struct {
		name string
		give func(*testing.B) string
		post bool
	}{
		{"bare", bareURL, false},
		{"drainfx", drainfxURL, false},
		{"bare POST", bareURL, true},
		{"drainfx POST", drainfxURL, true},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			url := tt.give(b)
			tr := &http.Transport{}
			b.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr}
			b.ReportAllocs()
			for b.Loop() {
				var resp *http.Response
				var err error
				if tt.post {
					resp, err = client.Post(url, "text/plain", strings.NewReader("body"))
				} else {
					resp, err = client.Get(url)
				}
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
