package rollout

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// plane is the cluster a rollout plays against: where the pods run, how
// the kubelet reaches them, how their endpoints come and go.
type plane interface {
	// via names what carries the load, for the table: "HAProxy",
	// "kube-proxy (nftables)".
	via() string
	// targets are the entry points of the load.
	targets() []target
	// prepare gives pod p (Name and Slot set) its place: it sets Host,
	// Port and AdminPort, and returns the command that runs the service's
	// binary there and the environment that carries the ports.
	prepare(ctx context.Context, p *pod) (argv, env []string, err error)
	// started follows the start of p's process.
	started(ctx context.Context, p *pod) error
	// kubeletDial is how the kubelet reaches the pods.
	kubeletDial(ctx context.Context, network, addr string) (net.Conn, error)
	// enter follows p's first passing readiness probe and returns once the
	// rollout may go on (with first: one of the pods that serve before the
	// load starts).
	enter(ctx context.Context, p *pod, first bool) error
	// warm returns once the first pods receive what is sent to the
	// targets.
	warm(ctx context.Context) error
	// deleting begins p's termination, before T0.
	deleting(ctx context.Context, p *pod) error
	// removing begins the removal of p's endpoint at T0 and says when it
	// is due (for the log); wait returns once it is done.
	removing(ctx context.Context, p *pod) (note string, wait func())
	// exited follows p's exit.
	exited(ctx context.Context, p *pod)
	// report adds what the plane saw to the reports, once the load has
	// stopped.
	report(pods []*pod)
	// close stops what the plane started.
	close() error
}

// haproxyPlane is the model: HAProxy plays kube-proxy, the pods are
// processes on loopback ports, and the endpoint propagation is a drawn
// delay.
type haproxyPlane struct {
	r                 *runner
	proxy             *proxy
	ports, adminPorts []int // per slot
}

func newHAProxyPlane(ctx context.Context, r *runner, haproxy, dir string, seed uint64) (*haproxyPlane, error) {
	slots := r.cfg.Replicas + r.cfg.Replacements
	ports, err := pickPorts(1+2*slots, rand.New(rand.NewPCG(seed, 1)))
	if err != nil {
		return nil, err
	}
	h := &haproxyPlane{r: r, ports: ports[1 : 1+slots], adminPorts: ports[1+slots:]}
	backends := make([]string, slots)
	for i, port := range h.ports {
		backends[i] = "127.0.0.1:" + strconv.Itoa(port)
	}
	if h.proxy, err = startProxy(ctx, proxyOptions{path: haproxy, dir: dir, frontend: "127.0.0.1:" + strconv.Itoa(ports[0]), backends: backends}); err != nil {
		return nil, err
	}
	return h, nil
}

func (h *haproxyPlane) via() string       { return "HAProxy" }
func (h *haproxyPlane) targets() []target { return []target{{addr: h.proxy.addr}} }

func (h *haproxyPlane) prepare(_ context.Context, p *pod) ([]string, []string, error) {
	cfg := h.r.cfg
	p.Host, p.Port, p.AdminPort = "127.0.0.1", h.ports[p.Slot], h.adminPorts[p.Slot]
	return append([]string{cfg.Bin}, cfg.Args...),
		[]string{cfg.PortEnv + "=" + strconv.Itoa(p.Port), cfg.AdminPortEnv + "=" + strconv.Itoa(p.AdminPort)}, nil
}

func (h *haproxyPlane) started(context.Context, *pod) error { return nil }

func (h *haproxyPlane) kubeletDial(ctx context.Context, network, addr string) (net.Conn, error) {
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

// enter puts the pod's server in the proxy, after a drawn entry delay for
// a replacement.
func (h *haproxyPlane) enter(ctx context.Context, p *pod, first bool) error {
	if !first {
		p.EntryDelay = h.r.draw(h.r.cfg.Entry)
		if err := sleep(ctx, p.EntryDelay); err != nil {
			return err
		}
	}
	if err := h.proxy.setState(p.Slot, "ready"); err != nil {
		return err
	}
	p.Entered = time.Now()
	h.r.logf("%s in the proxy (%.3fs after ready)", p.Name, p.Entered.Sub(p.Ready).Seconds())
	return nil
}

func (h *haproxyPlane) warm(context.Context) error           { return nil }
func (h *haproxyPlane) deleting(context.Context, *pod) error { return nil }
func (h *haproxyPlane) exited(context.Context, *pod)         {}
func (h *haproxyPlane) report([]*pod)                        {}
func (h *haproxyPlane) close() error                         { h.proxy.stop(); return nil }
func (h *haproxyPlane) removing(ctx context.Context, p *pod) (string, func()) {
	p.PropagationTarget = h.r.draw(h.r.cfg.Propagation)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := leaveAfter(ctx, h.proxy, p, p.T0.Add(p.PropagationTarget)); err != nil {
			h.r.fail(err)
			return
		}
		p.Propagation = p.OutOfProxy.Sub(p.T0)
		h.r.logf("%s out of the proxy: propagation %.3fs after T0", p.Name, p.Propagation.Seconds())
	})
	return fmt.Sprintf("leaves the proxy in %.3fs", p.PropagationTarget.Seconds()), wg.Wait
}

// leaveAfter puts the pod's server in maintenance at the time at (no new
// connection after it; the established ones stay) and sets OutOfProxy. It
// returns nil without doing it if ctx ends first.
func leaveAfter(ctx context.Context, px *proxy, p *pod, at time.Time) error {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return nil
	}
	if err := px.setState(p.Slot, "maint"); err != nil {
		return err
	}
	p.OutOfProxy = time.Now()
	return nil
}

// haproxyDir makes the short directory HAProxy's admin socket lives in (a
// unix socket path has at most 107 bytes).
func haproxyDir() (string, error) { return os.MkdirTemp("", "rollout") }
