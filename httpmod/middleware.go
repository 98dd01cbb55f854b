package httpmod

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// Handler returns h behind the drain middleware, which:
//
//   - counts the requests in flight ([Drain.InFlight], the gauge
//     [InFlightGauge]); the requests begun are the adaptive drain's
//     arrivals;
//   - sets the read deadline of a request's body, BodyReadTimeout from
//     now ([WithBodyReadTimeout], [Config.BodyReadTimeout]), so that a
//     client trickling a body cannot hold its handler for longer; requests
//     without a body (streams, WebSocket handshakes) get none;
//   - once the drain has begun (the coordinator's state is
//     [lifecycle.StateDraining] or later), sets Connection: close on the
//     response, except on a request that asks to switch protocols (a
//     WebSocket handshake), whose 101 must keep Connection: Upgrade;
//   - turns a panic into a 500 with Connection: close, logged with its
//     stack; [net/http.ErrAbortHandler] is passed on to net/http.
//
// A nil h serves 404s. Put the middleware outermost, so that it counts
// and recovers what every other middleware does. Every handler a drain
// wraps shares its count.
func (d *Drain) Handler(h http.Handler) http.Handler {
	if h == nil {
		h = http.NotFoundHandler()
	}
	return &middleware{d: d, next: h}
}

// middleware is the drain middleware: a plain [net/http.Handler] around the
// app's handler. It costs two atomic adds (the in-flight count, which is
// also the adaptive drain's arrival count), three atomic loads (the
// coordinator's state; whether the stop deadline has cut the requests in
// flight, whose routes then name them in the report; whether a connection
// was ever hijacked — once one was, a context lookup finds whether the
// request's own was) and a
// deferred call, and allocates nothing while not draining. A request with
// a body also costs its read deadline: a clock read and the deadline's
// set, about 150 ns on a small VM whose clock reads are slow, nearly all
// of it the clock (BenchmarkMiddleware's POST rows). (A router's own
// middleware chain may cost more: echo v4 builds a closure per middleware
// per request.)
type middleware struct {
	d    *Drain
	next http.Handler
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d := m.d
	d.work.Begin()
	defer func() {
		// A panic becomes a 500; the in-flight count goes down whatever
		// happened.
		v := recover()
		if v != nil {
			v = d.recovered(w, r, v)
		}
		// A hijacked request left the count when it was hijacked.
		if !d.anyHijack.Load() || !hijackedRequest(r) {
			if d.cut.Cutting() {
				d.cut.Add(routeOf(r)) // ended after the stop deadline: cut
			}
			d.work.End()
		}
		if v != nil {
			// Only http.ErrAbortHandler comes back: net/http's documented
			// way to abort a response (httputil.ReverseProxy uses it).
			// Passing it on lets net/http drop the connection quietly
			// rather than let a truncated body look complete.
			panic(v)
		}
	}()
	if r.ContentLength != 0 { // a body: -1 unknown (chunked), > 0 declared
		d.boundBody(w)
	}
	if d.c.State() >= lifecycle.StateDraining && !isUpgrade(r.Header) {
		// net/http closes the connection after a response whose handler
		// set Connection: close (HTTP/2 sends GOAWAY instead). Set
		// allocates the value, only while draining; one shared []string
		// would save that, but a handler writing into it would race with
		// every other response.
		w.Header().Set("Connection", "close")
	}
	m.next.ServeHTTP(w, r)
}

// boundBody sets the read deadline of the request's body,
// [Config.BodyReadTimeout] from now. It is set on the connection (HTTP/1)
// or the stream (HTTP/2) through [net/http.ResponseController], whose
// reads past it fail; over HTTP/1, net/http clears it once the body has
// been read to its end (it then reads on in the background to notice a
// client that leaves, and sets the next request's deadlines), so a handler
// that has read its body can take its time to answer. Never set for a
// request without a body: net/http's background read has begun already,
// and a deadline would end it and cancel the request's context — an SSE
// stream's, a slow GET's. A hijacked connection's deadlines are cleared by
// net/http when it is hijacked.
func (d *Drain) boundBody(w http.ResponseWriter) {
	t := d.bodyTimeout.Load()
	if t <= 0 {
		return
	}
	// Not supported by a ResponseWriter that is neither net/http's nor
	// unwraps to it: then the body is not bounded.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Duration(t)))
}

// recovered handles a handler's panic v; it returns what must be panicked
// again (only [net/http.ErrAbortHandler]).
func (d *Drain) recovered(w http.ResponseWriter, r *http.Request, v any) any {
	if v == http.ErrAbortHandler { // net/http compares with == too
		return v
	}
	d.log.Error("handler panic",
		zap.String("panic", fmt.Sprint(v)),
		zap.String("method", r.Method),
		zap.String("path", r.URL.Path),
		zap.Stack("stack"),
	)
	// The response may already be under way: then this header and status
	// are ignored (net/http logs a superfluous WriteHeader) and the
	// response ends where the handler stopped.
	h := w.Header()
	clear(h)
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusInternalServerError)
	return nil
}

// routeOf names a request for the report of a cut: its route pattern, as
// net/http's ServeMux (or a router that sets it) left it on the request
// (the middleware runs outermost, in the same goroutine, so it reads it
// after the handler), else its method and path, cut to 64 bytes (the
// report keeps 8 names at most, so a path that varies cannot grow it).
func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	p := r.URL.Path
	if len(p) > 64 {
		p = p[:64] + "…"
	}
	return r.Method + " " + p
}

// isUpgrade reports whether the request asks to switch protocols
// (Connection: Upgrade with an Upgrade header, as a WebSocket handshake
// does). Its answer, a 101, must keep Connection: Upgrade.
func isUpgrade(h http.Header) bool {
	if len(h["Upgrade"]) == 0 {
		return false
	}
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}
