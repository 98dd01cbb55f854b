package httpmod_test

import (
	"bufio"
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/probemod"
)

// Config.MaxConns bounds the public connections open at once: the ones
// beyond wait in the kernel's accept queue, and are served once others
// close. The admin server answers all along.
func TestMaxConnsBoundsPublicConnections(t *testing.T) {
	t.Parallel()
	const limit, total = 8, 20
	s, c := servertest.Start(t, quick, httpmod.Config{MaxConns: limit}, okMux())
	admin, err := probemod.New(probemod.Config{Addr: "127.0.0.1:0"}, c, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Stop(context.Background()) })

	// Every connection sends its request at once; the answers come back on
	// served, by connection.
	conns := make([]net.Conn, total)
	served := make(chan int, total)
	for i := range conns {
		conn, err := net.DialTimeout("tcp", s.Addr().String(), waitTimeout)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = conn
		t.Cleanup(func() { conn.Close() })
		if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		go func() {
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				return // closed by the test
			}
			resp.Body.Close()
			served <- i
		}()
	}
	open := make([]int, 0, total) // served, kept open (keep-alive)
	for range limit {
		open = append(open, waittest.Recv(t, served, waitTimeout, "the first connections' answers"))
	}
	// No more while 8 are open. (A wait that can only miss the fault, not
	// fail a right server: with the bound, no answer can come.)
	select {
	case i := <-served:
		t.Fatalf("connection %d served while %d others were open", i, limit)
	case <-time.After(300 * time.Millisecond):
	}
	probes := servertest.NewClient(t)
	for _, path := range []string{"/livez", "/readyz"} {
		if status, _ := servertest.Get(t, probes, "http://"+admin.Addr().String()+path); status != http.StatusOK {
			t.Errorf("GET %s = %d with the public connections at their bound, want 200", path, status)
		}
	}
	// Each connection closed lets one more in.
	for n := limit; n < total; n++ {
		conns[open[0]].Close()
		open = append(open[1:], waittest.Recv(t, served, waitTimeout, "an answer after a close"))
	}
	for _, i := range open {
		conns[i].Close()
	}
}

// net/http retries an Accept that fails with a temporary error, such as
// EMFILE (too many open files), after a pause: the server keeps serving,
// and the serve error is not reported.
func TestAcceptEMFILEDoesNotStopTheServer(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, quick)
	stopAtCleanup(t, c)
	serveErr := make(chan error, 1)
	d, err := httpmod.NewDrain(c, httpmod.WithServeError(func(err error) { serveErr <- err }))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d.Handler(okMux()), ReadHeaderTimeout: time.Minute,
		ErrorLog: log.New(io.Discard, "", 0)} // "http: Accept error: …; retrying in 5ms"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	failing := &emfileListener{Listener: ln, left: 3}
	if err := d.Serve(srv, failing); err != nil {
		t.Fatal(err)
	}
	c.MarkStarted()
	client := servertest.NewClient(t)
	if status, body := servertest.Get(t, client, "http://"+ln.Addr().String()+"/"); status != http.StatusOK || body != "ok" {
		t.Errorf("GET after 3 EMFILE accepts = %d %q, want 200 ok", status, body)
	}
	client.CloseIdleConnections()
	if r := servertest.WaitReport(t, c); r.ExitCode != 0 {
		t.Errorf("report not clean: %+v", r)
	}
	select {
	case err := <-serveErr:
		t.Errorf("serve error reported: %v", err)
	default:
	}
}

// emfileListener fails its first left Accepts as accept(2) does when the
// process is out of file descriptors.
type emfileListener struct {
	net.Listener
	left int // only Serve's goroutine calls Accept
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.left > 0 {
		l.left--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}
