package httpmod

import (
	"fmt"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// ServeHTTP serves r through the drain middleware, then the echo instance.
// It is the handler of the server's [net/http.Server]; tests and
// benchmarks may call it directly.
//
// The middleware wraps echo as a plain [net/http.Handler] rather than an
// echo middleware on purpose: echo v4 applies its middleware chain on every
// request, which allocates a closure per middleware per request, while this
// costs two atomic adds (the in-flight count, which is also the adaptive
// drain's arrival count), one atomic load (the coordinator's state) and a
// deferred call, and no allocation while not draining.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.work.Begin()
	defer func() {
		// A panic becomes a 500; the in-flight count goes down whatever
		// happened.
		v := recover()
		if v != nil {
			v = s.recovered(w, r, v)
		}
		s.work.End()
		if v != nil {
			// Only http.ErrAbortHandler comes back: net/http's documented
			// way to abort a response (httputil.ReverseProxy uses it).
			// Passing it on lets net/http drop the connection quietly
			// rather than let a truncated body look complete.
			panic(v)
		}
	}()
	if s.c.State() >= lifecycle.StateDraining && !isUpgrade(r.Header) {
		// net/http closes the connection after a response whose handler
		// set Connection: close (HTTP/2 sends GOAWAY instead). Set
		// allocates the value, only while draining; one shared []string
		// would save that, but a handler writing into it would race with
		// every other response.
		w.Header().Set("Connection", "close")
	}
	s.echo.ServeHTTP(w, r)
}

// recovered handles a handler's panic v; it returns what must be panicked
// again (only [net/http.ErrAbortHandler]).
func (s *Server) recovered(w http.ResponseWriter, r *http.Request, v any) any {
	if v == http.ErrAbortHandler { // net/http compares with == too
		return v
	}
	s.log.Error("handler panic",
		zap.String("panic", fmt.Sprint(v)),
		zap.String("method", r.Method),
		zap.String("path", r.URL.Path),
		zap.Stack("stack"),
	)
	// The response may already be under way: then this header and status
	// are ignored (net/http logs a superfluous WriteHeader) and the
	// response ends where the handler stopped, as with echo's Recover.
	h := w.Header()
	clear(h)
	h.Set("Connection", "close")
	w.WriteHeader(http.StatusInternalServerError)
	return nil
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
