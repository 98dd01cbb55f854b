package kubetest_test

import (
	"errors"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/internal/kubetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// What the tests of the modules rely on: RBAC holds a ServiceAccount to
// its Role, a bound Pod deleted gracefully stays Terminating with its
// deadline, and nothing is left running after the test.
func TestServer(t *testing.T) {
	var pids []int
	t.Run("server", func(t *testing.T) {
		srv := kubetest.Start(t)
		pids = srv.Pids()
		srv.Namespace(t, "shop")
		srv.BoundPod(t, "shop", "web-0")
		srv.ServiceAccount(t, "shop", "web")
		srv.Grant(t, "shop", "web", "pod-reader", kubetest.Rule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}})
		token := srv.ServiceAccountToken(t, "shop", "web")
		tests := []struct {
			method, path string
			want         int
		}{
			{http.MethodGet, "/api/v1/namespaces/shop/pods/web-0", http.StatusOK},
			{http.MethodGet, "/api/v1/namespaces/shop/pods", http.StatusForbidden},
			{http.MethodDelete, "/api/v1/namespaces/shop/pods/web-0", http.StatusForbidden},
			{http.MethodGet, "/api/v1/namespaces/default/pods/web-0", http.StatusForbidden},
		}
		for _, tt := range tests {
			if code, body := srv.DoAs(t, token, tt.method, tt.path, nil); code != tt.want {
				t.Errorf("%s %s as the ServiceAccount: %d, want %d: %s", tt.method, tt.path, code, tt.want, body)
			}
		}
		before := time.Now()
		del := srv.DeletePod(t, "shop", "web-0", 12)
		if del.GracePeriodSeconds != 12 || del.Timestamp.Before(before.Add(11*time.Second)) || del.Timestamp.After(time.Now().Add(12*time.Second)) {
			t.Errorf("deletion %+v, want a grace of 12 s from now (%v)", del, before)
		}
		if code, body := srv.DoAs(t, token, http.MethodGet, "/api/v1/namespaces/shop/pods/web-0", nil); code != http.StatusOK ||
			!strings.Contains(string(body), `"deletionTimestamp"`) {
			t.Errorf("the pod after DELETE: %d %s, want it Terminating", code, body)
		}
	})
	if len(pids) != 2 {
		t.Fatalf("pids %v, want etcd and kube-apiserver", pids)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still there after the test (kill 0: %v)", pid, err)
		}
	}
}
