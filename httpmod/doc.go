// Package httpmod is the public HTTP server of drainfx: an echo v4 server
// that follows the drain timeline of a [lifecycle.Coordinator], so that a
// service leaves a Kubernetes cluster without losing a request.
//
// Use [Module] under fx, or [New] with [Server.Start] and [Server.Stop]
// without it. Handlers are registered by values of type [Route]: under fx,
// provide them with [AsRoute]; without fx, pass them with [WithRoutes].
//
// # Serving
//
// [Server.Start] listens synchronously, so a bad or busy address fails
// start-up with an error naming it, then serves in a goroutine that
// [Server.Stop] waits for. If [net/http.Server.Serve] fails for any other
// reason than a stop, the error is logged and the function given with
// [WithServeError] is called; under fx it stops the app with exit code 1.
// Every connection accepted is reported to
// [lifecycle.Telemetry.NoteAccept] (once per connection, not per
// request), which ends the adaptive drain once connections stop arriving,
// and every request counts as an arrival
// ([lifecycle.Telemetry.TrackArrivals]), from which the adaptive drain
// learns this pod's traffic.
//
// [Config] sets the address and timeouts; ReadTimeout and WriteTimeout
// default to none because streamed responses need that. With [Config.H2C]
// the server also speaks HTTP/2 without TLS to clients with prior
// knowledge ([net/http.Protocols]).
//
// # The drain
//
// Every request passes through a middleware in front of echo that:
//
//   - counts the requests in flight ([Server.InFlight], registered with
//     [lifecycle.Telemetry.TrackInFlight] as "requests");
//   - once the drain has begun (the coordinator's state is
//     [lifecycle.StateDraining] or later), sets
//     Connection: close on the response, so net/http closes the connection
//     after it and a keep-alive client reconnects through the proxy, which
//     sends it to another pod (over HTTP/2 the same header makes net/http
//     send GOAWAY). A request that asks to switch protocols — a WebSocket
//     handshake — is exempt: its 101 must keep Connection: Upgrade;
//   - turns a panic into a 500 with Connection: close, logs it with its
//     stack, and keeps the server and the in-flight count right.
//     [net/http.ErrAbortHandler] is passed on to net/http, which aborts the
//     response quietly.
//
// The middleware is a plain [net/http.Handler] around echo, not an echo
// middleware: echo applies its middleware chain per request, which
// allocates. It costs two atomic adds and an atomic load per request and
// allocates nothing while serving (see BenchmarkMiddleware).
//
// # The stop
//
// The coordinator runs the shutdown timeline; the server takes part in it.
// [New] registers the server's stop participant ("http",
// [lifecycle.Coordinator.AtStop]) and a switch made when the stop phase
// begins ([lifecycle.Coordinator.OnState] with [lifecycle.StateStopping]):
// keep-alives off, so that from then on every response ends its
// connection.
//
// When the stop phase begins — after the drain, whatever began it: a
// preStop call, a signal, app.Stop, fxtest — the participant calls
// [net/http.Server.Shutdown], bounded by the stop deadline (D0 +
// GracePeriod − TeardownReserve − Margin). What is still in flight at the
// deadline is cut with [net/http.Server.Close], counted with
// [lifecycle.Telemetry.RecordCut] ([lifecycle.CutRequests]) and logged
// once ("requests cut"); the coordinator's report then makes the exit code
// 1. A server that never started has nothing to stop.
//
// [Server.Stop] (the module's OnStop) is [lifecycle.Coordinator.Stop]: it
// asks for the stop and waits for the whole timeline, drain, stop phase and
// teardown, until the report is out. Every drainfx module's OnStop does the
// same, so the order in which fx calls them does not matter. Stop never
// waits past its context: if it ends first, the drain is cut short and
// the stop deadline comes at once.
//
// # Long-lived handlers
//
// [net/http.Server.Shutdown] does not cancel request contexts, so a
// handler that streams (SSE, long polling) would hold the stop until its
// deadline and be cut. Such a handler must end its stream when the stop
// phase begins: select on the coordinator's
// Reached([lifecycle.StateStopping]), send a last event, and return. For
// WebSocket and SSE sessions, package wsmod does this for you.
//
//	stopping := coord.Reached(lifecycle.StateStopping)
//	for {
//		select {
//		case ev := <-events:
//			// write ev and flush
//		case <-stopping:
//			return nil // the chunked body ends cleanly
//		case <-c.Request().Context().Done():
//			return nil
//		}
//	}
//
// # Limits
//
//   - Connection: close is decided when a request arrives. A request that
//     arrived before the drain began is answered without it; its
//     connection closes after the next response on it, or as an idle
//     connection when Shutdown begins. (Setting the header when the
//     response is written instead would take an echo middleware and echo's
//     Response.Before hook: three allocations per request, and about twice
//     the time of a small echo handler.)
//   - [net/http.Server.Shutdown] does not close nor wait for hijacked
//     connections (WebSocket); their handlers still count in
//     [Server.InFlight], and one still running at the stop deadline is
//     counted as a cut request. End them when the stop phase begins (wsmod).
//   - Shutdown polls for idle connections at an interval that grows to
//     500 ms, so the stop phase may end up to that long after the last
//     request.
//   - A panic after the handler has begun its response cannot become a
//     500: the response ends where the handler stopped (as with echo's
//     Recover middleware) and net/http logs a superfluous WriteHeader.
//   - Routes are registered when the server is built. Add echo middleware
//     with [Server.Echo] before [Server.Start]; do not call the echo
//     instance's own Start or Shutdown.
//   - One Server per [lifecycle.Coordinator]: a second one would register
//     a second "requests" gauge and a second "http" stop participant.
package httpmod
