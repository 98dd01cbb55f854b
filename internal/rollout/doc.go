// Package rollout is the rollout check: it plays a Kubernetes rolling update
// around real processes of a service, under load, and counts what is lost.
// [Run] does it; "drainfx rollout" (cmd/drainfx) runs it from the command
// line against any binary: the requests to send are [Load.Requests], the
// WebSocket and SSE routes [Load.WSPath] and [Load.SSEPath], and the
// default is the route contract of examples/service (public GET /, POST
// /echo, GET /slow?ms=N, GET /ws, GET /events; /readyz and /prestop on the
// admin port). A gRPC service is rehearsed with gRPC clients of the
// contract of examples/grpc ([Load.GRPC]) and no HTTP ones; its readiness
// probe and preStop hook stay HTTP, on the admin port.
//
// # The cluster it plays (DataPlaneHAProxy, the default)
//
//   - kube-proxy is HAProxy in TCP mode with retries 0 and one server per
//     pod slot, all starting disabled. A pod enters and leaves with
//     "set server be/sN state ready|maint" on the runtime API (a unix admin
//     socket). A server in maintenance gets no new connections and keeps
//     its established ones, as conntrack does. Connect timeout 1s; client
//     and server timeouts 10m, for the streams.
//   - Endpoint propagation: a pod leaves the proxy a random delay
//     ([Config.Propagation]) after its termination began; a new pod enters a
//     random delay ([Config.Entry]) after its readiness probe first passed.
//     Both are drawn from a seeded source and logged per pod.
//   - The kubelet probes readiness ([Config.ReadinessPath] on the admin port)
//     every [Config.ProbePeriod], the first probe at start. Termination runs
//     the preStop hook (a GET to [Config.PreStopPath], a sleep, or none),
//     then sends SIGTERM, then SIGKILL at T0 + [Config.GracePeriod].
//   - A rolling update with maxSurge 1 and maxUnavailable 0: a new pod starts,
//     becomes ready, enters the proxy, then the oldest pod is terminated and
//     the next new pod starts at once.
//
// # The real data plane
//
// With [Config.DataPlane] [DataPlaneKube] nothing of the cluster is
// modelled but the kubelet: internal/kube starts etcd, kube-apiserver,
// kube-controller-manager (the EndpointSlice controller alone) and
// kube-proxy (nftables or iptables, [Config.ProxyMode]) in a node network
// namespace, routing a client namespace and one namespace per pod over a
// bridge. The rollout creates a Service (port 80 → 8080) and, per pod, a
// network namespace, a Pod bound to the node and a process of the binary
// in that namespace (PortEnv 8080, AdminPortEnv 9090 on the pod's IP). It
// plays the kubelet: it PATCHes the Pod's status Running with its IP,
// probes readiness over the pod's IP from the node namespace and PATCHes
// Ready, keeps probing for as long as the pod runs and reports every
// change; the replacement is a DELETE with the grace period (the old pod is
// deleted as soon as the new one is Ready, as a Deployment does), then the
// kill sequence above, then the pod's namespace is removed and the Pod
// deleted with grace period 0. The clients dial the ClusterIP from the
// client namespace. The report shows, per pod, DELETE → endpoint
// terminating (a watch of the EndpointSlices), DELETE → the last new
// connection the node sent it (the node's conntrack events), and the last
// arrival the pod itself reported (drainfx's shutdown report, if it logs
// one). [Config.LoadBalancer] adds, in front, a load balancer that sends to
// the pods' IPs and follows the EndpointSlices late (Entry, Propagation);
// the clients are then shared out between it and the ClusterIP. Everything
// is stopped and removed when [Run] returns, a failed run included.
//
// # Times
//
// T0 is the moment a pod's termination begins: the kubelet sends the preStop
// request, begins the preStop sleep, or — without a hook — sends SIGTERM.
// In Kubernetes the endpoint removal starts at the same moment, so the
// propagation delay counts from T0, and so does the pod's stop time, T0 →
// exit ([PodReport.StopTime]). drainfx's D0 follows T0 within a
// millisecond (the preStop call or the SIGTERM). SIGTERM → exit is reported
// too, but with a preStop hook that blocks for the drain it only measures
// the stop and teardown phases. The measured propagation
// ([PodReport.Propagation]) ends when HAProxy has acknowledged the
// maintenance state: no connection reaches the pod after it.
//
// # The load and what counts as lost
//
// All traffic goes through the proxy; every client reconnects after every
// close, for the whole rollout:
//
//   - keep-alive HTTP clients cycling through [Load.Requests] — by default
//     GET / ("ok"), POST /echo (the body must come back) and GET
//     /slow?ms=N; a body is never replayed (GetBody is nil). Every transport
//     error, status other than 2xx, or body other than the request wants is
//     a loss. A GET that Go's transport resends on a new connection after a
//     reused one was closed is shown, not counted;
//   - clients that open a new connection per request and never retry
//     (DisableKeepAlives; Go never retries on a fresh connection), as many
//     non-Go clients do: same rules;
//   - WebSocket echo clients (gorilla) of [Load.WSPath]: a numbered message every
//     [Load.Interval], echoes checked in order; the reader always reads, so
//     a close frame is answered at once. A session lost = a failed dial, a
//     wrong echo, or a close other than 1000, 1001 or 1012 (a broken
//     connection is 1006). Messages sent while the server's close frame was
//     on its way are shown as unanswered, not counted: the client sees the
//     clean close and knows they were not answered;
//   - SSE readers of [Load.SSEPath]: an event stream ends cleanly when its body
//     ends (the chunked terminator, io.EOF) right after the final event
//     ([Load.FinalEvent], "shutdown" by default, as wsmod sends). Any other
//     end, or a failed open (a 503 included), is a loss. Like an
//     EventSource, a reader waits the reconnection time the stream set with
//     "retry:" before it reconnects ([Load.SSEIgnoreRetry]: at once);
//   - gRPC clients of drainfx.example.v1.Echo (examples/grpc/echopb) on the
//     public port ([Load.GRPC]), each on one long-lived channel, as gRPC
//     clients are: half call Echo once per [Load.Interval] (the message
//     must come back), half read Ticks streams (ticks numbered from 0, in
//     order), opening the next as soon as one ends. [Load.GRPCNewConn]
//     clients open a channel per Echo call. Nothing is retried beyond
//     grpc-go's own transparent retries (calls the server never saw); a
//     call made while the channel cannot connect fails (no
//     wait-for-ready). Lost: any call that ends with a status other than
//     OK, any stream that ends otherwise than with UNAVAILABLE or OK sent
//     by the server in its trailers — a broken connection reads as
//     UNAVAILABLE on the client too, without trailers, and is a loss —
//     and any stream that could not be opened.
//
// Also lost: a terminated pod that was SIGKILLed or exited non-zero, a pod
// that exited while it was meant to serve, and a client that made no
// progress once the last terminated pod had exited. A request or session
// cut by the end of the run itself is not counted. The check passes when
// the total is zero.
//
// # Reconnections on the survivors
//
// HAProxy logs every connection as soon as its server side is connected
// (option logasap): the client's port, the server (the pod slot) and the
// accept time. The WebSocket and SSE clients note the local port and the
// time of every session they open, so each open from the first
// termination on is placed on its pod; those on a pod not terminating at
// the time (a survivor) are counted in a sliding window of [OpensWindow],
// and [Result.SessionOpensPeak] is the most — the burst of reconnections
// the other pods take when a pod ends its sessions. An open counts when
// the proxy took its connection and handed it to the survivor: the time
// the survivor got it, whatever the client did next. The same peak with
// each open counted when the client read the handshake's answer
// ([Result.SessionOpensPeakClient]) is larger on a loaded machine, as the
// load's own delays (its share of the CPU, its garbage collection) bunch
// what the survivors took apart. Each terminated pod's log is read for
// wsmod's "sessions closed" line: the window its sessions were ended over
// and the most it ended in any 100 ms ([PodReport.SessionCloseWindow],
// [PodReport.SessionClosePeak]).
//
// # Limits
//
// The pods run on one machine and share its CPU with the load and HAProxy
// (or the Kubernetes components); the timing of a loaded machine shows in
// the stop times, and in the reconnections: clients, proxy and survivors
// that fall behind work off their backlog in bursts, so the survivors'
// peak can exceed what the terminating pod sent them in any 100 ms. The
// proxy is TCP-level only: it never retries and never sees HTTP, like
// kube-proxy and unlike an HTTP ingress, which may hide losses by
// retrying.
package rollout
