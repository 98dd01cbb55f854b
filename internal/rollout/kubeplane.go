package rollout

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/drainfx/drainfx/internal/kube"
)

// The objects and ports of the kube data plane.
const (
	kubeNamespace = "default"
	kubeService   = "drainfx-rollout" // the Service, and the pods' label app
	servicePort   = 80
	podPort       = 8080 // PortEnv in every pod
	podAdminPort  = 9090 // AdminPortEnv in every pod
	lbPort        = 8080 // the load balancer's frontend, in the client namespace
)

// KubeTimes is what the real components showed of one pod (DataPlane
// kube). Times are wall-clock; zero: not seen.
type KubeTimes struct {
	IP string
	// Deleted is when the graceful DELETE was sent (replaced pods only).
	Deleted time.Time
	// Endpoint is what a watch of the Service's EndpointSlices saw of the
	// pod's endpoint (ready, terminating, removed).
	Endpoint kube.EndpointTimes
	// FirstConn and LastConn are the first and the last new connection to
	// the ClusterIP that the node sent to this pod, Conns their number:
	// kube-proxy's rules at work, from the node's conntrack events.
	FirstConn, LastConn time.Time
	Conns               int
	// LBIn and LBOut are when the load balancer put the pod in and out;
	// LBFirstConn, LBLastConn and LBConns count the connections it sent
	// the pod (LoadBalancer only).
	LBIn, LBOut             time.Time
	LBFirstConn, LBLastConn time.Time
	LBConns                 int
	// PodLastArrival is what the pod itself saw: the last new connection
	// after D0, from drainfx's shutdown report in its log ("lastArrival");
	// -1 if its log has none.
	PodLastArrival time.Duration
}

// kubePlane is the real data plane: the pods are processes in network
// namespaces, their Pods and the Service live in a real API server, and
// the real EndpointSlice controller and kube-proxy route the clients'
// connections to the ClusterIP. The rollout plays the kubelet.
type kubePlane struct {
	r         *runner
	dp        *kube.DataPlane
	watch     *kube.EndpointWatch
	clusterIP string
	lb        *proxy // the load balancer, or nil

	ctx    context.Context // ends at close: the probers, the watch
	cancel context.CancelFunc
	wg     sync.WaitGroup // the probers and the load balancer's goroutines
}

func newKubePlane(ctx context.Context, r *runner, haproxy, hdir string) (k *kubePlane, err error) {
	cfg := r.cfg
	k = &kubePlane{r: r}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			_ = k.close()
			k = nil
		}
	}()
	dir := filepath.Join(r.dir, "kube")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return k, err
	}
	if k.dp, err = kube.StartDataPlane(ctx, kube.DataPlaneOptions{Dir: dir, ProxyMode: cfg.ProxyMode}); err != nil {
		return k, fmt.Errorf("data plane kube: %w", err)
	}
	r.logf("data plane up in %.3fs: etcd, kube-apiserver, kube-controller-manager (EndpointSlice controller), kube-proxy (%s) in %s; logs in %s",
		k.dp.StartedIn.Seconds(), k.dp.ProxyMode, k.dp.Net.Node, dir)
	k.watch = k.dp.API.WatchEndpoints(k.ctx, kubeNamespace, kubeService)

	svc, err := k.api(ctx, http.MethodPost, "/api/v1/namespaces/"+kubeNamespace+"/services", map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": kubeService},
		"spec": map[string]any{
			"selector": map[string]any{"app": kubeService},
			"ports":    []any{map[string]any{"name": "http", "port": servicePort, "targetPort": podPort}},
		},
	}, "")
	if err != nil {
		return k, err
	}
	var s struct {
		Spec struct {
			ClusterIP string `json:"clusterIP"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(svc, &s); err != nil || s.Spec.ClusterIP == "" {
		return k, fmt.Errorf("service %s: no clusterIP (%v): %s", kubeService, err, svc)
	}
	k.clusterIP = s.Spec.ClusterIP
	r.logf("service %s: ClusterIP %s:%d → pods :%d", kubeService, k.clusterIP, servicePort, podPort)

	if cfg.LoadBalancer {
		slots := cfg.Replicas + cfg.Replacements
		backends := make([]string, slots)
		for i := range backends {
			backends[i] = net.JoinHostPort(kube.PodIP(i), strconv.Itoa(podPort))
		}
		k.lb, err = startProxy(ctx, proxyOptions{
			path: haproxy, dir: hdir, frontend: net.JoinHostPort("127.0.0.1", strconv.Itoa(lbPort)), backends: backends,
			netns: k.dp.Net.Client.Exec(), dial: k.dp.Net.Client.Dial,
		})
		if err != nil {
			return k, err
		}
		r.logf("load balancer: HAProxy in %s, to the pods' IPs, following the EndpointSlices: entry %v after ready, removal %v after terminating",
			k.dp.Net.Client, cfg.Entry, cfg.Propagation)
	}
	return k, nil
}

// api sends one request to the API server; a status other than 2xx is an
// error. body is marshalled to JSON (nil: none).
func (k *kubePlane) api(ctx context.Context, method, path string, body any, contentType string) ([]byte, error) {
	var data []byte
	if body != nil {
		var err error
		if data, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	code, out, err := k.dp.API.Do(ctx, method, path, data, contentType)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if code/100 != 2 {
		return out, fmt.Errorf("%s %s: %d %s", method, path, code, out)
	}
	return out, nil
}

func (k *kubePlane) via() string {
	return "kube-proxy (" + k.dp.ProxyMode + ")"
}

func (k *kubePlane) targets() []target {
	vip := target{addr: net.JoinHostPort(k.clusterIP, strconv.Itoa(servicePort)), dial: k.dp.Net.Client.Dial}
	if k.lb == nil {
		return []target{vip}
	}
	vip.label = "ClusterIP"
	return []target{vip, {label: "load balancer", addr: k.lb.addr, dial: k.dp.Net.Client.Dial}}
}

func (k *kubePlane) podPath(p *pod) string {
	return "/api/v1/namespaces/" + kubeNamespace + "/pods/" + p.Name
}

// prepare creates the pod's network namespace and its Pod, bound to the
// node (as the scheduler would have).
func (k *kubePlane) prepare(ctx context.Context, p *pod) ([]string, []string, error) {
	cfg := k.r.cfg
	ns, err := k.dp.Net.AddPod(ctx, p.Slot)
	if err != nil {
		return nil, nil, err
	}
	p.Host, p.Port, p.AdminPort = kube.PodIP(p.Slot), podPort, podAdminPort
	p.Kube = &KubeTimes{IP: p.Host, PodLastArrival: -1}
	_, err = k.api(ctx, http.MethodPost, "/api/v1/namespaces/"+kubeNamespace+"/pods", map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": p.Name, "labels": map[string]any{"app": kubeService}},
		"spec": map[string]any{
			"nodeName":                      kube.NodeName,
			"terminationGracePeriodSeconds": int64(cfg.GracePeriod / time.Second),
			"containers": []any{map[string]any{
				"name": "app", "image": "drainfx.invalid/app",
				"ports": []any{
					map[string]any{"name": "http", "containerPort": podPort},
					map[string]any{"name": "admin", "containerPort": podAdminPort},
				},
			}},
		},
	}, "")
	if err != nil {
		return nil, nil, err
	}
	return ns.Command(cfg.Bin, cfg.Args...),
		[]string{cfg.PortEnv + "=" + strconv.Itoa(podPort), cfg.AdminPortEnv + "=" + strconv.Itoa(podAdminPort)}, nil
}

// started reports the pod running with its IP, not ready yet, as the
// kubelet does once the sandbox and the container are up.
func (k *kubePlane) started(ctx context.Context, p *pod) error {
	now := time.Now().UTC().Format(time.RFC3339)
	_, err := k.api(ctx, http.MethodPatch, k.podPath(p)+"/status", map[string]any{"status": map[string]any{
		"phase": "Running", "podIP": p.Host, "podIPs": []any{map[string]any{"ip": p.Host}},
		"hostIP": kube.NodeIP, "startTime": now,
		"conditions": []any{
			map[string]any{"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
			map[string]any{"type": "Initialized", "status": "True", "lastTransitionTime": now},
			map[string]any{"type": "ContainersReady", "status": "False", "lastTransitionTime": now},
			map[string]any{"type": "Ready", "status": "False", "lastTransitionTime": now},
		},
	}}, "application/merge-patch+json")
	return err
}

// setReady reports the readiness probe's verdict in the Pod's status.
func (k *kubePlane) setReady(ctx context.Context, p *pod, ready bool) error {
	now := time.Now().UTC().Format(time.RFC3339)
	status := map[bool]string{true: "True", false: "False"}[ready]
	// A strategic merge patch merges the conditions by type.
	_, err := k.api(ctx, http.MethodPatch, k.podPath(p)+"/status", map[string]any{"status": map[string]any{
		"conditions": []any{
			map[string]any{"type": "ContainersReady", "status": status, "lastTransitionTime": now},
			map[string]any{"type": "Ready", "status": status, "lastTransitionTime": now},
		},
	}}, "application/strategic-merge-patch+json")
	return err
}

func (k *kubePlane) kubeletDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return k.dp.Net.Node.Dial(ctx, network, addr)
}

// enter reports the pod Ready and goes on probing it, as the kubelet does
// for as long as the pod runs (its termination included). Nothing waits
// for kube-proxy: a Deployment deletes the old pod once the new one is
// Ready. With the load balancer, the pod enters it Entry after its
// endpoint is ready, and the rollout waits for that.
func (k *kubePlane) enter(ctx context.Context, p *pod, first bool) error {
	if err := k.setReady(ctx, p, true); err != nil {
		return err
	}
	k.r.logf("%s Ready (status PATCHed)", p.Name)
	k.wg.Go(func() { k.probe(p) })
	if k.lb == nil {
		return nil
	}
	if err := k.awaitEndpoint(ctx, p, "ready", func(t kube.EndpointTimes) bool { return !t.Ready.IsZero() }); err != nil {
		return err
	}
	if !first {
		p.EntryDelay = k.r.draw(k.r.cfg.Entry)
		if err := sleep(ctx, time.Until(k.watch.Pod(p.Name).Ready.Add(p.EntryDelay))); err != nil {
			return err
		}
	}
	if err := k.lb.setState(p.Slot, "ready"); err != nil {
		return err
	}
	p.Kube.LBIn = time.Now()
	k.r.logf("%s in the load balancer (%.3fs after ready)", p.Name, p.Kube.LBIn.Sub(p.Ready).Seconds())
	return nil
}

// probe probes the pod's readiness every ProbePeriod until it exits, and
// reports each change in the Pod's status.
func (k *kubePlane) probe(p *pod) {
	url := k.r.podURL(p, k.r.cfg.ReadinessPath)
	tick := time.NewTicker(k.r.cfg.ProbePeriod)
	defer tick.Stop()
	ready := true
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-p.done:
			return
		case <-tick.C:
		}
		if ok := k.r.probe(k.ctx, url); ok != ready && !p.exited() {
			ready = ok
			if err := k.setReady(k.ctx, p, ok); err != nil {
				k.r.logf("%s readiness: %v", p.Name, err)
				continue
			}
			k.r.logf("%s readiness probe %s: Ready=%v", p.Name, map[bool]string{true: "passes", false: "fails"}[ok], ok)
		}
	}
}

// warm waits until the first pods' endpoints are ready and kube-proxy
// routes the ClusterIP: a connection from the client namespace is
// accepted.
func (k *kubePlane) warm(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, k.r.cfg.StartTimeout)
	defer cancel()
	k.r.mu.Lock()
	pods := append([]*pod(nil), k.r.pods...)
	k.r.mu.Unlock()
	for _, p := range pods {
		if err := k.awaitEndpoint(ctx, p, "ready", func(t kube.EndpointTimes) bool { return !t.Ready.IsZero() }); err != nil {
			return err
		}
	}
	addr := net.JoinHostPort(k.clusterIP, strconv.Itoa(servicePort))
	for {
		dctx, dcancel := context.WithTimeout(ctx, time.Second)
		c, err := k.dp.Net.Client.Dial(dctx, "tcp", addr)
		dcancel()
		if err == nil {
			c.Close()
			k.r.logf("kube-proxy routes %s", addr)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-proxy: %s not routed within %v (see %s): %w", addr, k.r.cfg.StartTimeout, k.dp.KubeProxy.Log, err)
		case <-time.After(20 * time.Millisecond): // polling kube-proxy's first sync, bounded by ctx
		}
	}
}

// awaitEndpoint waits, StartTimeout at most, until the pod's endpoint is
// what cond wants (the EndpointSlice controller has acted).
func (k *kubePlane) awaitEndpoint(ctx context.Context, p *pod, what string, cond func(kube.EndpointTimes) bool) error {
	ctx, cancel := context.WithTimeout(ctx, k.r.cfg.StartTimeout)
	defer cancel()
	if err := k.watch.Wait(ctx, p.Name, cond); err != nil {
		return fmt.Errorf("%s: endpoint not %s within %v (see %s): %w", p.Name, what, k.r.cfg.StartTimeout, k.dp.ControllerManager.Log, err)
	}
	return nil
}

// deleting DELETEs the Pod with the grace period, as the ReplicaSet
// controller does (the kubelet, watching, starts the kill sequence at T0,
// right after).
func (k *kubePlane) deleting(ctx context.Context, p *pod) error {
	p.Kube.Deleted = time.Now()
	_, err := k.api(ctx, http.MethodDelete, k.podPath(p), map[string]any{
		"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": int64(k.r.cfg.GracePeriod / time.Second),
	}, "")
	if err == nil {
		k.r.logf("%s DELETEd (grace %v)", p.Name, k.r.cfg.GracePeriod)
	}
	return err
}

// removing: the real components remove the endpoint on their own; the
// load balancer follows the EndpointSlice, Propagation after the endpoint
// turned terminating.
func (k *kubePlane) removing(ctx context.Context, p *pod) (string, func()) {
	if k.lb == nil {
		return "", func() {}
	}
	p.PropagationTarget = k.r.draw(k.r.cfg.Propagation)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := k.awaitEndpoint(ctx, p, "terminating", func(t kube.EndpointTimes) bool { return !t.Terminating.IsZero() }); err != nil {
			if ctx.Err() == nil {
				k.r.fail(err)
			}
			return
		}
		if err := leaveAfter(ctx, k.lb, p, k.watch.Pod(p.Name).Terminating.Add(p.PropagationTarget)); err != nil {
			k.r.fail(err)
			return
		}
		if !p.OutOfProxy.IsZero() {
			p.Kube.LBOut = p.OutOfProxy
			k.r.logf("%s out of the load balancer %.3fs after T0", p.Name, p.OutOfProxy.Sub(p.T0).Seconds())
		}
	})
	return fmt.Sprintf("leaves the load balancer %.3fs after its endpoint is terminating", p.PropagationTarget.Seconds()), wg.Wait
}

// exited finishes what the kubelet does once the container is gone: the
// pod's sandbox (its network namespace) is removed and the Pod deleted
// for good (grace period 0).
func (k *kubePlane) exited(_ context.Context, p *pod) {
	// The plane's context: this runs on an ended rollout too.
	if _, err := k.api(k.ctx, http.MethodDelete, k.podPath(p), map[string]any{
		"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
	}, ""); err != nil {
		k.r.logf("%s: %v", p.Name, err)
	}
	if err := k.dp.Net.RemovePod(k.ctx, p.Slot); err != nil {
		k.r.logf("%s: %v", p.Name, err)
	}
}

// report adds the endpoint's changes, the connections the node sent each
// pod, and what the pod itself saw.
func (k *kubePlane) report(pods []*pod) {
	conns, err := k.dp.Connections()
	if err != nil {
		k.r.logf("connections: %v", err)
	}
	bySlot := map[string]*KubeTimes{}
	for _, p := range pods {
		bySlot[p.Host] = p.Kube
		p.Kube.Endpoint = k.watch.Pod(p.Name)
		p.Kube.PodLastArrival = lastArrival(p.Log)
	}
	for _, c := range conns {
		switch {
		case c.Dst == k.clusterIP && c.DstPort == servicePort:
			if t := bySlot[c.Backend]; t != nil {
				t.Conns++
				if t.FirstConn.IsZero() {
					t.FirstConn = c.At
				}
				t.LastConn = c.At
			}
		case c.Src == kube.ClientIP && c.DstPort == podPort:
			if t := bySlot[c.Dst]; t != nil {
				t.LBConns++
				if t.LBFirstConn.IsZero() {
					t.LBFirstConn = c.At
				}
				t.LBLastConn = c.At
			}
		}
	}
	for _, p := range pods {
		if !p.Terminated {
			continue
		}
		last := p.Kube.LastConn
		if p.Kube.LBLastConn.After(last) {
			last = p.Kube.LBLastConn
		}
		if last.After(p.T0) {
			p.Propagation = last.Sub(p.T0)
		}
	}
}

func (k *kubePlane) close() error {
	k.cancel()
	k.wg.Wait()
	if k.watch != nil {
		k.watch.Stop()
	}
	if k.lb != nil {
		k.lb.stop()
	}
	if k.dp == nil {
		return nil
	}
	start := time.Now()
	err := k.dp.Close()
	k.r.logf("data plane stopped and removed in %.3fs", time.Since(start).Seconds())
	return err
}

var lastArrivalField = regexp.MustCompile(`"lastArrival":(-?[0-9.eE+-]+)`)

// lastArrival reads drainfx's shutdown report in a pod's log: the last new
// connection after D0 ("lastArrival", in seconds), or -1.
func lastArrival(log string) time.Duration {
	f, err := os.Open(log)
	if err != nil {
		return -1
	}
	defer f.Close()
	d := time.Duration(-1)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		if m := lastArrivalField.FindSubmatch(sc.Bytes()); m != nil {
			if s, err := strconv.ParseFloat(string(m[1]), 64); err == nil {
				d = time.Duration(s * float64(time.Second))
			}
		}
	}
	return d
}
