// Package kubetest starts a real Kubernetes API server for a test: etcd and
// kube-apiserver, built by internal/ci/kube.sh, on free loopback ports in
// the test's temporary directory, with RBAC on, service account tokens
// signed by a key generated here, and an admin bearer token — the API
// server of internal/kube ([kube.StartAPIServer]), which also runs it for
// "drainfx rollout -dataplane kube". Both processes are stopped when the
// test ends ([testing.TB.Cleanup]); if the test process dies first, the
// kernel kills them (Linux).
//
// No controller manager, scheduler or kubelet runs: nothing acts on the
// objects a test creates. So a test creates the namespace's "default"
// ServiceAccount itself before the first Pod ([Server.Namespace] does),
// binds its Pods to a node by name ([Server.BoundPod]: a Pod on no node is
// deleted at once whatever the grace period), and a graceful DELETE
// ([Server.DeletePod]) leaves the Pod Terminating for good, with its
// deletionTimestamp and deletionGracePeriodSeconds set.
//
// The helpers speak REST with net/http and encoding/json, as the code under
// test does: no client-go.
//
// # Binaries
//
// [Start] looks for etcd and kube-apiserver in [kube.BinDir]. Without them
// it skips the test with one line naming the command that builds them
// ([kube.BuildCommand]); with CI=true it fails instead, so that CI never
// passes without running these tests. Under -short it skips.
package kubetest

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/kube"
)

// Server is a running kube-apiserver.
type Server struct {
	// URL is its base URL, https://127.0.0.1:PORT.
	URL string
	// CAFile holds the certificate it serves (with the CA that signed it,
	// both generated at its start), to trust it.
	CAFile string
	// Token is a bearer token of a member of system:masters.
	Token string
	// StartedIn is the time from kube-apiserver's launch to its first
	// /readyz 200.
	StartedIn time.Duration

	api *kube.APIServer
}

// Start starts etcd and kube-apiserver for the test and waits until the
// API server is ready; both are stopped when the test ends. Without the
// binaries it skips the test (fails it with CI=true), naming
// [kube.BuildCommand].
func Start(tb testing.TB) *Server {
	tb.Helper()
	if testing.Short() {
		tb.Skip("kube-apiserver: skipped in -short mode")
	}
	if err := kube.NeedBinaries("etcd", "kube-apiserver"); err != nil {
		if os.Getenv("CI") == "true" {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	api, err := kube.StartAPIServer(ctx, kube.APIServerOptions{Dir: tb.TempDir()})
	if err != nil {
		if errors.Is(err, kube.ErrCannotRun) && os.Getenv("CI") != "true" {
			tb.Skip(err)
		}
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		procs := api.Processes()
		api.Stop()
		if tb.Failed() {
			for _, p := range procs {
				tb.Logf("%s log (last lines):\n%s", p.Name, p.Tail(30))
			}
		}
	})
	tb.Logf("kube-apiserver %s ready %v after its launch", api.URL, api.StartedIn.Round(time.Millisecond))
	return &Server{URL: api.URL, CAFile: api.CAFile, Token: api.Token, StartedIn: api.StartedIn, api: api}
}

// Pids returns the process ids of etcd and kube-apiserver.
func (s *Server) Pids() []int {
	var pids []int
	for _, p := range s.api.Processes() {
		pids = append(pids, p.Pid())
	}
	return pids
}
