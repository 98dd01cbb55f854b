package kubemod

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/lifecycle"
)

// Source is the [lifecycle.GraceShortened.Source] of a deadline this module
// read: it names the field the deadline came from.
const Source = "pod deletionTimestamp"

// StopParticipant is the name of the stop participant that ends the read if
// it is still under way when the stop phase begins.
const StopParticipant = "kube deadline"

// maxBody caps the pod object read (a pod is a few kB; its managed fields
// can make it tens).
const maxBody = 4 << 20

// errStopPhase is why a read still under way is cancelled.
var errStopPhase = errors.New("the stop phase began before the API server answered")

// Watcher reads the pod's deletion from the Kubernetes API at D0 and moves
// the coordinator's deadlines to the real one ([lifecycle.Coordinator.ShortenGrace]).
// Build it with [New] (or [Module]); it has no methods to call in between.
type Watcher struct {
	cfg  Config
	c    *lifecycle.Coordinator
	log  *zap.Logger
	done chan struct{} // closed when the read at D0 has ended

	mu     sync.Mutex
	cancel context.CancelCauseFunc // the read's, set when it begins
}

// New returns a watcher for the pod cfg names, on c: at D0 it reads the
// pod in its own goroutine, bounded by [Config.Timeout], and calls
// [lifecycle.Coordinator.ShortenGrace] with the deletion's deadline. The
// goroutine is owned by the stop participant [StopParticipant]
// ([lifecycle.Coordinator.AtStop]), which cancels it if it is still under
// way and waits for it. Without a pod name the watcher is off: New logs
// so once (INFO) and registers nothing. Without a namespace, New reads the
// service account's namespace file; without an API URL, it takes the
// in-cluster one from the environment. What is still missing then is said
// by the one WARN of the read at D0. log may be nil.
//
// The error, for a [Config] that does not validate, matches [ErrConfig].
func New(cfg Config, c *lifecycle.Coordinator, log *zap.Logger) (*Watcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Watcher{cfg: cfg.WithDefaults(), c: c, log: log, done: make(chan struct{})}
	if w.cfg.PodName == "" {
		log.Info("pod deadline from the API: off (no pod name: set " + EnvPodName + " from the downward API to turn it on)")
		close(w.done)
		return w, nil
	}
	if w.cfg.Namespace == "" {
		if b, err := os.ReadFile(DefaultNamespaceFile); err == nil {
			w.cfg.Namespace = strings.TrimSpace(string(b))
		}
	}
	if w.cfg.APIURL == "" {
		w.cfg.APIURL = inClusterURL(os.LookupEnv)
	}
	log.Info("pod deadline from the API: on", zap.String("pod", w.pod()), zap.String("api", w.cfg.APIURL),
		zap.Duration("timeout", w.cfg.Timeout))
	c.OnState(lifecycle.StateDraining, w.begin)
	c.AtStop(StopParticipant, w.stop)
	return w, nil
}

// Done returns a channel closed once the read at D0 has ended — answered,
// failed or cancelled — or at once if the watcher is off.
func (w *Watcher) Done() <-chan struct{} { return w.done }

func (w *Watcher) pod() string { return w.cfg.Namespace + "/" + w.cfg.PodName }

// begin runs in the transition to StateDraining (it must be quick): it
// starts the read.
func (w *Watcher) begin() {
	select {
	case <-w.c.Reached(lifecycle.StateServing):
	default:
		// Never served: the drain ends at once, and the stop phase would
		// cancel the read as soon as it began.
		w.log.Debug("pod deadline not read: the service never served")
		close(w.done)
		return
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	w.mu.Lock()
	w.cancel = cancel
	w.mu.Unlock()
	go w.run(ctx, cancel)
}

// stop is the stop participant: it cancels the read if it is still under
// way, and waits for its goroutine.
func (w *Watcher) stop(ctx context.Context) error {
	w.mu.Lock()
	cancel := w.cancel
	w.mu.Unlock()
	if cancel == nil {
		return nil // the read never began
	}
	cancel(errStopPhase)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run reads the pod and moves the deadlines. It logs one line: what was
// read (INFO), or why nothing was (WARN).
func (w *Watcher) run(parent context.Context, cancelParent context.CancelCauseFunc) {
	defer close(w.done)
	defer cancelParent(nil)
	d0 := w.c.Telemetry().Report().D0
	ctx, cancel := context.WithTimeoutCause(parent, w.cfg.Timeout,
		fmt.Errorf("no answer within %v (Timeout)", w.cfg.Timeout))
	defer cancel()
	start := time.Now()
	r, err := w.read(ctx)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		w.log.Warn("pod deadline not read: the budget's grace period stands",
			zap.String("pod", w.pod()), zap.Duration("took", time.Since(start)), zap.Error(err))
		return
	}
	if r.deletion == nil {
		w.log.Info("pod deadline read: the pod is not being deleted, the budget's grace period stands",
			zap.String("pod", w.pod()), zap.Duration("took", time.Since(start)))
		return
	}
	kill, skew := r.kill(d0)
	moved := w.c.ShortenGrace(kill, Source)
	fields := []zap.Field{zap.String("pod", w.pod()), zap.Time("deletionTimestamp", *r.deletion),
		zap.Duration("realGrace", kill.Sub(d0)), zap.Bool("moved", moved), zap.Duration("took", time.Since(start))}
	if r.grace != nil {
		fields = append(fields, zap.Int64("deletionGracePeriodSeconds", *r.grace))
	}
	if skew != 0 {
		fields = append(fields, zap.Duration("apiClockAhead", skew))
	}
	w.log.Info("pod deadline read", fields...)
}

// reading is what the API said, and when on this node's clock.
type reading struct {
	deletion   *time.Time // metadata.deletionTimestamp: the API server's clock, whole seconds
	grace      *int64     // metadata.deletionGracePeriodSeconds
	date       time.Time  // the response's Date header (the API server's clock, whole seconds); zero if none
	sent, recv time.Time  // the request, on the coordinator's clock
}

// kill returns when the kubelet sends SIGKILL, on this node's clock, as
// early as what was read allows (the safe side), and how far the API
// server's clock was found ahead of this node's (negative: behind).
//
//   - deletionTimestamp is the deletion's time plus the grace period, on
//     the API server's clock, truncated to the second: at or before the
//     real SIGKILL, as the kubelet starts counting the grace period only
//     when it begins the termination, after the deletion.
//   - The API server's clock may differ from this node's. The response's
//     Date header tells by how much, give or take its one-second
//     precision: a difference beyond that is taken into account (a clock
//     found behind moves the deadline later by what it is surely behind,
//     one found ahead earlier).
//   - The kubelet counts deletionGracePeriodSeconds from the moment it
//     begins the termination, at or just before D0 for a pod without a
//     preStop hook or with a /prestop call: the deadline is never later
//     than D0 + deletionGracePeriodSeconds, whatever the clocks say.
func (r reading) kill(d0 time.Time) (time.Time, time.Duration) {
	var skew time.Duration
	if !r.date.IsZero() {
		// The server wrote Date between sent and recv, truncated:
		// date <= its clock at recv, date + 1s > its clock at sent.
		if ahead := r.date.Sub(r.recv); ahead > 0 {
			skew = ahead
		} else if behind := r.sent.Sub(r.date.Add(time.Second)); behind > 0 {
			skew = -behind
		}
	}
	kill := r.deletion.Add(-skew)
	if r.grace != nil {
		if k := d0.Add(time.Duration(*r.grace) * time.Second); k.Before(kill) {
			kill = k
		}
	}
	return kill, skew
}

// podObject is the part of a Pod the module reads.
type podObject struct {
	Metadata struct {
		DeletionTimestamp          *time.Time `json:"deletionTimestamp"`
		DeletionGracePeriodSeconds *int64     `json:"deletionGracePeriodSeconds"`
	} `json:"metadata"`
}

// read GETs the pod: /api/v1/namespaces/NS/pods/NAME, with the service
// account's token and CA as they are now.
func (w *Watcher) read(ctx context.Context) (reading, error) {
	switch {
	case w.cfg.Namespace == "":
		return reading{}, fmt.Errorf("no namespace: set %s from the downward API (metadata.namespace), or mount the service account (%s)",
			EnvPodNamespace, DefaultNamespaceFile)
	case w.cfg.APIURL == "":
		return reading{}, fmt.Errorf("no API server: %s and %s are unset (not in a cluster?) and Config.APIURL is empty",
			EnvServiceHost, EnvServicePort)
	}
	token, err := os.ReadFile(w.cfg.TokenFile)
	if err != nil {
		return reading{}, fmt.Errorf("service account token: %w", err)
	}
	token = bytes.TrimSpace(token)
	if len(token) == 0 {
		return reading{}, fmt.Errorf("service account token: %s is empty", w.cfg.TokenFile)
	}
	ca, err := os.ReadFile(w.cfg.CAFile)
	if err != nil {
		return reading{}, fmt.Errorf("API server CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return reading{}, fmt.Errorf("API server CA: no PEM certificate in %s", w.cfg.CAFile)
	}
	u := strings.TrimSuffix(w.cfg.APIURL, "/") + "/api/v1/namespaces/" + url.PathEscape(w.cfg.Namespace) +
		"/pods/" + url.PathEscape(w.cfg.PodName)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return reading{}, err
	}
	req.Header.Set("Authorization", "Bearer "+string(token))
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "drainfx-kubemod")
	// One request per process: a transport of its own, with no connection
	// kept, so that nothing outlives the read.
	tr := &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		TLSClientConfig:   &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	clk := w.c.Clock()
	r := reading{sent: clk.Now()}
	resp, err := client.Do(req)
	if err != nil {
		return reading{}, err
	}
	defer resp.Body.Close()
	r.recv = clk.Now()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return reading{}, fmt.Errorf("GET %s: %s: reading the body: %w", u, resp.Status, err)
	}
	if resp.StatusCode != http.StatusOK {
		return reading{}, statusError(u, resp.Status, resp.StatusCode, body)
	}
	var pod podObject
	if err := json.Unmarshal(body, &pod); err != nil {
		return reading{}, fmt.Errorf("GET %s: decoding the pod: %w", u, err)
	}
	r.deletion, r.grace = pod.Metadata.DeletionTimestamp, pod.Metadata.DeletionGracePeriodSeconds
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		r.date = d
	}
	return r, nil
}

// statusError says why the API server refused, in its own words (a Status
// object's message) and what to do about it.
func statusError(u, status string, code int, body []byte) error {
	var st struct {
		Message string `json:"message"`
	}
	msg := ""
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		msg = ": " + truncate(st.Message, 300)
	}
	hint := ""
	switch code {
	case http.StatusUnauthorized:
		hint = " (the token was refused)"
	case http.StatusForbidden:
		hint = " (the service account may not get pods: bind it to a Role that allows get on pods)"
	case http.StatusNotFound:
		hint = " (no such pod: " + EnvPodName + " and " + EnvPodNamespace + " must be the downward API's metadata.name and metadata.namespace)"
	}
	return fmt.Errorf("GET %s: %s%s%s", u, status, msg, hint)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
