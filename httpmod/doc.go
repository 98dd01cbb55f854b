// Package httpmod is the public HTTP server of drainfx: a
// [net/http.Server] for any [net/http.Handler] that follows the drain
// timeline of a [lifecycle.Coordinator], so that a service leaves a
// Kubernetes cluster without losing a request. Its parts — the drain
// middleware, the listener wrapper, the stop participant — are exported as
// [Drain] for apps that run their own http.Server.
//
// # The server
//
// Use [Module] under fx, or [New] with [Server.Start] and [Server.Stop]
// without it. Under fx the server serves the app's whole handler, provided
// with [AsHandler] (a chi, gin or gorilla/mux router, a ServeMux), or else
// a [net/http.ServeMux] with the routes ([Route]) provided with [AsRoute] — not
// both (the app fails to build); with neither, an empty ServeMux that
// answers 404. Without fx, pass the handler to [New].
//
// [Server.Start] listens synchronously, so a bad or busy address fails
// start-up with an error naming it, then serves in a goroutine that the
// stop waits for. If [net/http.Server.Serve] fails for any other reason
// than a stop, the error is logged and the function given with
// [WithServeError] is called; under fx it stops the app with exit code 1.
// The first request on every new connection is reported to
// [lifecycle.Telemetry.NoteNewConnection] (once per connection, not per
// request, and not at the TCP accept: a load balancer's TCP health check
// connects and closes without a request), which ends the adaptive drain
// once new connections stop bringing requests; and every request counts as
// an arrival ([lifecycle.Telemetry.TrackArrivals]), from which the
// adaptive drain learns this pod's traffic.
//
// [Config] sets the address, timeouts and limits. ReadTimeout and
// WriteTimeout default to none because long uploads and streamed
// responses need that; a request body gets its own bound instead,
// BodyReadTimeout (30s from the handler's call; requests without a body
// and hijacked connections are not touched), and a request header is
// bounded to 64 KiB (MaxHeaderBytes, what proxies accept, not net/http's
// 1 MB; larger: 431). [Config.MaxConns] defaults to what the process's
// open-file limit leaves once a reserve is kept for the admin server and
// the rest of the process, so that a flood of public connections cannot
// starve the kubelet's probes of file descriptors; the connections beyond
// it wait in the kernel's accept queue. An accept that fails for lack of
// descriptors (EMFILE) is retried by net/http after a pause that grows to
// 1 s; the server keeps serving. With [Config.H2C]
// the server also speaks HTTP/2 without TLS to clients with prior
// knowledge ([net/http.Protocols]).
//
// # The drain
//
// Every request passes through a middleware in front of the handler
// ([Drain.Handler]) that:
//
//   - counts the requests in flight ([Server.InFlight], registered with
//     [lifecycle.Telemetry.TrackInFlight] as [InFlightGauge]);
//   - sets the read deadline of a request's body ([Config.BodyReadTimeout]):
//     a read past it fails with an error matching [os.ErrDeadlineExceeded]
//     (over HTTP/1 the request's context is cancelled too), the handler
//     answers (408 is the status for it), and net/http closes the
//     connection, whose body is left unread. A client trickling a body thus
//     holds neither its handler nor the stop phase past the bound;
//   - once the drain has begun (the coordinator's state is
//     [lifecycle.StateDraining] or later), sets Connection: close on the
//     response, so net/http closes the connection after it and a
//     keep-alive client reconnects through the proxy, which sends it to
//     another pod (over HTTP/2 the same header makes net/http send
//     GOAWAY). A request that asks to switch protocols — a WebSocket
//     handshake — is exempt: its 101 must keep Connection: Upgrade;
//   - turns a panic into a 500 with Connection: close, logs it with its
//     stack, and keeps the server and the in-flight count right.
//     [net/http.ErrAbortHandler] is passed on to net/http, which aborts the
//     response quietly.
//
// It costs two atomic adds and two atomic loads per request, and a clock
// read for a request with a body, and allocates nothing while serving
// (see BenchmarkMiddleware).
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
// preStop call, a signal, app.Stop, fxtest — the participant closes the
// listener and serves what the connections it accepted still send: a
// connection accepted during the drain whose first request comes after
// the drain has ended is served (with Connection: close), up to the stop
// deadline (D0 + GracePeriod − TeardownReserve − Margin). Once every
// HTTP/1 connection has closed (keep-alives are off: each closes after
// its response), it calls [net/http.Server.Shutdown], bounded by the same
// deadline — not before: Shutdown drops a request it reads after it
// began, closing the connection without a response. What is still in
// flight at the deadline is cut with [net/http.Server.Close], counted with
// [lifecycle.Telemetry.RecordCut] ([CutRequests]) and logged
// once ("requests cut"), and so is a request whose bytes had arrived on a
// connection the server closed ("requests cut while being read"): one
// whose header was still coming in at the deadline, or the next request
// on a keep-alive connection that stayed idle through the drain and that
// the stop phase closed as it arrived. The coordinator's report then makes
// the exit code 1. A server that never started has nothing to stop.
//
// [Server.Stop] (the module's OnStop) is [lifecycle.Coordinator.Stop]: it
// asks for the stop and waits for the whole timeline, drain, stop phase and
// teardown, until the report is out. Every drainfx module's OnStop does the
// same, so the order in which fx calls them does not matter. Stop never
// waits past its context: if it ends first, the drain is cut short and
// the stop deadline comes at once.
//
// # Your own http.Server
//
// An app that builds its own [net/http.Server] (for TLS, its own
// ConnState hook, or a server a framework hands it) gets the same drain
// from a [Drain], which is what [Server] is built on:
//
//	d, err := httpmod.NewDrain(coord)             // the gauge and the arrivals
//	srv := &http.Server{Handler: d.Handler(mux)}  // the middleware, outermost
//	err = d.Manage(srv)                           // the stop participant and the keep-alive switch
//	go srv.Serve(d.Listener(ln))                  // or d.Serve(srv, ln): a goroutine the stop waits for
//
// [Drain.Manage] registers the stop participant that shuts srv down;
// the app's Serve then returns [net/http.ErrServerClosed]. [Drain.Serve]
// also serves srv in a goroutine of the drain's, which the participant
// waits for, and reports a Serve error as [Server.Start]'s does. Call
// Manage when the server is built (under fx, in its constructor), before
// the stop phase.
//
// # Echo and other routers
//
// Any router is an [net/http.Handler]: provide it with [AsHandler], or pass
// it to [New] or [Drain.Handler]. Package
// [github.com/drainfx/drainfx/httpmod/echoroute] does it for echo: its
// Module builds the *echo.Echo from echo routes and hands it to this
// module as its handler. The drain middleware wraps a router as a plain
// handler, not as one of the router's middleware (echo v4, for one,
// applies its middleware chain per request, which allocates).
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
//			return // the chunked body ends cleanly
//		case <-r.Context().Done():
//			return
//		}
//	}
//
// # Limits
//
//   - Connection: close is decided when a request arrives. A request that
//     arrived before the drain began is answered without it; its
//     connection closes after the next response on it, or as an idle
//     connection when Shutdown begins. (Setting it when the response is
//     written instead would wrap every ResponseWriter: an allocation per
//     request, and a wrapper that hides the writer's optional interfaces
//     from handlers that look for them.)
//   - [net/http.Server.Shutdown] does not close nor wait for hijacked
//     connections (WebSocket). The stop participant waits for them until
//     the stop deadline, then closes those still open and counts them as
//     [CutHijacked], with a warning; a hijacked request leaves
//     [Server.InFlight] when it is hijacked and is never counted as a
//     request. The sessions of wsmod's registry are claimed by it
//     ([HijackClaimer]): wsmod ends them with a close frame and counts
//     them, once, as sessions. End a WebSocket of your own when the stop
//     phase begins, or run it through wsmod.
//   - A request body still arriving at the stop deadline is cut like any
//     request in flight. BodyReadTimeout is what bounds a slow client: set
//     it below the stop phase's length (GracePeriod − TeardownReserve −
//     Margin − the drain) for a slow body never to reach the deadline, at
//     the price of slow uploads.
//   - A keep-alive connection idle through the whole drain (every other
//     one was closed by a response's Connection: close) is closed as the
//     stop phase begins: HTTP/1.1 gives the server no way to close one
//     without that race. A request whose first bytes the server has read
//     is counted as cut; one still on the wire is reset, and its client
//     sees the error (Go's Transport retries an idempotent request).
//   - A new connection that sends nothing holds the stop phase until its
//     ReadHeaderTimeout (5 s by default), net/http's limit on a silent
//     connection; one silent for more than 5 s counts as idle to
//     net/http, which closes it.
//   - When the stop phase closes the listener, the connections still in the
//     kernel's accept queue (with [Config.MaxConns] reached, those over
//     the bound wait there) are taken first and served, past the bound;
//     the kernel would reset them. That is done on Linux only (elsewhere
//     they are reset), stops if the process runs out of descriptors, and
//     a connection whose handshake completes in the instant between the
//     last take and the close is still reset, and not counted.
//   - HTTP/2 connections (h2c) get their GOAWAY from Shutdown, once the
//     HTTP/1 connections are done; until then they are served as before.
//     Shutdown polls for idle connections at an interval that grows to
//     500 ms, so the stop phase may end up to that long after the last
//     HTTP/2 request.
//   - A panic after the handler has begun its response cannot become a
//     500: the response ends where the handler stopped and net/http logs a
//     superfluous WriteHeader.
//   - Only what passes through [Drain.Handler] is counted and drained: put
//     it outermost. Only the connections of [Drain.Listener] are followed
//     (served after the listener closes, bounded, counted when cut, their
//     first requests reported): serve the public listener through it. A [Drain] manages one [net/http.Server]; a server the
//     app serves itself is shut down, but its Serve goroutine is the app's
//     to wait for.
//   - Routes given with [AsRoute] are registered when the server is built;
//     a pattern that [net/http.ServeMux] rejects fails the app's build.
//   - One Server (or Drain) per [lifecycle.Coordinator]: a second one would
//     add to the "requests" gauge and register a second "http" stop
//     participant.
package httpmod
