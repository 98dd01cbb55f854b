package wsmod

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Event is one server-sent event (the HTML "event stream" format).
type Event struct {
	// ID sets the stream's last event ID (line "id:"); empty: none. No line
	// breaks or NUL.
	ID string `yaml:"id" json:"id"`
	// Event is the event type (line "event:"); empty: "message". No line
	// breaks.
	Event string `yaml:"event" json:"event"`
	// Data is the payload; each of its lines becomes a "data:" line.
	Data string `yaml:"data" json:"data"`
	// Retry is the reconnection delay hint (line "retry:", milliseconds);
	// zero: none.
	Retry time.Duration `yaml:"retry" json:"retry"`
}

// ErrInvalidEvent is matched by the error of [Stream.Send] for an event
// whose ID or type holds a line break (or the ID a NUL).
var ErrInvalidEvent = errors.New("wsmod: invalid event")

// ErrStreamClosed is returned by [Stream.Send] once the final event is out
// (the stop phase) or the handler has returned.
var ErrStreamClosed = errors.New("wsmod: stream closed")

func (e Event) validate() error {
	if strings.ContainsAny(e.ID, "\r\n\x00") {
		return fmt.Errorf("%w: ID %q holds a line break or NUL", ErrInvalidEvent, e.ID)
	}
	if strings.ContainsAny(e.Event, "\r\n") {
		return fmt.Errorf("%w: Event %q holds a line break", ErrInvalidEvent, e.Event)
	}
	if e.Retry < 0 {
		return fmt.Errorf("%w: Retry=%v is negative", ErrInvalidEvent, e.Retry)
	}
	return nil
}

// appendEvent encodes e (already validated) onto b.
func appendEvent(b []byte, e Event) []byte {
	if e.ID != "" {
		b = append(b, "id: "...)
		b = append(b, e.ID...)
		b = append(b, '\n')
	}
	if e.Event != "" {
		b = append(b, "event: "...)
		b = append(b, e.Event...)
		b = append(b, '\n')
	}
	if e.Retry > 0 {
		b = append(b, "retry: "...)
		b = strconv.AppendInt(b, e.Retry.Milliseconds(), 10)
		b = append(b, '\n')
	}
	if e.Data != "" || (e.ID == "" && e.Event == "" && e.Retry == 0) {
		data := strings.ReplaceAll(e.Data, "\r\n", "\n")
		data = strings.ReplaceAll(data, "\r", "\n")
		for line := range strings.SplitSeq(data, "\n") {
			b = append(b, "data: "...)
			b = append(b, line...)
			b = append(b, '\n')
		}
	}
	return append(b, '\n')
}

// Stream is one SSE response. Send is safe for concurrent use; the
// registry's final event is serialized with it.
type Stream struct {
	w  http.ResponseWriter
	rc *http.ResponseController

	mu     sync.Mutex
	buf    []byte
	closed bool  // the final event is out, or the handler returned
	err    error // the first write error

	lifeMu sync.Mutex // guards ended; never held across a write
	ended  bool       // the handler has returned: w is no longer ours
}

// Send writes e and flushes it to the client. It returns [ErrStreamClosed]
// once the stream is closing, and the write error once a write failed (the
// client went away).
func (s *Stream) Send(e Event) error {
	if err := e.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStreamClosed
	}
	return s.writeLocked(e)
}

func (s *Stream) writeLocked(e Event) error {
	if s.err != nil {
		return s.err
	}
	s.buf = appendEvent(s.buf[:0], e)
	if _, err := s.w.Write(s.buf); err != nil {
		s.err = err
		return err
	}
	if err := s.rc.Flush(); err != nil {
		s.err = err
		return err
	}
	return nil
}

// final writes the final event (if the stream is still open) with a write
// deadline, and closes the stream to Send.
func (s *Stream) final(e Event, timeout time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	_ = s.rc.SetWriteDeadline(time.Now().Add(timeout))
	_ = s.writeLocked(e)
	// The chunked body's terminator is written after the handler returns:
	// it must not meet the deadline.
	if s.err == nil {
		_ = s.rc.SetWriteDeadline(time.Time{})
	}
}

// close marks the stream closed to Send once the handler has returned.
func (s *Stream) close() error {
	s.mu.Lock()
	s.closed = true
	err := s.err
	s.mu.Unlock()
	s.lifeMu.Lock()
	s.ended = true
	s.lifeMu.Unlock()
	return err
}

// abort makes every pending and later write fail (force-close). It does
// not take mu, which a blocked write may hold.
func (s *Stream) abort() {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if !s.ended {
		_ = s.rc.SetWriteDeadline(time.Unix(1, 0))
	}
}

// sendFinal writes the final event of an SSE session. Both the stop
// participant and the handler's own return call it; [Stream.final] writes it
// once, whoever comes first, and never after the handler has returned.
func (r *Registry) sendFinal(s *session) {
	s.closing.Store(true)
	s.stream.final(r.finalEvent(), r.cfg.WriteTimeout)
}

// finalEvent is [Config.FinalEvent] with its retry hint lengthened by a
// random share of [Config.FinalEventRetryJitter], whole milliseconds.
func (r *Registry) finalEvent() Event {
	e := r.cfg.FinalEvent
	if j := r.cfg.FinalEventRetryJitter; e.Retry > 0 && j >= time.Millisecond {
		e.Retry += time.Duration(rand.Int64N(int64(j/time.Millisecond)+1)) * time.Millisecond
	}
	return e
}

// SSE returns a handler that opens an event stream (status 200,
// Content-Type text/event-stream, Cache-Control no-cache, flushed at once),
// registers the session and runs h with the stream and a context that ends
// when the registry ends the session in the stop phase, at its turn in the
// close window (or when the client goes away). The context carries the
// request's values; [Request] returns the request itself.
//
// At the stop phase the registry writes [Config.FinalEvent] (serialized with
// Send; Send fails with [ErrStreamClosed] afterwards) and cancels the
// context; h must then return promptly, so that the chunked body ends
// cleanly (the client reads io.EOF) and [net/http.Server.Shutdown], which
// waits for it as an active request, can finish. If h ignores its context
// until the close deadline, its writes are made to fail and the session is
// counted as forced.
//
// In the stop phase a new request gets 503 with Retry-After. An error
// returned by h before any write failed is logged (warn level): the
// response is already committed, and the body ends as if h had returned
// nil.
//
// The handler mounts on any router: [http.ServeMux] takes it as is
// (mux.Handle("GET /events", reg.SSE(fn))), echo through echo.WrapHandler.
// The response writer must support flushing ([http.ResponseController]).
func (r *Registry) SSE(h func(ctx context.Context, s *Stream) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serveSSE(w, req, h)
	})
}

func (r *Registry) serveSSE(w http.ResponseWriter, req *http.Request, h func(context.Context, *Stream) error) {
	if r.Stopping() {
		r.refuse(w, KindSSE)
		return
	}
	rc := http.NewResponseController(w)
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		r.log.Warn("sse flush", zap.Error(err), zap.String("remote", req.RemoteAddr))
		return
	}

	ctx, cancel := context.WithCancel(withRequest(req))
	defer cancel()
	s := r.newSession(KindSSE, cancel)
	s.stream = &Stream{w: w, rc: rc}
	defer func() {
		if r.stopping.Load() {
			r.sendFinal(s)
		}
		werr := s.stream.close()
		o := outcomeClean
		switch {
		case s.forced.Load():
			o = outcomeForced
		case werr != nil || req.Context().Err() != nil:
			o = outcomeAborted
		}
		r.remove(s, o)
	}()
	r.registered(s)
	herr := h(ctx, s.stream)
	if herr != nil && !errors.Is(herr, ErrStreamClosed) && !errors.Is(herr, context.Canceled) {
		if werr := s.stream.writeErr(); werr == nil || !errors.Is(herr, werr) {
			r.log.Warn("sse handler", zap.Error(herr))
			return
		}
		r.log.Debug("sse client gone", zap.Error(herr))
	}
}

func (s *Stream) writeErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
