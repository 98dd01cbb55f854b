// Package loadclient is the protocol side of the load clients that the
// rollout check (internal/rollout) and the test kit
// (lifecycle/lifecycletest) send: one HTTP request that is never replayed,
// the reading of an event stream, and the judging of how a WebSocket
// session ended. Each caller keeps its own schedule (the kit's model of the
// proxies, the rollout's reconnecting clients); what counts as an answer, an
// event and a clean end is decided here, once.
package loadclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Answer is what one request got back.
type Answer struct {
	Status string // "200 OK"
	Code   int
	Body   []byte
	// Close is true if the answer carried Connection: close.
	Close bool
	// Conns is how many connections the request was sent on: 2 when Go's
	// transport resent it on a new connection after a reused one was
	// closed (it does so for idempotent requests only).
	Conns int
}

// Send sends method url with header and body (nil: none) on c and reads the
// answer in full. The body is never replayed (GetBody is nil), so the
// transport cannot send a POST twice. The error is the transport's, a body
// that could not be read ("STATUS: body: …"), or a status other than 2xx
// ("answered STATUS"); the Answer holds what was received either way.
func Send(ctx context.Context, c *http.Client, method, url string, header http.Header, body []byte) (Answer, error) {
	var conns atomic.Int32
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { conns.Add(1) },
	})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return Answer{}, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.GetBody = nil // never replayed
	resp, err := c.Do(req)
	if err != nil {
		return Answer{Conns: int(conns.Load())}, err
	}
	defer resp.Body.Close()
	a := Answer{Status: resp.Status, Code: resp.StatusCode, Close: resp.Close}
	a.Body, err = io.ReadAll(resp.Body)
	a.Conns = int(conns.Load())
	if err != nil {
		return a, fmt.Errorf("%s: body: %w", resp.Status, err)
	}
	if resp.StatusCode/100 != 2 {
		return a, fmt.Errorf("answered %s", resp.Status)
	}
	return a, nil
}

// ParseHeader parses "Name: value".
func ParseHeader(s string) (name, value string, err error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" || strings.ContainsAny(name, " \t") {
		return "", "", fmt.Errorf("header %q: want Name: value", s)
	}
	return http.CanonicalHeaderKey(name), strings.TrimSpace(value), nil
}

// CleanClose reports whether a WebSocket close code ends a session without
// loss: 1000 (normal), 1001 (going away), 1012 (service restart).
func CleanClose(code int) bool {
	return code == websocket.CloseNormalClosure || code == websocket.CloseGoingAway || code == websocket.CloseServiceRestart
}

// CloseCode is the code of the close frame that ended a WebSocket session
// with err, or 1006 (abnormal closure) when none came: the connection broke.
func CloseCode(err error) int {
	if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
		return ce.Code
	}
	return websocket.CloseAbnormalClosure
}

// Event is one event of an event stream (text/event-stream).
type Event struct {
	// Type is the event's type: its "event:" field, or "message".
	Type string
	// Data is its data lines, joined with "\n".
	Data string
}

// EventReader reads the events of a stream, as an EventSource does: fields
// up to an empty line make an event (one with a data or an event field);
// comments are skipped.
type EventReader struct {
	br    *bufio.Reader
	retry time.Duration
}

// NewEventReader reads events from r.
func NewEventReader(r io.Reader) *EventReader { return &EventReader{br: bufio.NewReader(r)} }

// Retry is the reconnection time the stream set last ("retry:"), or 0.
func (r *EventReader) Retry() time.Duration { return r.retry }

// Next returns the next event. At the stream's end it returns io.EOF if
// the stream ended between lines (an event left without its empty line is
// dropped, as an EventSource drops it), io.ErrUnexpectedEOF if it ended in
// the middle of a line, or the error that broke the body.
func (r *EventReader) Next() (Event, error) {
	var (
		ev      Event
		data    []string
		pending bool
	)
	for {
		line, err := r.br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) && line != "" {
				err = io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if pending {
				if ev.Type == "" {
					ev.Type = "message"
				}
				ev.Data = strings.Join(data, "\n")
				return ev, nil
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "": // a comment
		case "event":
			ev.Type, pending = value, true
		case "data":
			data, pending = append(data, value), true
		case "retry":
			if ms, err := strconv.ParseUint(value, 10, 32); err == nil {
				r.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
}
