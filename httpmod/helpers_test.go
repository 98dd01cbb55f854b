package httpmod_test

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
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/labstack/echo/v4"
)

// waitTimeout bounds every wait of these tests; reaching it is a failure,
// never the expected path.
const waitTimeout = 10 * time.Second

// quick is a budget whose drain ends at once: no delay, no quiet period.
var quick = lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None}

// startServer builds a coordinator for lcfg and a started server for cfg
// (on 127.0.0.1:0 unless cfg says otherwise), and marks the service
// started, so that a drain is a drain (a service that never served has
// nothing to drain). Cleanup stops both.
func startServer(t *testing.T, lcfg lifecycle.Config, cfg httpmod.Config, opts ...httpmod.Option) (*httpmod.Server, *lifecycle.Coordinator) {
	t.Helper()
	c, err := lifecycle.New(lcfg)
	if err != nil {
		t.Fatalf("lifecycle.New: %v", err)
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := httpmod.New(cfg, c, opts...)
	if err != nil {
		t.Fatalf("httpmod.New: %v", err)
	}
	if err := s.Start(context.Background()); err != nil {
		_ = c.Stop(context.Background()) // nothing served: no drain
		t.Fatalf("Start: %v", err)
	}
	c.MarkStarted()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return s, c
}

// waitReport waits for c's report, after a Stop that returned early (its ctx
// ended) or that another goroutine runs.
func waitReport(t *testing.T, c *lifecycle.Coordinator) lifecycle.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("waiting for the report: %v", err)
	}
	r, ok := c.Telemetry().Report()
	if !ok {
		t.Fatal("no report after Stop")
	}
	return r
}

// routes registers fn as the server's only route set.
func routes(fn func(e *echo.Echo)) httpmod.Option {
	return httpmod.WithRoutes(httpmod.RouteFunc(fn))
}

func okHandler(c echo.Context) error { return c.String(http.StatusOK, "ok") }

// stuck is a GET /block handler that ignores its context, as a stuck
// handler does, until the test closes release.
type stuck struct {
	entered chan struct{} // closed when the handler runs
	release chan struct{} // close to let the handler return
}

func newStuck() *stuck { return &stuck{entered: make(chan struct{}), release: make(chan struct{})} }

// route registers GET /block.
func (h *stuck) route() httpmod.Option {
	return routes(func(e *echo.Echo) {
		e.GET("/block", func(c echo.Context) error {
			close(h.entered)
			<-h.release
			return c.NoContent(http.StatusOK)
		})
	})
}

// request sends GET /block to s from a goroutine and waits until the
// handler runs. The client's error arrives on the channel (nil: it got an
// answer).
func (h *stuck) request(t *testing.T, s *httpmod.Server) <-chan error {
	t.Helper()
	client := newClient(t)
	clientErr := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + s.Addr().String() + "/block")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	waittest.Recv(t, h.entered, waitTimeout, "the blocked handler")
	return clientErr
}

// newClient returns a client with a transport of its own, closed at cleanup.
func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: waitTimeout}
}

// get fetches url and returns the status and body.
func get(t *testing.T, client *http.Client, url string) (int, string) {
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

// rawConn is one client TCP connection that sends requests by hand, to see
// what happens to the connection itself.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, addr net.Addr) *rawConn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr.String(), waitTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(waitTimeout)); err != nil {
		t.Fatalf("deadline: %v", err)
	}
	return &rawConn{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// do sends a request with the given extra header lines and reads the
// response (its body included, unless it switches protocols).
func (rc *rawConn) do(method, path string, headers ...string) *http.Response {
	rc.t.Helper()
	req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\n", method, path)
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(rc.conn, req+"\r\n"); err != nil {
		rc.t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(rc.br, nil)
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

// closedByServer reports whether the server has closed the connection (EOF
// with nothing more to read).
func (rc *rawConn) closedByServer() bool {
	rc.t.Helper()
	_, err := rc.br.ReadByte()
	if err != nil && err != io.EOF {
		rc.t.Fatalf("read after response: %v", err)
	}
	return err == io.EOF
}
