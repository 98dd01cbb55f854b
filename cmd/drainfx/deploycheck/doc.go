// Package deploycheck checks Kubernetes manifests of a drainfx service
// against the service's own shutdown budget, before they reach a cluster.
// The drainfx command runs it (drainfx check PATH…); a test can call it on
// the output of a deploy tool.
//
// # What it checks
//
// Every container of a Deployment, StatefulSet or DaemonSet that runs a
// drainfx service — one with a SHUTDOWN_* variable in its environment, or
// one named in [Options.Containers] — is read the way the service reads
// itself: its environment (literal values, the keys of Secrets and
// ConfigMaps found in the input, the downward API's fields as placeholders)
// goes through [modules.FromEnv], the budget
// through [lifecycle.NewPlan], so the defaults are the service's own. Then:
//
//   - terminationGracePeriodSeconds = preStop sleep + SHUTDOWN_GRACE_PERIOD,
//     and at least preStop sleep + the longest drain + [MinStopPhase] +
//     teardown reserve + margin;
//   - the readiness probe is an httpGet of /readyz on the admin port, or a
//     grpc probe of the gRPC port (PORT, or the container port named grpc:
//     grpcmod's health service answers NOT_SERVING from D0 as /readyz
//     answers 503, and keeps its probes out of the adaptive drain), and
//     periodSeconds × failureThreshold lets the kubelet see it fail within
//     the drain; a startup probe, where present, is an httpGet of /startupz
//     on the admin port or a grpc probe of the gRPC port; a liveness probe
//     is an httpGet of /livez (or /healthz) on the admin port — never the
//     readiness path, never a grpc probe (NOT_SERVING from D0: the kubelet
//     would kill the container in the drain);
//   - the preStop hook is an httpGet of /prestop on the admin port carrying
//     PRESTOP_TOKEN in X-Prestop-Token, a sleep, the service's own exec
//     subcommand ([BINARY, "prestop"]), or none; an empty PRESTOP_TOKEN is
//     a warning whatever the hook, since /prestop is served anyway (not an
//     error: an httpGet hook without a header works, and a token must be
//     written into the pod spec and the Secret together);
//   - a grace period shortened by Kubernetes can be seen: POD_NAME (the
//     env of modules/kubemod, which reads the pod's deletionTimestamp at
//     D0) is the downward API's metadata.name, POD_NAMESPACE its
//     metadata.namespace, and the pod mounts its service account token;
//     if the input holds RBAC (a ServiceAccount, Roles, bindings), one of
//     its Roles or ClusterRoles bound to the pod's ServiceAccount allows
//     get on pods (a warning); a workload with neither POD_NAME nor a
//     preStop hook that calls /prestop (no hook, or a sleep: SIGTERM alone)
//     is warned of;
//   - the container's ports named http and admin are PORT and ADMIN_PORT;
//   - no Service that selects the pods exposes the admin port (a headless
//     Service, which routes nothing, may: a ServiceMonitor needs one);
//   - a Deployment rolls with maxUnavailable 0, and has 2 replicas or more
//     (a warning); a PodDisruptionBudget leaves a pod to evict (a warning).
//
// # Limits
//
// Only what the input holds is known: a Secret or ConfigMap kept elsewhere
// must be given with [Options.Env] (the -env flag), and envFrom sources are
// read only from the input. Kubernetes' own validation (required fields,
// name formats) is not repeated; unknown fields and duplicate keys in the
// kinds above are errors, other kinds are skipped.
package deploycheck
