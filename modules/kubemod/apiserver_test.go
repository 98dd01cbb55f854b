package kubemod_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/internal/kubetest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/modules/kubemod"
)

// Against a real kube-apiserver (internal/kubetest; skipped without its
// binaries, failed under CI=true): a Pod bound to a node is deleted with
// gracePeriodSeconds 12, as `kubectl delete --grace-period=12` does, and
// stays Terminating. The module, authenticated as a ServiceAccount whose
// only right is get on pods, reads the deadline at D0 and moves a 30 s
// plan before it; as a ServiceAccount without that Role it gets 403, and
// nothing moves but one WARN saying why.
func TestAgainstKubeAPIServer(t *testing.T) {
	srv := kubetest.Start(t)
	const ns, name = "shop", "web-0"
	srv.Namespace(t, ns)
	srv.BoundPod(t, ns, name)
	srv.ServiceAccount(t, ns, "web")
	srv.Grant(t, ns, "web", "pod-reader", kubetest.Rule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}})
	srv.ServiceAccount(t, ns, "nobody")
	tokenFile := func(sa string) string {
		f := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(f, []byte(srv.ServiceAccountToken(t, ns, sa)), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	config := func(sa string) kubemod.Config {
		return kubemod.Config{PodName: name, Namespace: ns, APIURL: srv.URL, TokenFile: tokenFile(sa), CAFile: srv.CAFile}
	}
	reader, nobody := config("web"), config("nobody")
	del := srv.DeletePod(t, ns, name, 12)

	t.Run("get on pods", func(t *testing.T) {
		r := newRun(t, reader)
		d0 := r.drain()
		waittest.Recv(t, r.w.Done(), eventTimeout, "the read at D0")
		rep := r.stopNow(t)
		stop := waittest.Recv(t, r.stopDL, eventTimeout, "the stop deadline")
		// The teardown (3 s) and the margin (1 s) fit between the stop
		// deadline and the deletionTimestamp — to within the moment the
		// request took (the Date header's second may have turned).
		if want := del.Timestamp.Add(-4 * time.Second); stop.After(want) || stop.Before(want.Add(-time.Second)) {
			t.Errorf("stop deadline D0+%v, want D0+%v (deletionTimestamp − teardown − margin)", stop.Sub(d0), want.Sub(d0))
		}
		if rep.Grace == nil || rep.Grace.Source != kubemod.Source || rep.Grace.Real > 12*time.Second || rep.Grace.Real < 10*time.Second {
			t.Errorf("report grace %+v, want the pod's, 10–12 s", rep.Grace)
		}
		logs := r.atD0(t)
		if len(logs) != 1 || logs[0].Message != "pod deadline read" || logs[0].ContextMap()["deletionGracePeriodSeconds"] != int64(12) {
			t.Errorf("logs at D0 %v, want one line with the pod's deadline", logs)
		}
		t.Logf("deletionTimestamp D0+%v, stop deadline D0+%v, report %+v", del.Timestamp.Sub(d0), stop.Sub(d0), *rep.Grace)
	})

	t.Run("no Role: 403", func(t *testing.T) {
		r := newRun(t, nobody)
		d0 := r.drain()
		waittest.Recv(t, r.w.Done(), eventTimeout, "the read at D0")
		rep := r.stopNow(t)
		if stop := waittest.Recv(t, r.stopDL, eventTimeout, "the stop deadline"); !stop.Equal(d0.Add(26 * time.Second)) {
			t.Errorf("stop deadline D0+%v, want the budget's D0+26s", stop.Sub(d0))
		}
		if rep.Grace != nil {
			t.Errorf("report grace %+v, want none", rep.Grace)
		}
		logs := r.atD0(t)
		if len(logs) != 1 {
			t.Fatalf("%d lines at D0, want 1: %v", len(logs), logs)
		}
		err := fmt.Sprint(logs[0].ContextMap()["error"])
		if logs[0].Level != zapcore.WarnLevel || !strings.Contains(err, "403 Forbidden") ||
			!strings.Contains(err, `User "system:serviceaccount:shop:nobody" cannot get resource "pods"`) {
			t.Errorf("logged %v %q, want a WARN with the API server's 403", logs[0].Level, err)
		}
		t.Logf("%v %s: %s", logs[0].Level, logs[0].Message, err)
	})
}
