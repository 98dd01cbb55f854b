package rollout_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/kube"
	"github.com/drainfx/drainfx/internal/rollout"
)

// needKube skips under -short and without what -dataplane kube needs
// (root, Linux, ip, nft, conntrack, the binaries of internal/ci/kube.sh),
// in one line naming it; with CI=true it fails instead.
func needKube(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("rollout check on a real data plane: skipped in -short mode")
	}
	if err := kube.CheckDataPlane(kube.ProxyNFTables); err != nil {
		msg := "rollout check on a real data plane: " + strings.ReplaceAll(err.Error(), "\n", "; ")
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

// leftBehind lists what a kube rollout of this process left: network
// namespaces named after it, and child processes (every process this test
// binary starts is stopped and waited for before Run returns).
func leftBehind(t *testing.T) []string {
	t.Helper()
	var left []string
	entries, _ := os.ReadDir("/run/netns")
	prefix := fmt.Sprintf("drainfx-%d-", os.Getpid())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			left = append(left, "network namespace "+e.Name())
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range procs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, not ")".
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			left = append(left, "process "+strings.TrimSpace(s[:strings.LastIndexByte(s, ')')+1]))
		}
	}
	return left
}

// TestKubeZeroLoss is the rollout check of examples/service against a real
// kube-apiserver, EndpointSlice controller and kube-proxy (nftables): 2
// replicas, 3 replacements, the preStop hook, the default load (keep-alive,
// new-connection, WebSocket and SSE clients dialing the ClusterIP). Nothing
// may be lost, every replaced pod must exit 0, the real components must
// have done the work (each DELETE turned the endpoint terminating, kube-proxy
// sent every pod connections and stopped), no pod may leave while the node
// still sent it new connections, and nothing may be left behind.
func TestKubeZeroLoss(t *testing.T) {
	needKube(t)
	res := check(t, rollout.Config{
		Bin:          binary(t, servicePkg),
		Env:          serviceEnv(t),
		Replicas:     2,
		Replacements: 3,
		PreStop:      rollout.PreStop{Kind: rollout.PreStopHTTP},
		GracePeriod:  30 * time.Second,
		DataPlane:    rollout.DataPlaneKube,
	})
	if !res.Pass() {
		logPods(t, res)
		t.Errorf("%d lost, want none", res.Lost())
	}
	if len(res.Terminated()) != 3 {
		t.Fatalf("%d pods replaced, want 3", len(res.Terminated()))
	}
	for _, p := range res.Pods {
		k := p.Kube
		if k == nil || k.Conns == 0 || k.Endpoint.Ready.IsZero() {
			t.Errorf("%s: %+v: want a ready endpoint and connections through the ClusterIP", p.Name, k)
			continue
		}
		if !p.Terminated {
			continue
		}
		if p.ExitCode != 0 || p.Killed {
			t.Errorf("%s: exit %d (SIGKILL %v), want 0", p.Name, p.ExitCode, p.Killed)
		}
		term := k.Endpoint.Terminating.Sub(k.Deleted)
		last := k.LastConn.Sub(k.Deleted)
		t.Logf("%s: DELETE→terminating %v, DELETE→last new connection %v, pod's last arrival D0+%v, T0→exit %v",
			p.Name, term.Round(time.Millisecond), last.Round(time.Millisecond), k.PodLastArrival.Round(time.Millisecond), p.StopTime().Round(time.Millisecond))
		if k.Endpoint.Terminating.IsZero() || term < 0 || term > 5*time.Second {
			t.Errorf("%s: DELETE→terminating %v, want the EndpointSlice controller to mark it within 5s", p.Name, term)
		}
		if !k.LastConn.Before(p.Exited) {
			t.Errorf("%s: a new connection at %v, after its exit at %v", p.Name, k.LastConn, p.Exited)
		}
	}
	if left := leftBehind(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestKubeNaiveServerLoses shows that the check fails on the real data
// plane too: the textbook shutdown stops listening at SIGTERM, while
// kube-proxy still sends new connections for a few hundred milliseconds.
func TestKubeNaiveServerLoses(t *testing.T) {
	needKube(t)
	res := check(t, rollout.Config{
		Bin:          binary(t, naivePkg),
		Replicas:     2,
		Replacements: 3,
		PreStop:      rollout.PreStop{Kind: rollout.PreStopHTTP},
		GracePeriod:  5 * time.Second,
		DataPlane:    rollout.DataPlaneKube,
	})
	if res.Pass() || res.LoadLost() == 0 {
		t.Errorf("the naive server lost %d (load %d): the check did not see its losses", res.Lost(), res.LoadLost())
	}
	if left := leftBehind(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

// TestKubeFailedRunLeavesNothing: a rollout that cannot go on (the binary
// exits at once) returns its error and leaves no namespace and no process.
func TestKubeFailedRunLeavesNothing(t *testing.T) {
	needKube(t)
	_, err := rollout.Run(t.Context(), rollout.Config{
		Bin:       "/bin/false",
		Dir:       t.TempDir(),
		Logf:      t.Logf,
		DataPlane: rollout.DataPlaneKube,
	})
	if err == nil || !strings.Contains(err.Error(), "pod-0 exited before its readiness probe passed") {
		t.Errorf("Run: %v, want pod-0's early exit", err)
	}
	if left := leftBehind(t); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}
