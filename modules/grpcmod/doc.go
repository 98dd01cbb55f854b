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
//     streams ([health.Server.Shutdown]: sticky, a later SetServingStatus
//     changes nothing), so health-checking clients and load balancers move
//     away while everything is still served;
//   - when the stop phase begins, Watch streams end with UNAVAILABLE.
//
// [Server.Stop] (OnStop) waits for the drain, then calls
// [grpc.Server.GracefulStop]: clients get GOAWAY, new RPCs go elsewhere, the
// RPCs in flight finish. At the stop deadline (D0 + GracePeriod −
// TeardownReserve − Margin) it calls [grpc.Server.Stop]: connections close,
// the contexts of the RPCs left are cancelled, and those RPCs are counted
// as cut ("rpcs") in the shutdown report.
//
// # Clients
//
// [AsClient] provides a generated stub over a connection from
// [grpc.NewClient] and closes the connection in the teardown, as a stop
// hook with a deadline of its own. fx closes it after everything built with
// the stub — HTTP handlers, workers, the server's services — since those
// depend on it. [NewClient] does the same without fx.
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
