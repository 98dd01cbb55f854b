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
// cancels when it ends the session in the stop phase
// ([lifecycle.StateStopping]), or that ends with the request.
//
//   - Drain phase: nothing changes; new sessions are still accepted, since the
//     proxies may still route here.
//   - Stop phase: the registry is one of the coordinator's stop participants
//     ([lifecycle.Coordinator.AtStop]), called with the others — the HTTP
//     server's Shutdown among them — when the phase begins. From the
//     transition on, new sessions get 503 with Retry-After. The live ones
//     are ended over the close window (below): each WebSocket peer gets a
//     close frame ([Config.CloseCode], default 1001 "going away", with
//     [Config.CloseReason]), each bounded by [Config.WriteTimeout] and
//     written in parallel with the others; each SSE stream gets
//     [Config.FinalEvent] (default "event: shutdown" with a "retry:" hint
//     of 1 s plus up to [Config.FinalEventRetryJitter]); each handler's
//     context is cancelled as its session is ended.
//   - The registry then waits for the peers' close replies and for every
//     handler to return, up to [Config.CloseTimeout] — clipped so that it
//     never passes the stop deadline ([lifecycle.Plan.StopDeadline] after
//     D0). What is left is force-closed (the network connection of a
//     WebSocket is closed; an SSE stream's writes fail), counted in [Stats]
//     and reported to the coordinator as cut ([CutSessions]),
//     which makes the shutdown unclean.
//
// # The close window
//
// Ending every session in the same instant sends every client to the other
// pods in that instant: for a chat or trading service each reconnection
// costs an authentication, a subscription and a state replay, and a pod
// of 1,000 sessions handed the survivors about 1,000 reconnections within
// 100 ms. So the registry ends them at most [Config.CloseRate] a second
// (default 1,000): N sessions over N/CloseRate from the start of the stop
// phase — when the drain is over and the proxies no longer route here, so
// each client reconnects elsewhere — in a random order, one at a random
// point of each of N equal slots. The survivors see at most about
// CloseRate/10 reconnections from this pod in any 100 ms (1,000 sessions:
// 1 s, 100 per 100 ms), more where busy nodes bunch them on their way.
// One goroutine, the stop participant's, waits for each session's turn on
// the coordinator's clock (on a fake clock, [lifecycle.WithClock], the
// window passes as the clock is advanced); only the writes of the close
// frames run in goroutines of their own.
//
// The deadline wins over the rate: of the time to the close deadline, the
// last sessions' close handshakes keep WriteTimeout (or half, if that is
// less), and the window takes at most half of the rest, the other half
// left for a late schedule to slip into. A stop phase too short for N/CloseRate
// compresses the window to fit and says so in one warning ("closing
// sessions over a compressed window"). A schedule woken a few milliseconds
// late (a busy node) catches up, ending at most CloseRate/200 overdue
// sessions together; one that fell further behind (a throttled CPU) lets
// the rest of the window slip rather than end the overdue sessions in a
// burst, as far as the deadline allows — until WriteTimeout before it. The
// log says how many sessions the stop phase ends and over what window as
// it begins ("closing sessions": sessions, window, closeTimeout) and over
// what window it did as it ends ("sessions closed": sessions, forced,
// window, peakPer100ms — the most it ended in any 100 ms — and took).
// [AllAtOnce] ends every session at once, as before; [FromEnv] reads the
// rate from SHUTDOWN_SESSION_CLOSE_RATE ("0": all at once).
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
// Until its turn in the close window, a session is served as before: its
// handler keeps reading and writing.
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
