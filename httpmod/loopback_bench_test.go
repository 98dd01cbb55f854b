package httpmod_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/drainfx/drainfx/httpmod"
)

// parallelConns is the number of keep-alive connections of
// BenchmarkLoopbackParallel: wrk -c16.
const parallelConns = 16

// getRequest is the request of BenchmarkLoopbackParallel's clients: what
// wrk sends for GET /.
var getRequest = []byte("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")

// minimalMux is the routes of examples/minimal: GET / answers "ok" with a
// Content-Type.
func minimalMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(okBytes)
	})
	return mux
}

// rawClient is one keep-alive connection that sends a request and reads
// its answer, one at a time, as wrk does: a loop of two system calls
// (three when the answer comes in pieces), no allocation, so that the
// figures are the server's, not net/http's client's.
type rawClient struct {
	conn net.Conn
	buf  []byte
}

var (
	headerEnd     = []byte("\r\n\r\n")
	contentLength = []byte("\r\nContent-Length: ")
	status200     = []byte("HTTP/1.1 200 ")
)

// do sends req and reads the whole answer, which must be a 200 with a
// Content-Length.
func (c *rawClient) do(req []byte) error {
	if _, err := c.conn.Write(req); err != nil {
		return err
	}
	n, want := 0, -1
	for want < 0 || n < want {
		if n == len(c.buf) {
			return errors.New("answer larger than the buffer")
		}
		m, err := c.conn.Read(c.buf[n:])
		n += m
		if err != nil {
			return err
		}
		if want >= 0 {
			continue
		}
		end := bytes.Index(c.buf[:n], headerEnd)
		if end < 0 {
			continue
		}
		head := c.buf[:end+2]
		if !bytes.HasPrefix(head, status200) {
			return fmt.Errorf("answer %q", head)
		}
		i := bytes.Index(head, contentLength)
		if i < 0 {
			return fmt.Errorf("no Content-Length in %q", head)
		}
		v := head[i+len(contentLength):]
		v = v[:bytes.IndexByte(v, '\r')]
		cl, err := strconv.Atoi(string(v)) // does not allocate
		if err != nil {
			return fmt.Errorf("Content-Length %q", v)
		}
		want = end + len(headerEnd) + cl
	}
	if n != want {
		return fmt.Errorf("%d bytes past the answer", n-want)
	}
	return nil
}

// BenchmarkLoopbackParallel is the request path as wrk -t1 -c16 sees it:
// 16 keep-alive connections over real TCP on 127.0.0.1, each sending GET /
// and reading the answer, one request at a time, to a plain http.Server
// with httpmod's default timeouts and header bound ("bare", the baseline)
// and to the httpmod.Server ("drainfx"), both serving the routes of
// examples/minimal. The clients are raw connections (see rawClient), so
// that the server's work is most of each op; client and server share the
// process and its processors. cpu-ns/op is the process's CPU time (user
// and system) per request. "drainfx" reports its ratios to the "bare" run
// just before it: x-bare, the time per request over bare's (lower is
// faster; the inverse of wrk's ratio of requests per second), and
// cpu-x-bare, the same for CPU. On a shared machine run the pair several
// times in turn (a loop of -count 1), not -count N, which runs every
// "bare" before every "drainfx".
func BenchmarkLoopbackParallel(b *testing.B) {
	type result struct{ nsPerOp, cpuPerOp float64 }
	var bare result // the last "bare" run
	bareAddr := func(b *testing.B) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		d := httpmod.Config{}.WithDefaults()
		srv := &http.Server{
			Handler:           minimalMux(),
			ReadHeaderTimeout: d.ReadHeaderTimeout,
			IdleTimeout:       d.IdleTimeout,
			MaxHeaderBytes:    d.MaxHeaderBytes,
		}
		done := make(chan struct{})
		go func() { defer close(done); _ = srv.Serve(ln) }()
		b.Cleanup(func() {
			_ = srv.Close()
			<-done
		})
		return ln.Addr().String()
	}
	drainfxAddr := func(b *testing.B) string {
		c := newBenchCoordinator(b)
		s, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, c, minimalMux())
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		return s.Addr().String()
	}
	tests := []struct {
		name string
		give func(*testing.B) string
	}{
		{"bare", bareAddr},
		{"drainfx", drainfxAddr},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			addr := tt.give(b)
			clients := make(chan *rawClient, parallelConns)
			for range parallelConns {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = conn.Close() })
				c := &rawClient{conn: conn, buf: make([]byte, 4096)}
				if err := c.do(getRequest); err != nil { // the connection's first request
					b.Fatal(err)
				}
				clients <- c
			}
			var errOnce sync.Once
			var runErr error
			// RunParallel starts parallelism × GOMAXPROCS goroutines; each
			// takes a connection of its own.
			procs := runtime.GOMAXPROCS(0)
			b.SetParallelism((parallelConns + procs - 1) / procs)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0, cpuOK := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				var c *rawClient
				select {
				case c = <-clients:
				default:
					return // more goroutines than connections: the others do the work
				}
				defer func() { clients <- c }()
				for pb.Next() {
					if err := c.do(getRequest); err != nil {
						errOnce.Do(func() { runErr = err })
						return
					}
				}
			})
			b.StopTimer()
			cpu1, _ := processCPU()
			if runErr != nil {
				b.Fatal(runErr)
			}
			cpuPerOp := float64(cpu1-cpu0) / float64(b.N)
			if cpuOK {
				b.ReportMetric(cpuPerOp, "cpu-ns/op")
			}
			nsPerOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			switch tt.name {
			case "bare":
				bare = result{nsPerOp, cpuPerOp}
			default:
				if bare.nsPerOp > 0 {
					b.ReportMetric(nsPerOp/bare.nsPerOp, "x-bare")
				}
				if bare.cpuPerOp > 0 && cpuOK {
					b.ReportMetric(cpuPerOp/bare.cpuPerOp, "cpu-x-bare")
				}
			}
		})
	}
}
