package httpmod

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drainfx/drainfx/lifecycle"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
)

const waitTimeout = 10 * time.Second

// quick is a budget whose drain ends at once.
var quick = lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None}

// stopCoordinator stops c at the end of a test (its report is out when it
// returns).
func stopCoordinator(t *testing.T, c *lifecycle.Coordinator) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("coordinator Stop: %v", err)
	}
}

// closeListener breaks the server's listener under net/http's feet, so
// that Serve fails with an error other than ErrServerClosed.
func closeListener(t *testing.T, s *Server) {
	t.Helper()
	s.mu.Lock()
	ln := s.ln
	s.mu.Unlock()
	if err := ln.Close(); err != nil {
		t.Fatalf("close listener: %v", err)
	}
}

func TestServeErrorIsReported(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(quick)
	if err != nil {
		t.Fatal(err)
	}
	defer stopCoordinator(t, c)
	serveErr := make(chan error, 1)
	s, err := New(Config{Addr: "127.0.0.1:0"}, c, nil, WithServeError(func(err error) { serveErr <- err }))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	closeListener(t, s)
	select {
	case err := <-serveErr:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("serve error = %v, want net.ErrClosed", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the serve error was not reported")
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Errorf("Stop after a serve error: %v", err)
	}
}

func TestServeErrorShutsDownTheApp(t *testing.T) {
	t.Parallel()
	var s *Server
	app := fxtest.New(t,
		lifecycle.Module,
		Module,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Supply(Config{Addr: "127.0.0.1:0"}),
		fx.Populate(&s),
	).RequireStart()
	closeListener(t, s)
	select {
	case sig := <-app.Wait():
		if sig.ExitCode != 1 {
			t.Errorf("exit code = %d, want 1", sig.ExitCode)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the app was not asked to shut down")
	}
	app.RequireStop()
}

// The adaptive drain hears of every new connection on the public listener,
// once per connection: keep-alive requests do not count again.
func TestNoteNewConnectionOncePerConnection(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(quick)
	if err != nil {
		t.Fatal(err)
	}
	defer stopCoordinator(t, c)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	s, err := New(Config{Addr: "127.0.0.1:0"}, c, mux)
	if err != nil {
		t.Fatal(err)
	}
	var accepts atomic.Int64
	s.d.noteConn = func(net.Addr) { accepts.Add(1) }
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
	}()

	url := "http://" + s.Addr().String() + "/"
	tests := []struct {
		name string
		give int // requests, on one keep-alive connection
	}{
		{"first connection", 3},
		{"second connection", 2},
	}
	for i, tt := range tests {
		tr := &http.Transport{}
		client := &http.Client{Transport: tr, Timeout: waitTimeout}
		for range tt.give {
			resp, err := client.Get(url)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			resp.Body.Close()
		}
		tr.CloseIdleConnections()
		if got, want := accepts.Load(), int64(i+1); got != want {
			t.Errorf("%s: %d accepts noted, want %d", tt.name, got, want)
		}
	}
}

// A hijacked connection is either claimed by a registry or cut at the stop
// deadline, never both: the deadline skips a claimed connection, and a
// claim that comes after the deadline cut the connection fails, so that
// the registry does not count it again.
func TestHijackedConnClaimedOrCut(t *testing.T) {
	t.Parallel()
	newConn := func(set *connSet) *trackedConn {
		a, b := net.Pipe()
		t.Cleanup(func() { a.Close(); b.Close() })
		tc := &trackedConn{Conn: a, set: set}
		set.hijack(tc)
		return tc
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel() // the stop deadline has passed

	set := newConnSet()
	claimed, left := newConn(set), newConn(set)
	if !claimed.ClaimHijacked() {
		t.Fatal("claim before the deadline failed")
	}
	if n := set.waitHijacked(ended); n != 1 {
		t.Errorf("cut %d connections at the deadline, want 1: the claimed one is the registry's", n)
	}
	if left.ClaimHijacked() {
		t.Error("claim of a connection the deadline cut succeeded: it would be counted twice")
	}
	set.mu.Lock()
	defer set.mu.Unlock()
	if claimed.closed || !left.closed {
		t.Errorf("closed at the deadline: claimed %v, unclaimed %v; want only the unclaimed one", claimed.closed, left.closed)
	}
}
