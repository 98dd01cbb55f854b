// Package grpcmod runs a gRPC server and owns gRPC client connections on
// the drain timeline of a [lifecycle.Coordinator].
//
// # The server
//
// [Server.Start] listens synchronously (a busy port fails start-up), then
// serves in a goroutine it owns; a Serve error asks the app to stop with
// exit code 1. The server carries the health v1 service
// (grpc.health.v1.Health):
//
//   - after start, the server ("") and every registered service answer
//     SERVING;
//   - from D0 every one answers NOT_SERVING, at once, to Check and to Watch
//     streams ([health.Server.Shutdown], in the transition to
//     [lifecycle.StateDraining]: sticky, a later SetServingStatus changes
//     nothing), so health-checking clients and load balancers move away
//     while everything is still served;
//   - when the stop phase begins ([lifecycle.StateStopping]), Watch streams
//     end with UNAVAILABLE.
//
// The server stops in the stop phase, as the coordinator's stop participant
// "grpc" ([lifecycle.Coordinator.AtStop]), in parallel with the other
// servers: [grpc.Server.GracefulStop] — clients get GOAWAY, new RPCs go
// elsewhere, the RPCs in flight finish. At the stop deadline (D0 +
// GracePeriod − TeardownReserve − Margin) it calls [grpc.Server.Stop]:
// connections close, the contexts of the RPCs left are cancelled, and those
// RPCs are counted as cut ([lifecycle.CutRPCs]) in the shutdown report.
// [Server.Stop] (OnStop) asks the coordinator for the stop and waits for
// the whole shutdown ([lifecycle.Coordinator.Stop]), as every drainfx
// OnStop does, so the order in which fx calls them does not matter.
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
// Like HTTP/2 keep-alive clients, a gRPC client keeps its connection to a
// draining pod until GOAWAY (the stop phase) unless it watches health:
// during the drain, only clients that health-check (or a proxy that does)
// move away. A handler that ignores its context is left running after the
// cut. Health Watch streams are ended by the server at the stop phase
// because GracefulStop would wait for them.
package grpcmod
