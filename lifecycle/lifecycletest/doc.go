// Package lifecycletest checks, in an ordinary Go test, that a service built
// on drainfx leaves without losing a request, a WebSocket session or an SSE
// stream: it starts the app, attaches clients, runs a termination through
// every phase of the drain timeline, and returns what was lost and the
// order of the phases.
//
//	var coord *lifecycle.Coordinator
//	var srv *httpmod.Server
//	app := fxtest.New(t, myapp.Module, fx.Populate(&coord, &srv))
//	k, err := lifecycletest.Start(ctx, app, coord)
//	if err != nil { t.Fatal(err) }
//	t.Cleanup(k.Close)
//	base := "http://" + srv.Addr().String()
//	k.HTTP(http.MethodGet, base+"/", nil)           // each returns once the client is attached
//	k.WebSocket("ws://" + srv.Addr().String() + "/ws")
//	k.SSE(base + "/events")
//	res := k.Terminate(ctx, lifecycletest.Signal())
//	if err := res.Err(); err != nil { t.Fatal(err) } // lists every loss, and a wrong phase order
//
// # Clients
//
//   - [Kit.HTTP]: a keep-alive client that sends one request after another
//     (paced by [WithInterval]) and wants a 2xx answer with its body
//     complete. A request body is never replayed.
//   - [Kit.WebSocket]: one session that sends a message and waits for it to
//     come back (an echo route), again and again. It must end with a close
//     frame 1000, 1001 or 1012.
//   - [Kit.SSE]: one stream read to its end. It must end cleanly (io.EOF
//     after the chunked body's terminator), not be cut.
//
// The clients play clients behind a proxy. A new connection is opened
// through the proxy while the service is serving, and during the drain
// until the proxies have caught up: for [WithPropagation] after D0 (by
// default half the drain delay). After that a client that would open a new
// connection is "moved" — it would land on another pod: it stops, and
// nothing is lost. A connection refused before that is a loss. Established
// connections stay where they are, as with kube-proxy's conntrack. This is
// the model of the rollout check (HAProxy in TCP mode), without the second
// pod.
//
// # Terminations
//
//   - [Prestop]: the kubelet's preStop httpGet through the app's own
//     handler (it blocks for the drain), then the stop that SIGTERM causes.
//   - [Signal]: what the first SIGTERM does, without a signal:
//     [lifecycle.Coordinator.BeginDrain]("signal terminated"), then the
//     app's Stop — as fx's app.Run does on the signal, while drainfx's
//     handler records D0.
//   - [AppStop]: the app's Stop alone (a Shutdowner, or fxtest's
//     RequireStop).
//
// The kit never sends a real signal. SIGTERM is delivered to the whole test
// binary: with no handler installed it kills it, and with one it reaches
// every app of every parallel test. The signal handling itself is covered
// by tests of real processes (internal/proctest).
//
// # States
//
// The kit records the coordinator's transitions before it starts the app.
// A clean run is serving → draining → drained → stopping → tearing down →
// stopped ([CleanStates]); [Result.Err] reports any other order. The
// coordinator passes through every state whatever the app does, so an app
// whose own servers do not drain shows in the losses, not in the states.
//
// # Limits
//
// One client of each kind per call; call again for more. A WebSocket or
// SSE client does not reconnect after its session ends. Requests are sent
// over plain HTTP/1.1 (no TLS, no HTTP/2). The kit checks what clients see;
// what the app did with it is the app's report ([Result.Report]).
package lifecycletest
