// Package wsmod ends long-lived sessions — WebSocket and server-sent
// events (SSE) — cleanly when a service leaves the cluster.
//
// [net/http.Server.Shutdown] closes listeners and idle connections and
// waits for active requests, but "does not attempt to close nor wait for
// hijacked connections such as WebSockets", and it does not cancel request
// contexts, so an SSE handler holds it until its deadline. Left alone, every
// WebSocket peer sees 1006 (abnormal closure) when the process exits and
// every SSE reader an unexpected EOF. The [Registry] is what closes them.
//
// # The contract
//
// Sessions are opened through the registry's handlers, [Registry.WebSocket]
// and [Registry.SSE]. Each session handler gets a context that the registry
// cancels when the coordinator's stop phase begins
// ([lifecycle.StateStopping]), or that ends with the request.
//
//   - Drain phase: nothing changes; new sessions are still accepted, since the
//     proxies may still route here.
//   - Stop phase: the registry is one of the coordinator's stop participants
//     ([lifecycle.Coordinator.AtStop]), called with the others — the HTTP
//     server's Shutdown among them — when the phase begins. From the
//     transition on, new sessions get 503 with Retry-After; every WebSocket
//     peer gets a close frame ([Config.CloseCode], default 1001 "going
//     away", with [Config.CloseReason]) — all in parallel, each bounded by
//     [Config.WriteTimeout]; every SSE stream gets [Config.FinalEvent]
//     (default "event: shutdown" with a "retry:" hint); every handler's
//     context is cancelled.
//   - The registry then waits for the peers' close replies and for every
//     handler to return, up to [Config.CloseTimeout] — clipped so that it
//     never passes the stop deadline ([lifecycle.Plan.StopDeadline] after
//     D0). What is left is force-closed (the network connection of a
//     WebSocket is closed; an SSE stream's writes fail), counted in [Stats]
//     and reported to the coordinator as cut ([lifecycle.CutSessions]),
//     which makes the shutdown unclean.
//
// [Registry.Stop] (the module's OnStop) asks the coordinator for the stop
// ([lifecycle.Coordinator.Stop]) and waits until the shutdown is over, all
// of that included. Every drainfx module's OnStop does the same, so the
// order in which fx calls them does not matter.
//
// # Routers
//
// Both are plain [net/http.Handler]s. On an [net/http.ServeMux]:
//
//	mux.Handle("GET /rooms/{room}", reg.WebSocket(chat))
//	mux.Handle("GET /events", reg.SSE(feed))
//
// On echo, through echo.WrapHandler:
//
//	e.GET("/events", echo.WrapHandler(reg.SSE(feed)))
//
// A session handler's context carries the request's values (those set by
// middleware on the request's context); [Request] returns the request, for
// its headers and its path values:
//
//	func chat(ctx context.Context, conn wsmod.Conn) error {
//		room := wsmod.Request(ctx).PathValue("room")
//		…
//	}
//
// A router with path parameters of its own, such as echo, keeps them out of
// the request: copy them in with [net/http.Request.SetPathValue].
//
//	ws := reg.WebSocket(chat)
//	e.GET("/rooms/:room", func(c echo.Context) error {
//		c.Request().SetPathValue("room", c.Param("room"))
//		ws.ServeHTTP(c.Response(), c.Request())
//		return nil
//	})
//
// # Writing handlers
//
// A WebSocket handler may read and write as gorilla allows (one reader and
// one writer at a time); the close frame goes out with a control write that
// is safe alongside them. Once it is out, writes fail with
// [github.com/gorilla/websocket.ErrCloseSent], and reads return the peer's
// close reply as a [github.com/gorilla/websocket.CloseError]: returning on
// either error is the normal way to end. A handler that only writes should
// also watch its context.
//
// An SSE handler should return when its context ends: Shutdown waits for it
// and the body only ends cleanly once it has returned. [Stream.Send] after
// the final event fails with [ErrStreamClosed].
//
// A handler that returns on its own ends its session: a WebSocket gets 1000
// (1011 if the handler returned an unexpected error) and the peer's reply is
// awaited up to CloseTimeout; an SSE body ends.
//
// # Keep-alive
//
// With [Config.PingInterval] set, each WebSocket session is pinged and its
// reads get a deadline that every pong extends, so a peer that vanished
// without a FIN leaves the registry instead of waiting for the stop phase.
// gorilla handles pongs inside reads: a handler that never reads never sees
// them, and its reads (none) never time out.
//
// # Limits
//
//   - A peer whose receive buffer is full cannot take the close frame (it
//     waits behind the handler's blocked write, up to WriteTimeout); it is
//     force-closed at the deadline and sees 1006.
//   - A handler that ignores both its context and its connection is
//     abandoned WriteTimeout after the force-close: the registry's stop
//     participant returns, the session stays counted as forced, the
//     goroutine is the handler's.
//   - Only sessions opened through the registry are tracked. The registry
//     serves one shutdown, as its coordinator does.
//   - SSE needs a response writer that can flush; an HTTP/2 stream ends
//     with the stream, not with a chunked terminator.
//
// # Other WebSocket libraries
//
// The handler sees a small [Conn]; the registry drives a [Socket] made by an
// [Upgrader]. [Gorilla] adapts a gorilla upgrader; another library (for
// example github.com/coder/websocket) plugs in by implementing Socket and
// Upgrader and passing [WithUpgrader].
package wsmod
