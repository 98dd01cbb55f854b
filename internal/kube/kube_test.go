package kube_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/internal/kube"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// needDataPlane skips without what a data plane needs (fails with CI=true).
func needDataPlane(t *testing.T, mode string) {
	t.Helper()
	if testing.Short() {
		t.Skip("kube data plane: skipped in -short mode")
	}
	if err := kube.CheckDataPlane(mode); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(strings.ReplaceAll(err.Error(), "\n", "; "))
	}
}

// TestDataPlane: a Service's ClusterIP reaches a pod's server once the pod
// is Ready, a graceful DELETE marks its endpoint terminating and kube-proxy
// stops sending it new connections while an established one keeps working,
// and Close leaves no namespace and no process behind. Both kube-proxy
// modes.
func TestDataPlane(t *testing.T) {
	for _, mode := range []string{kube.ProxyNFTables, kube.ProxyIPTables} {
		t.Run(mode, func(t *testing.T) {
			needDataPlane(t, mode)
			testDataPlane(t, mode)
		})
	}
}

func testDataPlane(t *testing.T, mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := kube.StartDataPlane(ctx, kube.DataPlaneOptions{Dir: t.TempDir(), ProxyMode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("data plane (%s) up in %v", mode, d.StartedIn.Round(time.Millisecond))
	namespaces := []kube.Netns{d.Net.Node, d.Net.Client}
	pids := []int{d.KubeProxy.Pid(), d.ControllerManager.Pid()}
	for _, p := range d.API.Processes() {
		pids = append(pids, p.Pid())
	}
	closed := false
	defer func() {
		if !closed {
			_ = d.Close()
		}
	}()

	// Two pods, each an HTTP server of this test listening inside its
	// namespace and answering its name.
	var servers []*http.Server
	for i := range 2 {
		ns, err := d.Net.AddPod(ctx, i)
		if err != nil {
			t.Fatal(err)
		}
		namespaces = append(namespaces, ns)
		l, err := ns.Listen("tcp", ":8080")
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("web-%d", i)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })}
		servers = append(servers, srv)
		go srv.Serve(l) //nolint:errcheck // ErrServerClosed at the end
	}
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()

	do := func(method, path, body, contentType string) []byte {
		t.Helper()
		code, out, err := d.API.Do(ctx, method, path, []byte(body), contentType)
		if err != nil || code/100 != 2 {
			t.Fatalf("%s %s: %d %v %s", method, path, code, err, out)
		}
		return out
	}
	var svc struct {
		Spec struct {
			ClusterIP string `json:"clusterIP"`
		} `json:"spec"`
	}
	out := do(http.MethodPost, "/api/v1/namespaces/default/services",
		`{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":8080}]}}`, "")
	if err := json.Unmarshal(out, &svc); err != nil || svc.Spec.ClusterIP == "" {
		t.Fatalf("service: %v %s", err, out)
	}
	for i := range 2 {
		name := fmt.Sprintf("web-%d", i)
		do(http.MethodPost, "/api/v1/namespaces/default/pods", fmt.Sprintf(
			`{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"labels":{"app":"web"}},"spec":{"nodeName":%q,"containers":[{"name":"app","image":"none","ports":[{"containerPort":8080}]}]}}`,
			name, kube.NodeName), "")
		now := time.Now().UTC().Format(time.RFC3339)
		do(http.MethodPatch, "/api/v1/namespaces/default/pods/"+name+"/status", fmt.Sprintf(
			`{"status":{"phase":"Running","podIP":%q,"podIPs":[{"ip":%q}],"conditions":[{"type":"Ready","status":"True","lastTransitionTime":%q},{"type":"ContainersReady","status":"True","lastTransitionTime":%q}]}}`,
			kube.PodIP(i), kube.PodIP(i), now, now), "application/merge-patch+json")
	}

	watch := d.API.WatchEndpoints(ctx, "default", "web")
	defer watch.Stop()
	vip := net.JoinHostPort(svc.Spec.ClusterIP, "80")
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: d.Net.Client.Dial, DisableKeepAlives: true}}
	get := func(c *http.Client) (string, error) {
		resp, err := c.Get("http://" + vip + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	// Both pods answer through the ClusterIP once kube-proxy has synced.
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("through %s from the client namespace: only %v after 30s", vip, seen)
		}
		if name, err := get(client); err == nil {
			seen[name] = true
		}
	}

	// A keep-alive connection that reaches web-0 before its deletion.
	held := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: d.Net.Client.Dial, MaxIdleConnsPerHost: 1}}
	defer held.CloseIdleConnections()
	for {
		name, err := get(held)
		if err != nil {
			t.Fatal(err)
		}
		if name == "web-0" {
			break
		}
		held.CloseIdleConnections()
	}

	deleted := time.Now()
	do(http.MethodDelete, "/api/v1/namespaces/default/pods/web-0", `{"apiVersion":"v1","kind":"DeleteOptions","gracePeriodSeconds":30}`, "")
	// Its endpoint turns terminating; new connections all go to web-1.
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := watch.Wait(wctx, "web-0", func(e kube.EndpointTimes) bool { return !e.Terminating.IsZero() }); err != nil {
		t.Fatalf("no terminating endpoint for web-0: %v", err)
	}
	t.Logf("endpoint of web-0 terminating %v after the DELETE", watch.Pod("web-0").Terminating.Sub(deleted).Round(time.Millisecond))
	deadline = time.Now().Add(10 * time.Second)
	for run := 0; run < 20; {
		name, err := get(client)
		if err != nil {
			t.Fatal(err)
		}
		if name == "web-1" {
			run++
		} else {
			run = 0
		}
		if time.Now().After(deadline) {
			t.Fatalf("new connections still reach web-0 10s after its DELETE")
		}
	}
	t.Logf("kube-proxy sent 20 new connections in a row to web-1 %v after the DELETE", time.Since(deleted).Round(time.Millisecond))
	if name, err := get(held); err != nil || name != "web-0" {
		t.Errorf("the established connection after the DELETE: %q %v, want web-0 still answering", name, err)
	}

	// The node's conntrack events show both pods behind the ClusterIP, and
	// none for web-0 once kube-proxy had stopped sending it connections.
	conns, err := d.Connections()
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]time.Time{}
	for _, c := range conns {
		if c.Dst == svc.Spec.ClusterIP && c.DstPort == 80 {
			last[c.Backend] = c.At
		}
	}
	if last[kube.PodIP(0)].IsZero() || last[kube.PodIP(1)].IsZero() {
		t.Errorf("conntrack: last connections through the ClusterIP per pod %v, want both pods", last)
	} else {
		t.Logf("conntrack: last new connection to web-0 %v after the DELETE", last[kube.PodIP(0)].Sub(deleted).Round(time.Millisecond))
	}

	held.CloseIdleConnections()
	for _, s := range servers {
		s.Close()
	}
	watch.Stop()
	closed = true
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		if _, err := os.Stat(ns.Path()); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s left behind (%v)", ns, err)
		}
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d left behind (kill 0: %v)", pid, err)
		}
	}
}

// TestFailedStartLeavesNothing: a data plane whose kube-proxy cannot start
// (a flag it does not know) returns the error with kube-proxy's output, and
// leaves no namespace and no process behind.
func TestFailedStartLeavesNothing(t *testing.T) {
	needDataPlane(t, kube.ProxyNFTables)
	before := ourNamespaces(t)
	_, err := kube.StartDataPlane(t.Context(), kube.DataPlaneOptions{Dir: t.TempDir(), ProxyArgs: []string{"--no-such-flag"}})
	if err == nil || !strings.Contains(err.Error(), "kube-proxy exited before it was ready") || !strings.Contains(err.Error(), "no-such-flag") {
		t.Fatalf("StartDataPlane: %v, want kube-proxy's exit naming the flag", err)
	}
	if left := ourNamespaces(t); len(left) > len(before) {
		t.Errorf("namespaces left behind: %v", left)
	}
	if kids := children(t); len(kids) > 0 {
		t.Errorf("processes left behind: %v", kids)
	}
}

// TestSweepStale: the namespaces of a run whose process is gone are
// deleted by the next run.
func TestSweepStale(t *testing.T) {
	needDataPlane(t, kube.ProxyNFTables)
	// A process id that was in use and is not any more.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	stale := kube.Netns(fmt.Sprintf("drainfx-%d-1-node", cmd.Process.Pid))
	if out, err := exec.Command("ip", "netns", "add", string(stale)).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", string(stale)).Run() })
	n, err := kube.NewNetwork(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if _, err := os.Stat(stale.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: still there after a new network (%v)", stale, err)
	}
	if _, err := os.Stat(n.Node.Path()); err != nil {
		t.Errorf("the new network's own namespace: %v", err)
	}
}

// ourNamespaces lists the network namespaces named after this process.
func ourNamespaces(t *testing.T) []string {
	t.Helper()
	entries, _ := os.ReadDir("/run/netns")
	var ours []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("drainfx-%d-", os.Getpid())) {
			ours = append(ours, e.Name())
		}
	}
	return ours
}

// children lists the processes whose parent is this process.
func children(t *testing.T) []string {
	t.Helper()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []string
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if fields := strings.Fields(s[end+1:]); len(fields) > 1 && fields[1] == strconv.Itoa(os.Getpid()) {
			kids = append(kids, s[:end+1])
		}
	}
	return kids
}
