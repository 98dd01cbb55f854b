package httpmod

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// A request whose bytes had reached the server when the server closed its
// connection is cut, and counted: the report is not clean. Two ways the
// stop closes such a connection: a keep-alive connection idle through the
// drain is closed as the stop phase begins, as the first bytes of its next
// request are in; a request whose header is still coming in at the stop
// deadline is closed then.
func TestRequestCutWhileBeingRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		giveIdle bool // the partial request follows a served one on the same connection
		give     string
	}{
		{"new connection at the deadline", false, "POST /echo HTTP/1.1\r\nHost: test\r\n"},
		{"idle keep-alive connection at the stop", true, "GE"}, // net/http waits for 4 bytes
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := lifecycle.New(lifecycle.Config{GracePeriod: time.Second, DrainDelay: lifecycle.None,
				DrainQuiet: lifecycle.None, TeardownReserve: 200 * time.Millisecond, Margin: 100 * time.Millisecond,
				IgnoreSignals: true})
			if err != nil {
				t.Fatal(err)
			}
			d := newDrain(c, newOptions(nil))
			conns := make(chan *trackedConn, 1)
			srv := &http.Server{
				Handler:           d.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })),
				ReadHeaderTimeout: time.Minute,
				ConnState: func(nc net.Conn, st http.ConnState) {
					if st == http.StateNew {
						conns <- nc.(*trackedConn)
					}
				},
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Serve(srv, ln); err != nil {
				t.Fatal(err)
			}
			c.MarkStarted()

			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			tc := waittest.Recv(t, conns, waitTimeout, "the connection")
			if tt.giveIdle {
				if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
					t.Fatal(err)
				}
				resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
				if err != nil || resp.StatusCode != http.StatusOK || resp.Close {
					t.Fatalf("first request: %v %v", resp, err)
				}
				resp.Body.Close()
				waittest.Eventually(t, waitTimeout, func() bool { return tc.loadState()&phaseMask == phaseIdle },
					"the connection to go idle")
			}
			if _, err := io.WriteString(conn, tt.give); err != nil {
				t.Fatal(err)
			}
			waittest.Eventually(t, waitTimeout, func() bool { return tc.loadState()&gotBytes != 0 }, "the server to read the bytes")

			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := c.Stop(ctx); err != nil {
				t.Fatal(err)
			}
			if r := c.Telemetry().Report(); r.Cut[CutRequests] != 1 || r.ExitCode == 0 {
				t.Errorf("cut %v, clean %v; want requests=1 %+v", r.Cut, r.ExitCode == 0, r)
			}
		})
	}
}

func TestMaxConnsDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give uint64 // RLIMIT_NOFILE
		want int
	}{
		{256, 192},      // 64 kept
		{1024, 922},     // a tenth kept
		{65536, 58983},  // a tenth kept
		{100, 50},       // half at least
		{1, 1},          // one connection at least
		{1 << 40, 0},    // no bound in practice: none
		{^uint64(0), 0}, // RLIM_INFINITY
	}
	for _, tt := range tests {
		if got := maxConnsFor(tt.give); got != tt.want {
			t.Errorf("maxConnsFor(%d) = %d, want %d", tt.give, got, tt.want)
		}
	}
	if got := resolveMaxConns(8); got != 8 {
		t.Errorf("resolveMaxConns(8) = %d", got)
	}
	if got := resolveMaxConns(-1); got != 0 {
		t.Errorf("resolveMaxConns(-1) = %d, want 0 (no bound)", got)
	}
	if limit, ok := openFileLimit(); ok {
		if got, want := resolveMaxConns(0), maxConnsFor(limit); got != want {
			t.Errorf("resolveMaxConns(0) = %d, want %d for RLIMIT_NOFILE %d", got, want, limit)
		}
	}
}
