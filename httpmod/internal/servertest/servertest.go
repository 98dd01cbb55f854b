// Package servertest holds the test helpers that the tests of httpmod and
// its adapters share: a started server on a fresh coordinator, clients,
// and a raw client connection to see what happens to the connection
// itself.
package servertest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
)

// WaitTimeout bounds every wait of the tests; reaching it is a failure,
// never the expected path.
const WaitTimeout = 10 * time.Second

// Quick is a budget whose drain ends at once: no delay, no quiet period.
var Quick = lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None}

// Start builds a coordinator for lcfg and a started server for cfg (on
// 127.0.0.1:0 unless cfg says otherwise) serving h, and marks the service
// started, so that a drain is a drain (a service that never served has
// nothing to drain). Cleanup stops both.
func Start(t testing.TB, lcfg lifecycle.Config, cfg httpmod.Config, h http.Handler, opts ...httpmod.Option) (*httpmod.Server, *lifecycle.Coordinator) {
	t.Helper()
	c, err := lifecycle.New(lcfg)
	if err != nil {
		t.Fatalf("lifecycle.New: %v", err)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := httpmod.New(cfg, c, h, opts...)
	if err != nil {
		t.Fatalf("httpmod.New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		_ = c.Stop(context.Background()) // nothing served: no drain
		t.Fatalf("Start: %v", err)
	}
	c.MarkStarted()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s, c
}

// WaitReport waits for c's report, after a Stop that returned early (its
// ctx ended) or that another goroutine runs.
func WaitReport(t testing.TB, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("waiting for the report: %v", err)
	}
	r := c.Telemetry().Report()
	ok := r.State == lifecycle.StateStopped
	if !ok {
		t.Fatal("no report after Stop")
	}
	return r
}

// NewClient returns a client with a transport of its own, closed at
// cleanup.
func NewClient(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: WaitTimeout}
}

// Get fetches url and returns the status and body.
func Get(t testing.TB, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// RawConn is one client TCP connection that sends requests by hand, to see
// what happens to the connection itself.
type RawConn struct {
	t    testing.TB
	Conn net.Conn
	R    *bufio.Reader // reads from Conn
}

// Dial connects to addr; the connection is closed at cleanup.
func Dial(t testing.TB, addr net.Addr) *RawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), WaitTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(WaitTimeout)); err != nil {
		t.Fatalf("deadline: %v", err)
	}
	return &RawConn{t: t, Conn: conn, R: bufio.NewReader(conn)}
}

// Do sends an HTTP/1.1 request with the given extra header lines and
// reads the response (its body included, unless it switches protocols).
func (rc *RawConn) Do(method, path string, headers ...string) *http.Response {
	rc.t.Helper()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\n", method, path)
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(rc.Conn, req+"\r\n"); err != nil {
		rc.t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(rc.R, nil)
	if err != nil {
		rc.t.Fatalf("read response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		if _, err := io.ReadAll(resp.Body); err != nil {
			rc.t.Fatalf("read body: %v", err)
		}
		resp.Body.Close()
	}
	return resp
}

// ClosedByServer reports whether the server has closed the connection
// (EOF with nothing more to read).
func (rc *RawConn) ClosedByServer() bool {
	rc.t.Helper()
	_, err := rc.R.ReadByte()
	if err != nil && err != io.EOF {
		rc.t.Fatalf("read after response: %v", err)
	}
	return err == io.EOF
}
