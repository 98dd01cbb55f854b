// Package grpcmod runs a gRPC server and owns gRPC client connections on
// the drain timeline of a [lifecycle.Coordinator].
//
// # The server
//
// [Server.Start] listens synchronously (a busy port fails start-up), then
// serves in a goroutine it owns; a Serve error asks the app to stop with
// exit code 1. The server carries the health v1 service
// (grpc.health.v1.Health): after start, the server ("") and every
// registered service answer SERVING; from D0 every one answers
// NOT_SERVING, at once, to Check and to Watch streams
// ([health.Server.Shutdown], in the transition to
// [lifecycle.StateDraining]: sticky, a later SetServingStatus changes
// nothing), so health-checking clients and load balancers move away while
// everything is still served.
//
// # The drain: GOAWAY on every connection, while the proxies still route here
//
// kube-proxy balances connections, not RPCs, and a gRPC client keeps its
// channel's connection for as long as the server lets it: it would keep
// calling a draining pod until the stop phase, and then reconnect all at
// once. So from D0 every connection gets a GOAWAY (last stream 2^31−1,
// NO_ERROR: HTTP/2's graceful shutdown) right before the trailers of its
// next RPC: the client gets the answer, and sends its next RPC on a new
// connection through the proxies — to another pod, or back here while the
// proxies still route here, and then that connection is sent away after
// its first RPC too. It is the HTTP/1 drain's Connection: close, and it
// keeps new connections arriving while the proxies route here, from which
// the adaptive drain learns when they have stopped. grpc-go has no public
// way to send a GOAWAY on one connection (GracefulStop does it to all at
// once, MaxConnectionAge is fixed when the server is built), so the server
// wraps its transport credentials and writes the frame into the
// connection's stream of frames, at a frame boundary; it stops as soon as
// grpc-go sends a GOAWAY of its own. A client loses nothing: the RPCs it
// had begun on the connection are served, and grpc-go (like every HTTP/2
// client) opens no new stream on it.
//
// The adaptive drain hears of a connection ([lifecycle.Telemetry.NoteNewConnection])
// when its first RPC other than a health Check begins, and counts
// connections, not RPCs, as this pod's arrivals
// ([lifecycle.Telemetry.TrackArrivals]): what the drain waits for is a
// quiet period without new connections, and RPCs on long-lived channels say
// nothing of those. A connection that only checks health — the kubelet's
// gRPC probe, a load balancer's health check — did not come through the
// proxies and is not counted. With long-lived channels alone, few new
// connections reach a pod once the GOAWAYs have moved the channels: the pod
// cannot tell when the proxies stopped routing to it, and drains up to
// MaxDrainDelay (set it above your load balancers' slowest endpoint
// removal); clients that dial per call keep connections arriving, and the
// drain ends about DrainQuiet after the proxies stopped.
//
// # The stop phase
//
// When the stop phase begins ([lifecycle.StateStopping]), in the
// transition, the context of every stream is cancelled (grpc-go's
// GracefulStop never does, and would wait for a stream that does not end
// by itself — a subscription, a health Watch — until its deadline): the
// handler returns, and the stream ends with UNAVAILABLE ("server shutting
// down", [ShutdownMessage]) unless the handler returned an error of its
// own. Clients read UNAVAILABLE as "open it again", and open it on a new
// connection: the connection's GOAWAY went out before the trailers. Unary
// RPCs are not cancelled: they finish.
//
// The server stops as the coordinator's stop participant "grpc"
// ([lifecycle.Coordinator.AtStop]), in parallel with the other servers:
// [grpc.Server.GracefulStop] — the listener closes, clients get GOAWAY, the
// RPCs in flight finish. At the stop deadline (D0 + GracePeriod −
// TeardownReserve − Margin) it calls [grpc.Server.Stop]: connections
// close, the contexts of the RPCs left are cancelled, and those RPCs are
// counted as cut ([CutRPCs]) in the shutdown report. [Server.Stop]
// (OnStop) asks the coordinator for the stop and waits for the whole
// shutdown ([lifecycle.Coordinator.Stop]), as every drainfx OnStop does, so
// the order in which fx calls them does not matter.
//
// # Keepalive
//
// [Config.MaxConnectionAge] sends every connection a GOAWAY that long after
// it opened, so that channels spread over pods a scale-up added; streams
// are never cut by it (MaxConnectionAgeGrace stays infinite). The drain
// does not need it. Other keepalive settings go through
// [WithServerOptions].
//
// # Clients
//
// [AsClient] provides a generated stub over a connection from
// [grpc.NewClient] and closes the connection in the teardown, after the
// stop phase, as a teardown hook with a deadline of its own
// ([lifecycle.Coordinator.AtTeardown]): the server's handlers that call
// through it have finished by then, and the hooks of the components built
// with the stub run before it (reverse order of registration). [NewClient]
// gives the connection without fx; register its Close the same way.
//
// # Limits
//
//   - A connection with no RPC during the drain (an idle channel) gets its
//     GOAWAY only at the stop phase, from GracefulStop.
//   - Transport credentials given with [grpc.Creds] through
//     [WithServerOptions] replace the server's wrapper: no GOAWAY is sent in
//     the drain, clients move at the stop phase only. Give them with
//     [WithTransportCredentials].
//   - The wrapped connection is not a *net.TCPConn: grpc-go does not set
//     TCP_USER_TIMEOUT on it (it would with keepalive pings configured).
//   - A handler that ignores its context is left running after the cut,
//     and so is the goroutine of GracefulStop, which waits for it.
package grpcmod
