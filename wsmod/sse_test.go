package wsmod_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// 50 SSE readers: at the stop phase each reads the final event and then a
// clean end of the body (io.EOF, not io.ErrUnexpectedEOF), while the HTTP
// server's Shutdown waits for the handlers.
func TestSSEStop(t *testing.T) {
	const readers = 50
	var returned atomic.Int64
	f := newFixture(t, lifecycle.Config{DrainDelay: 20 * time.Millisecond}, wsmod.Config{},
		func(mux *http.ServeMux, r *wsmod.Registry) {
			mux.Handle("GET /events", r.SSE(func(ctx context.Context, s *wsmod.Stream) error {
				defer returned.Add(1)
				for i := 0; ; i++ {
					if err := s.Send(wsmod.Event{ID: strconv.Itoa(i), Data: fmt.Sprintf("%d", i)}); err != nil {
						return err
					}
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(5 * time.Millisecond): // the stream's own pace, not a wait in the test
					}
				}
			}))
		})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: readers}}
	defer client.CloseIdleConnections()

	type result struct {
		events []sseEvent
		err    error
	}
	results := make([]result, readers)
	var wg sync.WaitGroup
	var started sync.WaitGroup
	for i := range readers {
		resp, err := client.Get(f.srv.URL("/events"))
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" ||
			resp.Header.Get("Cache-Control") != "no-cache" {
			t.Fatalf("response %s %v", resp.Status, resp.Header)
		}
		first := make(chan struct{})
		started.Go(func() { <-first })
		wg.Go(func() {
			defer resp.Body.Close()
			evs, err := readSSE(resp.Body, first)
			results[i] = result{evs, err}
		})
	}
	started.Wait()
	waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindSSE) == readers }, "50 streams")

	f.stop(t)
	wg.Wait()
	retries := map[int]bool{}
	for i, res := range results {
		if res.err != io.EOF {
			t.Errorf("reader %d: body ended with %v, want io.EOF", i, res.err)
		}
		if len(res.events) < 2 {
			t.Errorf("reader %d: %d events", i, len(res.events))
			continue
		}
		last := res.events[len(res.events)-1]
		// retry: 1000 ms plus a jitter of up to half of it.
		retry, err := strconv.Atoi(last.retry)
		if err != nil || retry < 1000 || retry > 1500 {
			t.Errorf("reader %d: retry %q, want 1000-1500", i, last.retry)
		}
		retries[retry] = true
		last.retry = ""
		if want := (sseEvent{event: "shutdown", data: "server shutting down"}); last != want {
			t.Errorf("reader %d: last event %+v, want %+v", i, last, want)
		}
	}
	// 50 draws of 501 values: all alike only if the jitter is missing.
	if len(retries) < 2 {
		t.Errorf("every final event has retry %v: no jitter", retries)
	}
	if got := returned.Load(); got != readers {
		t.Errorf("%d handlers returned, want %d", got, readers)
	}
	if st := f.r.Stats().SSE; st.Clean != readers || st.Forced != 0 || st.Active != 0 {
		t.Errorf("stats %+v, want %d clean", st, readers)
	}
	if rep := report(t, f.c); rep.ExitCode != 0 || rep.InFlightStop["sse"] != readers {
		t.Errorf("report cut %v, in flight at stop %v", rep.Cut, rep.InFlightStop)
	}
}

// A handler that ignores its context is force-closed at the deadline,
// counted, and abandoned by Stop after WriteTimeout; its Send after the
// final event fails with ErrStreamClosed, and its client sees the body cut.
func TestSSEHandlerIgnoringContext(t *testing.T) {
	release := make(chan struct{})
	sendErr := make(chan error, 1)
	cfg := wsmod.Config{CloseTimeout: 50 * time.Millisecond, WriteTimeout: 50 * time.Millisecond}
	f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, cfg,
		func(mux *http.ServeMux, r *wsmod.Registry) {
			mux.Handle("GET /events", r.SSE(func(ctx context.Context, s *wsmod.Stream) error {
				if err := s.Send(wsmod.Event{Data: "hello"}); err != nil {
					return err
				}
				<-release // ignores ctx
				err := s.Send(wsmod.Event{Data: "too late"})
				sendErr <- err
				return err
			}))
		})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(f.srv.URL("/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make(chan struct{})
	type result struct {
		events []sseEvent
		err    error
	}
	done := make(chan result, 1)
	go func() {
		evs, err := readSSE(resp.Body, first)
		done <- result{evs, err}
	}()
	<-first

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := f.r.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.r.Stats().SSE; st.Active != 1 {
		t.Fatalf("stats %+v, want the stuck handler still active", st)
	}
	if rep := report(t, f.c); rep.Cut[wsmod.CutSessions] != 1 {
		t.Errorf("report cut %v, want 1 session", rep.Cut)
	}
	close(release)
	if err := <-sendErr; err != wsmod.ErrStreamClosed {
		t.Errorf("send after the final event: %v, want ErrStreamClosed", err)
	}
	waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindSSE) == 0 }, "the stuck handler to return")
	res := <-done
	if len(res.events) != 2 || res.events[0].data != "hello" || res.events[1].event != "shutdown" {
		t.Errorf("events %+v, want hello then the final event", res.events)
	}
	if res.err == io.EOF {
		t.Error("forced stream ended cleanly, want it cut")
	}
	if st := f.r.Stats().SSE; st.Forced != 1 || st.Active != 0 {
		t.Errorf("stats %+v, want 1 forced", st)
	}
}

func TestEventEncoding(t *testing.T) {
	tests := []struct {
		name string
		give wsmod.Event
		want string
	}{
		{"data", wsmod.Event{Data: "x"}, "data: x\n\n"},
		{"all fields", wsmod.Event{ID: "7", Event: "tick", Data: "a\nb\r\nc", Retry: 1500 * time.Millisecond},
			"id: 7\nevent: tick\nretry: 1500\ndata: a\ndata: b\ndata: c\n\n"},
		{"empty", wsmod.Event{}, "data: \n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{},
				func(mux *http.ServeMux, r *wsmod.Registry) {
					mux.Handle("GET /events", r.SSE(func(ctx context.Context, s *wsmod.Stream) error {
						return s.Send(tt.give)
					}))
				})
			client := &http.Client{Transport: &http.Transport{}}
			defer client.CloseIdleConnections()
			resp, err := client.Get(f.srv.URL("/events"))
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.want {
				t.Errorf("body %q, want %q", b, tt.want)
			}
		})
	}
}

func TestEventInvalid(t *testing.T) {
	tests := []struct {
		name string
		give wsmod.Event
	}{
		{"line break in ID", wsmod.Event{ID: "a\nb", Data: "x"}},
		{"NUL in ID", wsmod.Event{ID: "a\x00", Data: "x"}},
		{"line break in type", wsmod.Event{Event: "a\rb", Data: "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wsmod.New(wsmod.Config{FinalEvent: tt.give}, newCoordinator(t, lifecycle.Config{DrainDelay: lifecycle.None}))
			if !errors.Is(err, wsmod.ErrConfig) || !strings.Contains(err.Error(), "FinalEvent") {
				t.Errorf("New: %v, want an ErrConfig naming FinalEvent", err)
			}
		})
	}
}

// A reader that goes away ends its handler's context; the session counts as
// aborted.
func TestSSEClientGoesAway(t *testing.T) {
	f := newFixture(t, lifecycle.Config{DrainDelay: lifecycle.None}, wsmod.Config{},
		func(mux *http.ServeMux, r *wsmod.Registry) {
			mux.Handle("GET /events", r.SSE(func(ctx context.Context, s *wsmod.Stream) error {
				if err := s.Send(wsmod.Event{Data: "hello"}); err != nil {
					return err
				}
				<-ctx.Done()
				return nil
			}))
		})
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(f.srv.URL("/events"))
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = readSSE(resp.Body, first)
	}()
	<-first
	_ = resp.Body.Close()
	<-done
	waittest.Eventually(t, waitTimeout, func() bool { return f.r.Len(wsmod.KindSSE) == 0 }, "the session to end")
	if st := f.r.Stats().SSE; st.Aborted != 1 || st.Clean != 0 {
		t.Errorf("stats %+v, want 1 aborted", st)
	}
}
