package kubetest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// Do sends a request as the admin, with body (nil for none) as JSON, and
// returns the response body; a status other than 2xx fails the test.
func (s *Server) Do(tb testing.TB, method, path string, body any) []byte {
	tb.Helper()
	code, out := s.DoAs(tb, s.Token, method, path, body)
	if code/100 != 2 {
		tb.Fatalf("%s %s: %d %s", method, path, code, out)
	}
	return out
}

// DoAs sends a request with the bearer token and returns the status and
// the body; only a failure to send fails the test.
func (s *Server) DoAs(tb testing.TB, token, method, path string, body any) (int, []byte) {
	tb.Helper()
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			tb.Fatal(err)
		}
	}
	code, out, err := s.api.DoAs(context.Background(), token, method, path, data, "")
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	return code, out
}

// Namespace creates the namespace and its "default" ServiceAccount (which
// the controller manager would create, and a Pod needs).
func (s *Server) Namespace(tb testing.TB, ns string) {
	tb.Helper()
	s.Do(tb, http.MethodPost, "/api/v1/namespaces", object("v1", "Namespace", ns, nil))
	s.ServiceAccount(tb, ns, "default")
}

// ServiceAccount creates a ServiceAccount.
func (s *Server) ServiceAccount(tb testing.TB, ns, name string) {
	tb.Helper()
	s.Do(tb, http.MethodPost, "/api/v1/namespaces/"+url.PathEscape(ns)+"/serviceaccounts", object("v1", "ServiceAccount", name, nil))
}

// ServiceAccountToken returns a token of the ServiceAccount from the TokenRequest API,
// valid for an hour, as the kubelet mounts one in a pod.
func (s *Server) ServiceAccountToken(tb testing.TB, ns, sa string) string {
	tb.Helper()
	out := s.Do(tb, http.MethodPost, "/api/v1/namespaces/"+url.PathEscape(ns)+"/serviceaccounts/"+url.PathEscape(sa)+"/token",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": map[string]any{"expirationSeconds": 3600}})
	var tr struct {
		Status struct {
			Token string `json:"token"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out, &tr); err != nil || tr.Status.Token == "" {
		tb.Fatalf("TokenRequest for %s/%s: %v %s", ns, sa, err, out)
	}
	return tr.Status.Token
}

// Rule is one PolicyRule of a Role.
type Rule struct {
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
	Verbs     []string `json:"verbs"`
}

// Grant creates a Role with the rules and binds it to the ServiceAccount.
func (s *Server) Grant(tb testing.TB, ns, sa, role string, rules ...Rule) {
	tb.Helper()
	base := "/apis/rbac.authorization.k8s.io/v1/namespaces/" + url.PathEscape(ns)
	s.Do(tb, http.MethodPost, base+"/roles", object("rbac.authorization.k8s.io/v1", "Role", role, map[string]any{"rules": rules}))
	s.Do(tb, http.MethodPost, base+"/rolebindings", object("rbac.authorization.k8s.io/v1", "RoleBinding", role, map[string]any{
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": sa, "namespace": ns}},
	}))
}

// BoundPod creates a Pod already bound to a node (spec.nodeName), so that
// a graceful DELETE leaves it Terminating instead of removing it at once.
// Its container never runs: no kubelet.
func (s *Server) BoundPod(tb testing.TB, ns, name string) {
	tb.Helper()
	s.Do(tb, http.MethodPost, "/api/v1/namespaces/"+url.PathEscape(ns)+"/pods", object("v1", "Pod", name, map[string]any{
		"spec": map[string]any{
			"nodeName":   "node-1",
			"containers": []any{map[string]any{"name": "app", "image": "registry.k8s.io/pause:3.10"}},
		},
	}))
}

// Deletion is a Terminating pod's metadata.
type Deletion struct {
	Timestamp          time.Time // metadata.deletionTimestamp
	GracePeriodSeconds int64     // metadata.deletionGracePeriodSeconds
}

// DeletePod deletes the Pod with a grace period, as kubectl delete
// --grace-period does, and returns its deletion as the API server
// recorded it.
func (s *Server) DeletePod(tb testing.TB, ns, name string, graceSeconds int64) Deletion {
	tb.Helper()
	out := s.Do(tb, http.MethodDelete, "/api/v1/namespaces/"+url.PathEscape(ns)+"/pods/"+url.PathEscape(name),
		map[string]any{"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": graceSeconds})
	var pod struct {
		Metadata struct {
			DeletionTimestamp          *time.Time `json:"deletionTimestamp"`
			DeletionGracePeriodSeconds *int64     `json:"deletionGracePeriodSeconds"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(out, &pod); err != nil || pod.Metadata.DeletionTimestamp == nil || pod.Metadata.DeletionGracePeriodSeconds == nil {
		tb.Fatalf("DELETE pod %s/%s: not Terminating: %v %s", ns, name, err, out)
	}
	return Deletion{*pod.Metadata.DeletionTimestamp, *pod.Metadata.DeletionGracePeriodSeconds}
}

// object is a Kubernetes object with a name and more top-level fields.
func object(apiVersion, kind, name string, fields map[string]any) map[string]any {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind, "metadata": map[string]any{"name": name}}
	for k, v := range fields {
		o[k] = v
	}
	return o
}
