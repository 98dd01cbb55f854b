package httpmod

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/drainfx/drainfx/lifecycle"
)

// requestConn is a connection whose every Read returns one request's
// bytes, so that BenchmarkConnTracking times the wrapper, not a socket.
type requestConn struct {
	net.Conn // nil: only Read and RemoteAddr are called
	req      []byte
}

func (c *requestConn) Read(p []byte) (int, error) { return copy(p, c.req), nil }
func (c *requestConn) RemoteAddr() net.Addr       { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// BenchmarkConnTracking is what the drain does per keep-alive request
// besides the middleware (BenchmarkMiddleware): the tracked connection's
// check on the read that brings the request, and the ConnState hook as the
// connection turns active, then idle. "bare" is the read alone, on the
// same connection unwrapped, as net/http does without a hook.
func BenchmarkConnTracking(b *testing.B) {
	c, err := lifecycle.New(lifecycle.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ended, cancel := context.WithCancel(context.Background())
		cancel()
		_ = c.Stop(ended)                                    // an ended ctx cuts the drain short
		if err := c.Stop(context.Background()); err != nil { // waits for the timeline
			b.Error(err)
		}
	})
	d := newDrain(c, newOptions(nil))
	srv := &http.Server{}
	if err := d.Manage(srv); err != nil {
		b.Fatal(err)
	}
	hook := srv.ConnState
	conn := &requestConn{req: []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")}
	buf := make([]byte, 4096)

	b.Run("bare", func(b *testing.B) {
		var nc net.Conn = conn
		b.ReportAllocs()
		for b.Loop() {
			_, _ = nc.Read(buf)
		}
	})
	b.Run("tracked", func(b *testing.B) {
		tc := &trackedConn{Conn: conn, set: d.conns}
		d.conns.add(tc)
		var nc net.Conn = tc
		hook(nc, http.StateNew)
		hook(nc, http.StateActive) // the first request, noted
		hook(nc, http.StateIdle)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = nc.Read(buf)
			hook(nc, http.StateActive)
			hook(nc, http.StateIdle)
		}
	})
}
