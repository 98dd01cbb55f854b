package httpmod_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// echoBody is a POST /echo handler that reads the whole body, answers 408
// if reading it timed out, and sends the read error (nil if none) on errs.
func echoBody(errs chan<- error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		errs <- err
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, os.ErrDeadlineExceeded) {
				code = http.StatusRequestTimeout
			}
			http.Error(w, err.Error(), code)
			return
		}
		_, _ = w.Write(body)
	}
}

// trickle opens a connection to addr, sends a POST /echo header announcing
// a 1000-byte body, then one byte of it every 200 ms until the connection
// fails or the test ends. The connection is returned to read the answer.
func trickle(t *testing.T, addr net.Addr) *servertest.RawConn {
	t.Helper()
	rc := servertest.Dial(t, addr)
	if _, err := io.WriteString(rc.Conn, "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := rc.Conn.Write([]byte("x")); err != nil {
				return
			}
			select {
			case <-quit:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(quit); <-done })
	return rc
}

// A client that trickles a body (a byte every 200 ms) is bounded by
// BodyReadTimeout: its handler's read fails with a deadline error, the
// handler answers, and the connection closes. A request without a body
// (a stream) and one whose body was read in time are not touched by the
// deadline, however long their handlers run past it: their contexts stay
// alive and their answers arrive.
func TestBodyReadTimeoutEndsATricklingBody(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 1)
	trickled := make(chan struct{}) // the trickling body's read has failed
	long := func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			if _, err := io.ReadAll(r.Body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		select { // past the deadline of a body
		case <-trickled:
		case <-r.Context().Done():
		}
		if err := r.Context().Err(); err != nil {
			http.Error(w, "context: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}
	s, _ := servertest.Start(t, servertest.Quick, httpmod.Config{BodyReadTimeout: 500 * time.Millisecond},
		muxOf(map[string]http.HandlerFunc{"POST /echo": echoBody(errs), "GET /long": long, "POST /long": long}))
	client := servertest.NewClient(t)
	url := "http://" + s.Addr().String()
	type answer struct {
		status int
		body   string
		err    error
	}
	others := make(chan answer, 2)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		go func() {
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("read at once")
			}
			req, err := http.NewRequest(method, url+"/long", body)
			if err != nil {
				others <- answer{err: err}
				return
			}
			resp, err := client.Do(req)
			if err != nil {
				others <- answer{err: err}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			others <- answer{resp.StatusCode, string(b), err}
		}()
	}
	waittest.Eventually(t, waitTimeout, func() bool { return s.InFlight() == 2 }, "the long requests in their handlers")

	rc := trickle(t, s.Addr())
	err := waittest.Recv(t, errs, waitTimeout, "the trickling body's read to end")
	close(trickled)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the handler read the trickling body with %v, want a deadline error", err)
	}
	resp, err := http.ReadResponse(rc.R, nil)
	if err != nil {
		t.Fatalf("the trickling client got no answer: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("the trickling client got %d, want the handler's 408", resp.StatusCode)
	}
	if !rc.ClosedByServer() {
		t.Error("the connection of the trickling body is still open")
	}
	for range 2 {
		a := waittest.Recv(t, others, waitTimeout, "the long requests' answers")
		if a.err != nil || a.status != http.StatusOK || a.body != "ok" {
			t.Errorf("a long request past the body deadline got %d %q, %v; want 200 ok", a.status, a.body, a.err)
		}
	}
}

// A trickling body at the stop phase no longer holds Shutdown to the stop
// deadline: BodyReadTimeout ends it, its handler answers, and the stop
// phase ends then, with nothing cut (the request got its answer; a body
// too slow for the bound fails the same way outside a shutdown). Without
// the bound it was cut at the deadline and the shutdown was unclean.
func TestTricklingBodyDoesNotHoldTheStop(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 1)
	lcfg := lifecycle.Config{GracePeriod: 8 * time.Second, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None,
		TeardownReserve: time.Second, Margin: 500 * time.Millisecond}
	s, c := servertest.Start(t, lcfg, httpmod.Config{BodyReadTimeout: time.Second},
		muxOf(map[string]http.HandlerFunc{"POST /echo": echoBody(errs)}))
	rc := trickle(t, s.Addr())
	waittest.Eventually(t, waitTimeout, func() bool { return s.InFlight() == 1 }, "the trickling request in its handler")

	r := servertest.WaitReport(t, c)
	if err := <-errs; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the handler read the body with %v, want a deadline error", err)
	}
	if r.ExitCode != 0 || len(r.Cut) > 0 {
		t.Errorf("report: clean %v, cut %v; want clean, nothing cut", r.ExitCode == 0, r.Cut)
	}
	for _, h := range r.Hooks {
		if h.Name == "http" && h.Actual >= h.Planned/2 {
			t.Errorf("the http stop took %v of its %v: held by the trickling body", h.Actual, h.Planned)
		}
	}
	resp, err := http.ReadResponse(rc.R, nil)
	if err != nil {
		t.Fatalf("the trickling client got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("the trickling client got %d, want the handler's 408", resp.StatusCode)
	}
}

// A request body over HTTP/2 (h2c) is bounded the same way, through the
// stream's read deadline.
func TestBodyReadTimeoutOverH2C(t *testing.T) {
	t.Parallel()
	errs := make(chan error, 1)
	s, _ := servertest.Start(t, servertest.Quick, httpmod.Config{H2C: true, BodyReadTimeout: 500 * time.Millisecond},
		muxOf(map[string]http.HandlerFunc{"POST /echo": echoBody(errs)}))
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: waitTimeout}

	pr, pw := io.Pipe()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() { // a byte every 200 ms
		defer close(done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := pw.Write([]byte("x")); err != nil {
				return
			}
			select {
			case <-quit:
				_ = pw.Close()
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		close(quit)
		_ = pr.Close() // a Write waiting for the transport to read fails
		<-done
	})
	answered := make(chan string, 1)
	go func() {
		resp, err := client.Post("http://"+s.Addr().String()+"/echo", "text/plain", pr)
		if err != nil {
			answered <- err.Error()
			return
		}
		resp.Body.Close()
		answered <- fmt.Sprintf("%d over HTTP/%d", resp.StatusCode, resp.ProtoMajor)
	}()
	if err := waittest.Recv(t, errs, waitTimeout, "the trickling body's read to end"); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the handler read the trickling body with %v, want a deadline error", err)
	}
	if got := waittest.Recv(t, answered, waitTimeout, "the answer"); got != "408 over HTTP/2" {
		t.Errorf("the client got %s, want 408 over HTTP/2", got)
	}
}
