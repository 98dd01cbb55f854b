package rollout

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/drainfx/drainfx/internal/kube"
)

type runner struct {
	cfg     Config
	dir     string // the pods' logs
	plane   plane
	kubelet *http.Client // probes and preStop: a new connection each time
	start   time.Time
	wg      sync.WaitGroup

	mu   sync.Mutex
	rng  *rand.Rand
	pods []*pod
	err  error // the first failure of a goroutine (the proxy's API)
}

// logf logs one event of the timeline, stamped with the time since the
// rollout began (the loss samples use the same clock).
func (r *runner) logf(format string, args ...any) {
	r.cfg.Logf("%7.3fs  "+format, append([]any{time.Since(r.start).Seconds()}, args...)...)
}

func (r *runner) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
}

func (r *runner) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Run plays a rolling update of cfg.Bin behind HAProxy under load and
// returns what was lost. It returns an error (and no result) only if the
// check itself could not run: no haproxy ([ErrNoHAProxy]), a pod that never
// became ready, a load that never got an answer. Everything it starts is
// stopped and waited for before it returns.
//
// The timeline: Replicas pods start and enter the proxy; the load starts;
// then, Replacements times: a new pod starts, its readiness probe passes,
// it enters the proxy after a drawn entry delay, and the oldest pod is
// terminated (the next new pod starts at once, as a Deployment with
// maxSurge 1 and maxUnavailable 0 does). Once the last terminated pod has
// exited and every client has succeeded since, the load stops and the
// remaining pods are killed (they are not counted).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var haproxy string
	if cfg.DataPlane == DataPlaneHAProxy || cfg.LoadBalancer {
		var err error
		if haproxy, err = FindHAProxy(cfg.HAProxy); err != nil {
			return nil, err
		}
	}
	if cfg.DataPlane == DataPlaneKube {
		if err := kube.CheckDataPlane(cfg.ProxyMode); err != nil {
			return nil, fmt.Errorf("data plane kube: %w", err)
		}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := &runner{cfg: cfg, dir: cfg.Dir, rng: rand.New(rand.NewPCG(seed, 0)), start: time.Now()}
	// HAProxy's socket lives in a short path of its own (a unix socket path
	// has at most 107 bytes).
	hdir, err := haproxyDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(hdir)
	if r.dir == "" {
		r.dir = hdir
	} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	switch cfg.DataPlane {
	case DataPlaneKube:
		r.plane, err = newKubePlane(ctx, r, haproxy, hdir)
	default:
		r.plane, err = newHAProxyPlane(ctx, r, haproxy, hdir, seed)
	}
	if err != nil {
		return nil, err
	}
	defer func() {
		if err := r.plane.close(); err != nil {
			r.logf("teardown: %v", err)
		}
	}()
	r.kubelet = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: r.plane.kubeletDial}}
	defer r.kubelet.CloseIdleConnections()

	defer func() { // the pods still running; then their waiters
		r.mu.Lock()
		pods := r.pods
		r.mu.Unlock()
		for _, p := range pods {
			_ = p.cmd.Process.Kill()
		}
		r.wg.Wait()
	}()
	res, err := r.rollout(ctx, seed)
	if err == nil {
		err = r.failure()
	}
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (r *runner) rollout(ctx context.Context, seed uint64) (*Result, error) {
	cfg := r.cfg
	plane := fmt.Sprintf("propagation %v, entry %v", cfg.Propagation, cfg.Entry)
	if cfg.DataPlane == DataPlaneKube {
		plane = "data plane " + r.plane.via()
		if cfg.LoadBalancer {
			plane += fmt.Sprintf(", a load balancer in front (entry %v, propagation %v)", cfg.Entry, cfg.Propagation)
		}
	}
	r.logf("rollout: %s, %d replicas, %d replacements, preStop %v, grace period %v, %s, seed %d",
		cfg.Bin, cfg.Replicas, cfg.Replacements, cfg.PreStop, cfg.GracePeriod, plane, seed)

	ctx, cancel := context.WithCancel(ctx)
	var (
		terms sync.WaitGroup
		l     loads
	)
	defer func() { // on an error: stop what runs
		cancel()
		terms.Wait()
		l.wait()
	}()

	serving := make([]*pod, 0, cfg.Replicas+1)
	for i := range cfg.Replicas {
		p, err := r.startPod(ctx, i)
		if err != nil {
			return nil, err
		}
		serving = append(serving, p)
	}
	for _, p := range serving {
		if err := r.waitReady(ctx, p); err != nil {
			return nil, err
		}
		if err := r.plane.enter(ctx, p, true); err != nil {
			return nil, err
		}
	}
	if err := r.plane.warm(ctx); err != nil {
		return nil, err
	}
	if err := r.checkRoutes(ctx, serving[0]); err != nil {
		return nil, err
	}

	l = newLoads(cfg.Load, r.plane.targets(), r.start)
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	l.run(loadCtx, seed)
	if stalled := l.waitProgress(ctx, time.Time{}, cfg.StartTimeout); len(stalled) > 0 {
		samples, _ := l.lossSamples()
		return nil, fmt.Errorf("rollout: no answer within %v for %v; first errors: %v", cfg.StartTimeout, stalled, samples)
	}
	r.logf("load running: %d keep-alive, %d new-conn, %d WebSocket, %d SSE, %d gRPC, %d gRPC new-channel clients",
		cfg.Load.KeepAlive, cfg.Load.NewConn, cfg.Load.WebSocket, cfg.Load.SSE, cfg.Load.GRPC, cfg.Load.GRPCNewConn)

	var terminated []*pod
	for i := range cfg.Replacements {
		if err := r.failure(); err != nil {
			return nil, err
		}
		p, err := r.startPod(ctx, cfg.Replicas+i)
		if err != nil {
			return nil, err
		}
		if err := r.waitReady(ctx, p); err != nil {
			return nil, err
		}
		if err := r.plane.enter(ctx, p, false); err != nil {
			return nil, err
		}
		old := serving[0]
		serving = append(serving[1:], p)
		old.Terminated = true
		terminated = append(terminated, old)
		terms.Go(func() { r.terminate(ctx, old) })
	}
	terms.Wait()

	var lastExit time.Time
	for _, p := range terminated {
		if p.Exited.After(lastExit) {
			lastExit = p.Exited
		}
	}
	stalled := l.waitProgress(ctx, lastExit, 10*time.Second)
	stopLoad()
	l.wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, p := range serving {
		if p.exited() {
			p.Crashed = true
			p.exitStatus()
		}
	}

	all := append(terminated, serving...)
	r.plane.report(all)
	res := &Result{
		Bin: cfg.Bin, Replicas: cfg.Replicas, Replacements: cfg.Replacements, PreStop: cfg.PreStop,
		GracePeriod: cfg.GracePeriod, Propagation: cfg.Propagation, Entry: cfg.Entry, Seed: seed,
		DataPlane: cfg.DataPlane, Via: r.plane.via(), LoadBalancer: cfg.LoadBalancer,
		Took: time.Since(r.start), Load: l.rows(), Stalled: stalled,
	}
	res.Samples, res.Losses = l.lossSamples()
	for _, p := range all {
		res.Pods = append(res.Pods, p.PodReport)
	}
	// The survivors' burst of session opens, from HAProxy's connection log
	// (the model data plane; kube-proxy keeps no such log).
	if hp, ok := r.plane.(*haproxyPlane); ok && cfg.Load.WebSocket+cfg.Load.SSE > 0 && len(terminated) > 0 {
		conns, err := hp.proxy.conns()
		if err != nil {
			return nil, fmt.Errorf("rollout: the proxy's connection log: %w", err)
		}
		atPod, atClient, unplaced := survivorOpens(l.sessionOpens(), conns, res.Pods, terminated[0].T0)
		n, at := peak(atPod, OpensWindow)
		res.SessionOpensPeak, res.SessionOpens, res.SessionOpensUnplaced = n, len(atPod), unplaced
		if n > 0 {
			res.SessionOpensPeakAt = at.Sub(r.start)
		}
		res.SessionOpensPeakClient, _ = peak(atClient, OpensWindow)
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
