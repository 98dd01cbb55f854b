// Package kubemod reads the real deadline of a terminating pod from the
// Kubernetes API: at D0 it reads the pod's metadata.deletionTimestamp and
// deletionGracePeriodSeconds and, when the kubelet's SIGKILL comes before
// the budget planned (`kubectl delete --grace-period`, `kubectl drain
// --grace-period`, an Eviction with gracePeriodSeconds), moves every
// deadline of the [lifecycle.Coordinator] so that the stop phase, the
// teardown and the margin end before it, the drain shortened first
// ([lifecycle.Coordinator.ShortenGrace]; the report's "grace" says so).
//
// It is the only way a pod without a preStop hook can know: SIGTERM says
// nothing of the grace period. With a /prestop hook (httpGet, or exec
// `service prestop`) the coordinator also learns it without the API, but
// late: a SIGTERM during the preStop call means the kubelet has given up
// on the hook and 2 s are left (the report's grace source: "signal during
// prestop"). With the API read, the drain is cut to fit at D0 instead.
//
// # What it needs
//
//   - POD_NAME (and POD_NAMESPACE) from the downward API. Without a pod
//     name the module is off and says so once at start-up. The namespace
//     defaults to the service account's namespace file.
//   - The service account's token and CA, mounted as usual at
//     /var/run/secrets/kubernetes.io/serviceaccount (not
//     automountServiceAccountToken: false), and KUBERNETES_SERVICE_HOST /
//     KUBERNETES_SERVICE_PORT, which the kubelet sets in every container.
//     The token is read again for each request: the kubelet rotates it.
//   - A Role allowing get on pods, bound to the pod's ServiceAccount
//     (examples/service/k8s has the ServiceAccount, Role and RoleBinding;
//     the example's Helm chart renders them with kubeDeadline.enabled).
//
// The Role's one rule, and the container's environment:
//
//	rules: [{apiGroups: [""], resources: [pods], verbs: [get]}]
//
//	env:
//	  - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
//	  - {name: POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
//
// # Failures
//
// The read runs in a goroutine of its own, started at D0 and bounded by
// [Config.Timeout] (2s): it never holds up the drain. An API server that
// refuses (401, 403), a pod that is not found (404), a network error, no
// answer within the timeout, no token or CA, or the stop phase beginning
// first, change nothing: the budget's grace period stands, and one WARN
// says why (never with the token). A pod that is not being deleted (no
// deletionTimestamp: the drain began for another reason) changes nothing
// either; an INFO line says so. A deadline no earlier than the budget's
// changes nothing.
//
// # Clocks
//
// deletionTimestamp is the deletion's time plus the grace period on the
// API server's clock, truncated to the second (down, so on the safe
// side); the kubelet counts the grace period from the moment it begins the
// termination, a little later. The API server's clock is compared with
// this node's through the response's Date header: a difference beyond its
// one-second precision is taken into account. And the deadline is never
// later than D0 + deletionGracePeriodSeconds on this node's clock.
//
// # Why no client-go
//
// The module makes one GET per process: `/api/v1/namespaces/NS/pods/NAME`,
// with net/http and encoding/json, decoding the two fields it needs.
// client-go (and k8s.io/api) would add dozens of modules to the module
// graph of every service that imports drainfx, for that one request.
//
// # Limits
//
// The pod is read once, at D0: a second deletion with a shorter grace
// period after it is not seen. Terminations that do not go through the
// API's deletion — graceful node shutdown, the kubelet's eviction under
// node pressure, a failed liveness probe — set no deletionTimestamp before
// SIGTERM: the budget's grace period stands (with a /prestop hook, the
// 2 s rule above still applies).
package kubemod
