package rollout

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/drainfx/drainfx/internal/kube"
)

// PodReport is what happened to one pod. Times are wall-clock; durations
// count from T0, the moment its termination began (the kubelet sent the
// preStop request, began the preStop sleep, or — without a preStop hook —
// sent SIGTERM). Kubernetes starts the endpoint removal at the same moment.
type PodReport struct {
	Name string
	Slot int
	// Host is where the kubelet reaches the pod: 127.0.0.1, or the pod's
	// IP (DataPlane kube). Port and AdminPort are its ports there.
	Host            string
	Port, AdminPort int

	Started time.Time
	Ready   time.Time // the first passing readiness probe
	// EntryDelay is the drawn delay from Ready to the moment the proxy began
	// sending it connections (Entered).
	EntryDelay time.Duration
	Entered    time.Time

	// Terminated is true for the pods the rollout replaced; the others were
	// still serving at the end and were killed without being counted.
	Terminated bool
	T0         time.Time
	// PropagationTarget is the drawn propagation delay; Propagation is the
	// measured one: from T0 to the moment HAProxy had put the pod's server
	// in maintenance (OutOfProxy: no new connection after it). With
	// DataPlane kube, Propagation is T0 → the last new connection the node
	// sent the pod (through the ClusterIP or the load balancer), and the
	// drawn delay is the load balancer's.
	PropagationTarget, Propagation time.Duration
	OutOfProxy                     time.Time
	PreStopTook                    time.Duration // how long the preStop hook ran
	PreStopErr                     string        // a failed preStop request (the kubelet goes on to SIGTERM)
	// PreStopTimedOut: the hook was still running at the grace period;
	// the kubelet stopped waiting and sent SIGTERM, with 2 s to SIGKILL.
	PreStopTimedOut bool
	SIGTERM         time.Time // zero if the pod exited before
	Exited          time.Time
	// ExitCode is the process's exit status, or 128+signal if a signal
	// ended it (as Kubernetes reports it: 137 = SIGKILL, 143 = SIGTERM).
	ExitCode int
	Signal   string // the signal that ended it, if any
	Killed   bool   // the kubelet sent SIGKILL at the grace period
	// Crashed is set if the pod exited while it was meant to be serving.
	Crashed bool
	Log     string // the path of its output

	// Kube is what the real components showed of the pod (DataPlane kube).
	Kube *KubeTimes
	// SessionsClosed, SessionCloseWindow and SessionClosePeak are what the
	// pod's log says of its stop phase: the WebSocket and SSE sessions it
	// ended, the window their ends were spread over and the most it ended
	// in any 100 ms (wsmod's "sessions closed" line, JSON as zap's
	// production logger writes it; the peak is 0 if the line lacks it).
	// SessionsLogged is false if the log has no such line.
	SessionsClosed     int
	SessionCloseWindow time.Duration
	SessionClosePeak   int
	SessionsLogged     bool
}

// StopTime is T0 → exit: how long the pod took to leave once its
// termination began.
func (p PodReport) StopTime() time.Duration { return p.Exited.Sub(p.T0) }

// SIGTERMToExit is SIGTERM → exit (0 if no SIGTERM was sent).
func (p PodReport) SIGTERMToExit() time.Duration {
	if p.SIGTERM.IsZero() {
		return 0
	}
	return p.Exited.Sub(p.SIGTERM)
}

// Failed says why the pod counts as a loss, or "".
func (p PodReport) Failed() string {
	switch {
	case p.Crashed:
		return fmt.Sprintf("exited while serving (%d)", p.ExitCode)
	case !p.Terminated:
		return ""
	case p.Killed:
		return "SIGKILLed at the grace period"
	case p.ExitCode != 0:
		return fmt.Sprintf("exit %d", p.ExitCode)
	}
	return ""
}

type pod struct {
	PodReport
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	// Written by the waiter before done is closed; PodReport gets them from
	// exitStatus, so that a copy of the report never races with the waiter.
	exitedAt time.Time
	state    *os.ProcessState
}

func (r *runner) startPod(ctx context.Context, slot int) (*pod, error) {
	p := &pod{
		PodReport: PodReport{Name: fmt.Sprintf("pod-%d", slot), Slot: slot},
		done:      make(chan struct{}),
	}
	argv, env, err := r.plane.prepare(ctx, p)
	if err != nil {
		return nil, err
	}
	p.Log = filepath.Join(r.dir, p.Name+".log")
	f, err := os.Create(p.Log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(append(os.Environ(), r.cfg.Env...), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// If drainfx dies without its cleanup, its pods die with it.
	p.cmd.SysProcAttr = kube.SysProcAttr()
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", r.cfg.Bin, err)
	}
	p.Started = time.Now()
	r.mu.Lock()
	r.pods = append(r.pods, p)
	r.mu.Unlock()
	r.wg.Go(func() {
		_ = p.cmd.Wait() // the exit status is in ProcessState
		p.exitedAt = time.Now()
		p.state = p.cmd.ProcessState
		f.Close()
		close(p.done)
	})
	r.logf("%s started (%s, port %d, admin %d)", p.Name, p.Host, p.Port, p.AdminPort)
	if err := r.plane.started(ctx, p); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pod) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitStatus fills Exited, ExitCode and Signal; call it after done is
// closed.
func (p *pod) exitStatus() {
	p.Exited = p.exitedAt
	ws, ok := p.state.Sys().(syscall.WaitStatus)
	switch {
	case ok && ws.Signaled():
		p.ExitCode, p.Signal = 128+int(ws.Signal()), ws.Signal().String()
	default:
		p.ExitCode = p.state.ExitCode()
	}
}

// readSessionsClosed reads wsmod's "sessions closed" line from the pod's
// log, if it has one: {"msg":"sessions closed","sessions":N,"window":S,
// "peakPer100ms":P}, S in seconds (zap's production encoder) or a Go
// duration string.
func (p *pod) readSessionsClosed() {
	f, err := os.Open(p.Log)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"sessions closed"`)) {
			continue
		}
		var e struct {
			Msg      string          `json:"msg"`
			Sessions int             `json:"sessions"`
			Window   json.RawMessage `json:"window"`
			Peak     int             `json:"peakPer100ms"`
		}
		if json.Unmarshal(line, &e) != nil || e.Msg != "sessions closed" {
			continue
		}
		var secs float64
		var str string
		switch {
		case json.Unmarshal(e.Window, &secs) == nil:
			p.SessionCloseWindow = time.Duration(secs * float64(time.Second))
		case json.Unmarshal(e.Window, &str) == nil:
			p.SessionCloseWindow, _ = time.ParseDuration(str)
		}
		p.SessionsClosed, p.SessionClosePeak, p.SessionsLogged = e.Sessions, e.Peak, true
	}
}

func (p *pod) tail() string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	s := string(b)
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

// waitReady probes the readiness path every ProbePeriod, the first probe at
// once, until it answers 200.
func (r *runner) waitReady(ctx context.Context, p *pod) error {
	url := r.podURL(p, r.cfg.ReadinessPath)
	deadline := time.NewTimer(r.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(r.cfg.ProbePeriod)
	defer tick.Stop()
	for {
		if r.probe(ctx, url) {
			p.Ready = time.Now()
			r.logf("%s ready (%.3fs after start)", p.Name, p.Ready.Sub(p.Started).Seconds())
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
			return fmt.Errorf("%s exited before its readiness probe passed (%v):\n%s", p.Name, p.state, p.tail())
		case <-deadline.C:
			return fmt.Errorf("%s: %s did not answer 200 within %v:\n%s", p.Name, url, r.cfg.StartTimeout, p.tail())
		case <-tick.C:
		}
	}
}

// podURL is the URL of path on the pod's admin port, as the kubelet
// reaches it.
func (r *runner) podURL(p *pod, path string) string {
	return "http://" + net.JoinHostPort(p.Host, strconv.Itoa(p.AdminPort)) + path
}

func (r *runner) probe(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, max(r.cfg.ProbePeriod, time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := r.kubelet.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// terminate plays the pod's deletion as the kubelet does
// (kuberuntime_container.go, killContainer): at T0 the endpoint removal
// starts (HAProxy: the pod leaves the proxy after a drawn propagation
// delay; kube: the Pod was DELETEd just before, and the real components
// follow) and, at the same time, the kubelet runs the preStop hook for at
// most the grace period G — an httpGet hook's request is not cancelled
// when the kubelet stops waiting for it — then sends SIGTERM, and sends
// SIGKILL max(G − the hook's time, 2 s) after it. It returns once the pod
// has exited and its endpoint has been removed.
func (r *runner) terminate(ctx context.Context, p *pod) {
	p.Crashed = p.exited()
	if err := r.plane.deleting(ctx, p); err != nil {
		r.fail(err)
	}
	p.T0 = time.Now()
	note, removed := r.plane.removing(ctx, p)
	var hook sync.WaitGroup
	var hookErr string // written by the hook's goroutine, read after hook.Wait

	grace := r.cfg.GracePeriod
	if note != "" {
		note = ", " + note
	}
	r.logf("%s terminating: preStop %v, grace %v%s", p.Name, r.cfg.PreStop, grace, note)
	hookTimeout := time.NewTimer(grace)
	defer hookTimeout.Stop()
	switch r.cfg.PreStop.Kind {
	case PreStopHTTP:
		answered := make(chan struct{})
		hook.Go(func() {
			defer close(answered)
			hookErr = r.preStopHTTP(ctx, p)
		})
		select {
		case <-answered:
		case <-hookTimeout.C:
			p.PreStopTimedOut = true
			r.logf("%s preStop still running at the grace period (%v): the kubelet gives up on it", p.Name, grace)
		case <-ctx.Done():
		}
	case PreStopSleep:
		t := time.NewTimer(min(r.cfg.PreStop.Sleep, grace))
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-p.done:
		}
		t.Stop()
	}
	p.PreStopTook = time.Since(p.T0)
	rest := max(grace-p.PreStopTook, kubeletMinGrace)
	if !p.exited() {
		p.SIGTERM = time.Now()
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	kill := time.NewTimer(rest)
	defer kill.Stop()
	select {
	case <-p.done:
	case <-kill.C:
		p.Killed = !p.exited()
		_ = p.cmd.Process.Kill()
		<-p.done
	case <-ctx.Done():
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.exitStatus()
	p.readSessionsClosed()
	// A hook request the kubelet stopped waiting for ends with the pod.
	hook.Wait()
	if !p.PreStopTimedOut && hookErr != "" {
		// (A request the kubelet stopped waiting for ends with the pod's
		// exit: not the hook's failure.)
		p.PreStopErr = hookErr
		r.logf("%s preStop failed: %s", p.Name, hookErr)
	}
	r.plane.exited(ctx, p)
	// The endpoint's removal writes the report: wait for it before the
	// report is read (the log below copies the whole PodReport).
	removed()
	r.logf("%s exited %d%s: T0→exit %.3fs, SIGTERM→exit %.3fs%s", p.Name, p.ExitCode, sigNote(p.Signal),
		p.StopTime().Seconds(), p.SIGTERMToExit().Seconds(), map[bool]string{true: " (SIGKILL at the grace period)"}[p.Killed])
}

// kubeletMinGrace is the least the kubelet leaves between SIGTERM and
// SIGKILL (minimumGracePeriodInSeconds).
const kubeletMinGrace = 2 * time.Second

func sigNote(sig string) string {
	if sig == "" {
		return ""
	}
	return " (" + sig + ")"
}

// preStopHTTP calls the preStop path and waits for the answer. Like the
// kubelet's, the request is not cancelled when the kubelet stops waiting
// for it: it ends with the answer, the pod's exit, or the rollout's end.
func (r *runner) preStopHTTP(ctx context.Context, p *pod) string {
	url := r.podURL(p, r.cfg.PreStopPath)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err.Error()
	}
	if r.cfg.PreStopToken != "" {
		req.Header.Set("X-Prestop-Token", r.cfg.PreStopToken)
	}
	resp, err := r.kubelet.Do(req)
	if err != nil {
		return err.Error()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "answered " + resp.Status
	}
	return ""
}

func (r *runner) draw(rg Range) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return rg.draw(r.rng)
}

// pickPorts returns n distinct free TCP ports, below the ephemeral range
// where it can: the load opens thousands of client connections, whose
// source ports would otherwise take a pod's port before the pod binds it.
func pickPorts(n int, rng *rand.Rand) ([]int, error) {
	lo, hi := 10000, ephemeralLow()
	if hi-lo < 1000 {
		lo, hi = 0, 0
	}
	seen := make(map[int]bool)
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n {
			return nil, errors.New("rollout: no free ports")
		}
		port := 0
		if hi > lo {
			port = lo + rng.IntN(hi-lo)
		}
		l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		got := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !seen[got] {
			seen[got] = true
			ports = append(ports, got)
		}
	}
	return ports, nil
}

func ephemeralLow() int {
	f, err := os.Open("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Split(bufio.ScanWords)
	if s.Scan() {
		if n, err := strconv.Atoi(strings.TrimSpace(s.Text())); err == nil {
			return n
		}
	}
	return 32768
}
