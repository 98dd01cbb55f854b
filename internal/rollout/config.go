package rollout

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/drainfx/drainfx/internal/kube"
)

// PreStop is the kubelet's preStop hook.
type PreStop struct {
	// Kind is "http" (GET to the admin port), "sleep" or "none".
	Kind string
	// Sleep is how long a "sleep" hook lasts.
	Sleep time.Duration
}

// The preStop kinds.
const (
	PreStopHTTP  = "http"
	PreStopSleep = "sleep"
	PreStopNone  = "none"
)

func (p PreStop) String() string {
	if p.Kind == PreStopSleep {
		return "sleep " + p.Sleep.String()
	}
	if p.Kind == "" {
		return PreStopNone
	}
	return p.Kind
}

// ParsePreStop parses "http", "none" or "sleep=3s" (also "sleep 3s").
func ParsePreStop(s string) (PreStop, error) {
	switch s {
	case PreStopHTTP, PreStopNone:
		return PreStop{Kind: s}, nil
	}
	if rest, ok := strings.CutPrefix(s, PreStopSleep); ok {
		d, err := time.ParseDuration(strings.TrimLeft(rest, "= "))
		if err == nil && d >= 0 {
			return PreStop{Kind: PreStopSleep, Sleep: d}, nil
		}
	}
	return PreStop{}, fmt.Errorf("preStop %q: want http, none or sleep=DURATION", s)
}

// Range is a closed interval of durations; a random delay is drawn from it
// uniformly.
type Range struct{ Min, Max time.Duration }

// ParseRange parses "0.5s-2.5s" (or a single duration, "3s").
func ParseRange(s string) (Range, error) {
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		hi = lo
	}
	a, err1 := time.ParseDuration(strings.TrimSpace(lo))
	b, err2 := time.ParseDuration(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 0 || b < a {
		return Range{}, fmt.Errorf("range %q: want MIN-MAX, two durations with 0 ≤ MIN ≤ MAX (like 0.5s-2.5s)", s)
	}
	return Range{a, b}, nil
}

func (r Range) String() string {
	if r.Min == r.Max {
		return r.Min.String()
	}
	return r.Min.String() + "–" + r.Max.String()
}

func (r Range) draw(rng *rand.Rand) time.Duration {
	if r.Max <= r.Min {
		return r.Min
	}
	return r.Min + time.Duration(rng.Int64N(int64(r.Max-r.Min)+1))
}

// Request is one request the HTTP clients of the load send.
type Request struct {
	// Method is the HTTP method. Default GET.
	Method string
	// Path is the path and query on the public port. A "{ms}" in it is
	// replaced, per request, by a number of milliseconds drawn from
	// [Load.Slow] (the example's GET /slow?ms={ms}).
	Path string
	// Header is sent with the request, after [Load.Header].
	Header http.Header
	// Body is sent as is (nil: none); it is never replayed.
	Body []byte
	// RandomBody sends a different body of random letters each time,
	// instead of Body.
	RandomBody bool
	// Want, if not nil, is the body the answer must carry; Echo wants the
	// body sent back. Otherwise any 2xx answer is right.
	Want []byte
	Echo bool
}

// Name is the request as the load table shows it: method and path without
// the query.
func (r Request) Name() string {
	p, _, _ := strings.Cut(r.Path, "?")
	return r.Method + " " + p
}

// ExampleRequests is the route contract of examples/service: GET / answers
// "ok", POST /echo sends the body back, GET /slow?ms=N answers "ok" after N
// ms.
func ExampleRequests() []Request {
	return []Request{
		{Method: http.MethodGet, Path: "/", Want: []byte("ok")},
		{Method: http.MethodPost, Path: "/echo", RandomBody: true, Echo: true},
		{Method: http.MethodGet, Path: "/slow?ms={ms}", Want: []byte("ok")},
	}
}

// ParseRequest parses "METHOD PATH [@BODYFILE]": the body is read from
// BODYFILE now, and any 2xx answer is right.
func ParseRequest(s string) (Request, error) {
	f := strings.Fields(s)
	if len(f) < 2 || len(f) > 3 || !strings.HasPrefix(f[1], "/") || (len(f) == 3 && !strings.HasPrefix(f[2], "@")) {
		return Request{}, fmt.Errorf("request %q: want METHOD PATH [@BODYFILE] (like 'POST /orders @order.json')", s)
	}
	r := Request{Method: strings.ToUpper(f[0]), Path: f[1]}
	if len(f) == 3 {
		b, err := os.ReadFile(f[2][1:])
		if err != nil {
			return Request{}, fmt.Errorf("request %q: %w", s, err)
		}
		r.Body = b
	}
	return r, nil
}

// Load is the traffic sent through the proxy during the rollout. Every
// client reconnects after every close, as long as the rollout lasts. With
// no client count set, 4 clients of each kind; once one count is set, the
// others are as given (0: none of that kind).
type Load struct {
	// KeepAlive is the number of keep-alive HTTP clients; each cycles
	// through Requests.
	KeepAlive int
	// NewConn is the number of clients that open a new connection per
	// request and never retry; each cycles through NewConnRequests.
	NewConn int
	// WebSocket is the number of WebSocket echo clients of WSPath.
	WebSocket int
	// SSE is the number of SSE readers of SSEPath.
	SSE int
	// GRPC is the number of gRPC clients of the service
	// drainfx.example.v1.Echo (examples/grpc/echopb) on the public port,
	// each on a long-lived channel: half call Echo once per Interval (the
	// odd one too), half read Ticks streams, opening the next as soon as
	// one ends.
	GRPC int
	// GRPCNewConn is the number of gRPC clients that open a new channel per
	// Echo call, once per Interval, and close it after the call.
	GRPCNewConn int
	// Requests are the requests of the keep-alive clients. Default
	// [ExampleRequests].
	Requests []Request
	// NewConnRequests are the requests of the new-connection clients.
	// Default: Requests (with the default Requests, GET / and POST /echo).
	NewConnRequests []Request
	// Header is sent with every request (a Content-Type, a token).
	Header http.Header
	// WSPath is the WebSocket echo route: every message must come back.
	// Default /ws.
	WSPath string
	// SSEPath is the event stream route. Default /events.
	SSEPath string
	// Interval paces each HTTP client (one request per Interval, at most),
	// each WebSocket client (one message per Interval) and each gRPC Echo
	// client (one call per Interval). Default 20ms.
	Interval time.Duration
	// Slow is the range of the milliseconds that replace "{ms}" in a
	// request's path. Default 50ms–250ms.
	Slow Range
	// FinalEvent is the SSE event type that ends a stream cleanly when it
	// is the last event before the body ends. Default "shutdown" (wsmod's
	// default final event).
	FinalEvent string
	// SSEIgnoreRetry makes the SSE readers reconnect at once after a stream
	// ends. By default they wait the reconnection time the stream set with
	// "retry:" (wsmod's final event says 1s), as an EventSource does.
	SSEIgnoreRetry bool
}

// The data planes a rollout plays against ([Config.DataPlane]).
const (
	// DataPlaneHAProxy is the model: HAProxy plays kube-proxy and the
	// endpoint propagation is a drawn delay. No root needed.
	DataPlaneHAProxy = "haproxy"
	// DataPlaneKube is the real thing on this machine: kube-apiserver, the
	// EndpointSlice controller and kube-proxy, the pods in network
	// namespaces (internal/kube). Needs root and the binaries that
	// internal/ci/kube.sh builds.
	DataPlaneKube = "kube"
)

// Config is one rollout check.
type Config struct {
	// Bin is the service binary; it must answer the requests of Load on
	// $PORT and its readiness probe and /prestop on $ADMIN_PORT. Run the
	// server itself, not a wrapper that does not pass on signals.
	Bin string
	// Args are passed to Bin.
	Args []string
	// Env is added to the environment of every pod ("K=V"), after the
	// check's own environment and before PORT and ADMIN_PORT.
	Env []string
	// PortEnv and AdminPortEnv name the variables that carry the ports.
	// Defaults PORT and ADMIN_PORT.
	PortEnv, AdminPortEnv string
	// ReadinessPath and PreStopPath are on the admin port. Defaults
	// /readyz and /prestop.
	ReadinessPath, PreStopPath string
	// PreStopToken, if set, is sent in header X-Prestop-Token.
	PreStopToken string

	// Replicas is the number of pods serving (default 2); Replacements the
	// number of pods replaced one after the other, as a rolling update with
	// maxSurge 1 and maxUnavailable 0 does (default 5).
	Replicas, Replacements int
	// PreStop is the hook run at termination (default none).
	PreStop PreStop
	// GracePeriod is terminationGracePeriodSeconds: SIGKILL this long after
	// termination began (default 30s).
	GracePeriod time.Duration
	// Propagation is the delay from the start of a pod's termination to the
	// moment the proxy stops sending it new connections. Default 0.5s–2.5s.
	Propagation Range
	// Entry is the delay from a new pod's first passing readiness probe to
	// the moment the proxy starts sending it connections. Default:
	// Propagation.
	Entry Range
	// ProbePeriod is the readiness probe's period (default 1s).
	ProbePeriod time.Duration
	// StartTimeout bounds a pod's start-up (first passing probe) and the
	// load's warm-up. Default 30s.
	StartTimeout time.Duration
	// Load is the traffic.
	Load Load
	// Seed seeds the random delays; 0 picks one (it is logged).
	Seed uint64
	// Dir holds HAProxy's configuration and admin socket, and the pods' logs
	// (pod-N.log); with DataPlaneKube also, in kube/, the API server's data
	// and the logs of the Kubernetes components and of the node's conntrack
	// events. Default: a temporary directory, removed afterwards.
	Dir string
	// Logf receives the timeline (pods started, ready, entered, terminated,
	// propagated, exited). Default: discarded.
	Logf func(format string, args ...any)
	// HAProxy is the haproxy binary (default: "haproxy" in PATH).
	HAProxy string

	// DataPlane is DataPlaneHAProxy (default) or DataPlaneKube. With
	// DataPlaneKube the service's binary runs in a pod network namespace
	// per pod, on PortEnv 8080 and AdminPortEnv 9090 of the pod's IP, behind
	// a Service (port 80) whose ClusterIP the clients dial; Propagation and
	// Entry are real, and used only by the LoadBalancer.
	DataPlane string
	// ProxyMode is kube-proxy's mode with DataPlaneKube: nftables
	// (default) or iptables.
	ProxyMode string
	// LoadBalancer, with DataPlaneKube, adds a load balancer that sends to
	// the pods' IPs directly, as a cloud load balancer in IP mode or an
	// ingress controller does: HAProxy, following the EndpointSlices — a
	// pod enters Entry after its endpoint is ready (the rollout waits for
	// it, as a readiness gate makes a Deployment wait) and leaves
	// Propagation after it is terminating. The clients of each kind are
	// shared out between it and the ClusterIP.
	LoadBalancer bool
}

func (c Config) withDefaults() Config {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&c.PortEnv, "PORT")
	def(&c.AdminPortEnv, "ADMIN_PORT")
	def(&c.ReadinessPath, "/readyz")
	def(&c.PreStopPath, "/prestop")
	def(&c.PreStop.Kind, PreStopNone)
	def(&c.HAProxy, "haproxy")
	def(&c.DataPlane, DataPlaneHAProxy)
	if c.DataPlane == DataPlaneKube {
		def(&c.ProxyMode, kube.ProxyNFTables)
	}
	def(&c.Load.FinalEvent, "shutdown")
	def(&c.Load.WSPath, "/ws")
	def(&c.Load.SSEPath, "/events")
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.Replacements == 0 {
		c.Replacements = 5
	}
	if c.GracePeriod == 0 {
		c.GracePeriod = 30 * time.Second
	}
	if c.Propagation == (Range{}) {
		c.Propagation = Range{500 * time.Millisecond, 2500 * time.Millisecond}
	}
	if c.Entry == (Range{}) {
		c.Entry = c.Propagation
	}
	if c.ProbePeriod == 0 {
		c.ProbePeriod = time.Second
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = 30 * time.Second
	}
	l := &c.Load
	if l.KeepAlive == 0 && l.NewConn == 0 && l.WebSocket == 0 && l.SSE == 0 && l.GRPC == 0 && l.GRPCNewConn == 0 {
		// No client counts given: the default mix. Any count given makes
		// the others as given (0: none of that kind).
		l.KeepAlive, l.NewConn, l.WebSocket, l.SSE = 4, 4, 4, 4
	}
	if l.Requests == nil {
		l.Requests = ExampleRequests()
		if l.NewConnRequests == nil {
			l.NewConnRequests = l.Requests[:2]
		}
	}
	if l.NewConnRequests == nil {
		l.NewConnRequests = l.Requests
	}
	for _, rs := range [][]Request{l.Requests, l.NewConnRequests} {
		for i := range rs {
			if rs[i].Method == "" {
				rs[i].Method = http.MethodGet
			}
		}
	}
	if l.Interval == 0 {
		l.Interval = 20 * time.Millisecond
	}
	if l.Slow == (Range{}) {
		l.Slow = Range{50 * time.Millisecond, 250 * time.Millisecond}
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	return c
}

func (c Config) validate() error {
	var bad []string
	if c.Bin == "" {
		bad = append(bad, "Bin is empty")
	}
	if c.Replicas < 1 || c.Replacements < 1 {
		bad = append(bad, fmt.Sprintf("Replicas=%d Replacements=%d: want at least 1 each", c.Replicas, c.Replacements))
	}
	switch c.PreStop.Kind {
	case PreStopHTTP, PreStopNone, PreStopSleep:
	default:
		bad = append(bad, fmt.Sprintf("PreStop.Kind=%q: want http, sleep or none", c.PreStop.Kind))
	}
	for _, r := range []struct {
		name string
		r    Range
	}{{"Propagation", c.Propagation}, {"Entry", c.Entry}, {"Load.Slow", c.Load.Slow}} {
		if r.r.Min < 0 || r.r.Max < r.r.Min {
			bad = append(bad, fmt.Sprintf("%s=%v: want 0 ≤ Min ≤ Max", r.name, r.r))
		}
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"KeepAlive", c.Load.KeepAlive}, {"NewConn", c.Load.NewConn}, {"WebSocket", c.Load.WebSocket}, {"SSE", c.Load.SSE},
		{"GRPC", c.Load.GRPC}, {"GRPCNewConn", c.Load.GRPCNewConn}} {
		if n.v < 0 {
			bad = append(bad, fmt.Sprintf("Load.%s=%d is negative", n.name, n.v))
		}
	}
	if (c.Load.KeepAlive > 0 && len(c.Load.Requests) == 0) || (c.Load.NewConn > 0 && len(c.Load.NewConnRequests) == 0) {
		bad = append(bad, "HTTP clients without requests")
	}
	if c.GracePeriod < 0 || c.ProbePeriod < 0 || c.StartTimeout < 0 || c.Load.Interval < 0 {
		bad = append(bad, "a duration is negative")
	}
	switch c.DataPlane {
	case DataPlaneHAProxy:
		if c.LoadBalancer {
			bad = append(bad, "LoadBalancer=true: only with DataPlane kube (the HAProxy data plane is itself the load balancer)")
		}
	case DataPlaneKube:
		if c.GracePeriod%time.Second != 0 {
			bad = append(bad, fmt.Sprintf("GracePeriod=%v: Kubernetes takes whole seconds", c.GracePeriod))
		}
		if n := c.Replicas + c.Replacements; n > kube.MaxPods {
			bad = append(bad, fmt.Sprintf("Replicas+Replacements=%d: at most %d pods with DataPlane kube", n, kube.MaxPods))
		}
		if c.ProxyMode != kube.ProxyNFTables && c.ProxyMode != kube.ProxyIPTables {
			bad = append(bad, fmt.Sprintf("ProxyMode=%q: want %s or %s", c.ProxyMode, kube.ProxyNFTables, kube.ProxyIPTables))
		}
	default:
		bad = append(bad, fmt.Sprintf("DataPlane=%q: want %s or %s", c.DataPlane, DataPlaneHAProxy, DataPlaneKube))
	}
	if len(bad) > 0 {
		return fmt.Errorf("rollout: %s", strings.Join(bad, "; "))
	}
	return nil
}

// ErrNoHAProxy is returned by [Run] when the haproxy binary is not found.
var ErrNoHAProxy = errors.New("rollout: haproxy not found (install the Debian package haproxy)")

// FindHAProxy returns the path of the haproxy binary bin ("" = "haproxy"):
// bin itself if it holds a slash, else bin in PATH, else Debian's
// /usr/sbin/haproxy (not in the PATH of most non-root users). The error
// matches [ErrNoHAProxy].
func FindHAProxy(bin string) (string, error) {
	if bin == "" {
		bin = "haproxy"
	}
	path, err := exec.LookPath(bin)
	if err == nil {
		return path, nil
	}
	if !strings.Contains(bin, "/") {
		if p, err2 := exec.LookPath(filepath.Join("/usr/sbin", bin)); err2 == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %v", ErrNoHAProxy, err)
}

// LogTo returns a Logf that writes one line per event to w.
func LogTo(w io.Writer) func(format string, args ...any) {
	var mu sync.Mutex
	return func(format string, args ...any) {
		line := fmt.Sprintf(format, args...) + "\n"
		mu.Lock()
		defer mu.Unlock()
		_, _ = io.WriteString(w, line)
	}
}
