package httpmod_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// The requests cut at the stop deadline are named in the report by their
// route pattern: those whose handlers return as their context ends; a
// handler that ignores it stays unnamed. The one ERROR line says both.
func TestCutRequestsNamedByRoute(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	c, err := lifecycle.New(lifecycle.Config{GracePeriod: time.Second, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None,
		TeardownReserve: 200 * time.Millisecond, Margin: 100 * time.Millisecond, IgnoreSignals: true},
		lifecycle.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	entered := make(chan struct{}, 3)
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(_ http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done() // heeds its context: returns as the connection closes
	})
	mux.HandleFunc("GET /stuck", func(http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-release // ignores it
	})
	srv, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, c, mux)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.MarkStarted()
	client := servertest.NewClient(t)
	done := make(chan struct{}, 3)
	for _, path := range []string{"/orders/1", "/orders/2", "/stuck"} {
		go func() {
			defer func() { done <- struct{}{} }()
			if resp, err := client.Get("http://" + srv.Addr().String() + path); err == nil {
				resp.Body.Close()
			}
		}()
	}
	for range 3 {
		waittest.Recv(t, entered, servertest.WaitTimeout, "a handler")
	}

	r := servertest.WaitReport(t, c)
	if r.Cut[httpmod.CutRequests] != 3 {
		t.Errorf("cut %v, want requests=3", r.Cut)
	}
	if got := r.CutNames[httpmod.CutRequests]; len(got) != 1 || got["GET /orders/{id}"] != 2 {
		t.Errorf("cut names %v, want GET /orders/{id}: 2", r.CutNames)
	}
	errs := logs.FilterLevelExact(zapcore.ErrorLevel).All()
	if len(errs) != 1 || !strings.Contains(errs[0].Message, "requests 3 (GET /orders/{id} 2, unnamed 1)") {
		t.Errorf("ERROR lines %v, want one naming the routes cut", errs)
	}
	close(release)
	for range 3 {
		waittest.Recv(t, done, servertest.WaitTimeout, "a client")
	}
}
