package lifecycletest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/drainfx/drainfx/lifecycle"
)

// App is what the kit starts and stops: an *fx.App or an *fxtest.App.
type App interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Option configures a [Kit].
type Option func(*options)

type options struct {
	interval       time.Duration
	attachWithin   time.Duration
	endWithin      time.Duration
	propagation    time.Duration
	propagationSet bool
}

// DefaultInterval is the default pause between two requests of an HTTP
// client, or two messages of a WebSocket client.
const DefaultInterval = 10 * time.Millisecond

// WithInterval sets the pause between two requests of an HTTP client, or
// two messages of a WebSocket client. Default [DefaultInterval].
func WithInterval(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.interval = d
		}
	}
}

// WithPropagation sets how long after D0 the "proxies" in front of the
// app still open new connections to it: the endpoint propagation delay.
// Default: half the plan's DrainDelay, so the proxies have caught up well
// before the drain ends. A propagation longer than the drain shows what a
// too-short drain loses: the connections opened after the listener closed
// are refused, and counted as lost.
func WithPropagation(d time.Duration) Option {
	return func(o *options) {
		if d >= 0 {
			o.propagation, o.propagationSet = d, true
		}
	}
}

// WithAttachTimeout bounds the attaching of a client (its first request,
// echo or event). Default 10s.
func WithAttachTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.attachWithin = d
		}
	}
}

// WithEndTimeout is how long, after the app has stopped, the kit waits for
// the clients to see their sessions end before it cuts them and counts
// them as lost. Default 1s: with drainfx every session has ended before the
// app's Stop returns.
func WithEndTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.endWithin = d
		}
	}
}

// errMoved is the "proxy" refusing a new connection once the propagation
// delay has passed: the client would be sent to another pod.
var errMoved = errors.New("lifecycletest: the proxies have caught up: a new connection goes to another pod")

// ErrTerminated is returned by the attach methods once [Kit.Terminate] or
// [Kit.Close] has run.
var ErrTerminated = errors.New("lifecycletest: already terminated")

// Kit is a started app with clients attached; see the package doc. Its
// methods may be called from one goroutine at a time.
type Kit struct {
	app App
	c   *lifecycle.Coordinator
	o   options

	ctx    context.Context // cancelled to cut the clients
	cancel context.CancelFunc
	stop   chan struct{} // closed once the app has stopped: clients end
	wg     sync.WaitGroup
	forced atomic.Bool // the clients were cut

	mu          sync.Mutex
	transitions []Transition

	https  []*httpClient
	wss    []*wsClient
	sses   []*sseClient
	done   bool
	result *Result
}

// Start records the coordinator's transitions, then starts the app
// (and marks the coordinator started, for apps that do not use the bundle
// in package modules). c is the app's coordinator: get it with
// fx.Populate.
func Start(ctx context.Context, app App, c *lifecycle.Coordinator, opts ...Option) (*Kit, error) {
	if app == nil || c == nil {
		return nil, errors.New("lifecycletest: nil app or coordinator")
	}
	o := options{interval: DefaultInterval, attachWithin: 10 * time.Second, endWithin: time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if !o.propagationSet {
		o.propagation = max(c.Plan().DrainDelay, 0) / 2
	}
	k := &Kit{app: app, c: c, o: o, stop: make(chan struct{})}
	k.ctx, k.cancel = context.WithCancel(context.Background())
	for st := c.State() + 1; st <= lifecycle.StateStopped; st++ {
		c.OnState(st, func() {
			k.mu.Lock()
			k.transitions = append(k.transitions, Transition{To: st, At: time.Now()})
			k.mu.Unlock()
		})
	}
	if err := app.Start(ctx); err != nil {
		k.cancel()
		return nil, fmt.Errorf("lifecycletest: start: %w", err)
	}
	c.MarkStarted() // no-op if the app did
	return k, nil
}

// dial is the clients' "proxy": it opens connections until the
// propagation delay after D0 has passed (or the app has stopped), and then
// refuses with errMoved.
func (k *Kit) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if d0 := k.c.Telemetry().Report().D0; !d0.IsZero() && !time.Now().Before(d0.Add(k.o.propagation)) {
		return nil, errMoved
	}
	select {
	case <-k.c.Reached(lifecycle.StateStopped):
		return nil, errMoved
	default:
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

func (k *Kit) transport() *http.Transport {
	return &http.Transport{DialContext: k.dial, MaxIdleConnsPerHost: 1}
}

func (k *Kit) attachable() error {
	if k.done {
		return ErrTerminated
	}
	return nil
}

// Termination is how [Kit.Terminate] ends the app: [Prestop], [Signal] or
// [AppStop].
type Termination struct {
	name  string
	begin func(ctx context.Context, k *Kit) error // before the app's Stop
}

func (t Termination) String() string { return t.name }

// Prestop calls the app's preStop handler as the kubelet's httpGet hook
// does (a GET to url with header, which blocks until the drain ends and
// must answer 200), then stops the app, as the kubelet's SIGTERM would.
func Prestop(url string, header http.Header) Termination {
	return Termination{name: "prestop", begin: func(ctx context.Context, _ *Kit) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		for name, vs := range header {
			for _, v := range vs {
				req.Header.Add(name, v)
			}
		}
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return fmt.Errorf("preStop: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("preStop: %s", resp.Status)
		}
		return nil
	}}
}

// Signal does what the first SIGTERM does to an app under fx's app.Run,
// without sending one: the coordinator begins the drain ("signal
// terminated") and the app stops at once; the HTTP module's stop waits for
// the drain. See the package doc for why no real signal is sent.
func Signal() Termination {
	return Termination{name: "signal", begin: func(_ context.Context, k *Kit) error {
		k.c.BeginDrain("signal terminated")
		return nil
	}}
}

// AppStop stops the app and nothing else: the drain begins in the stop
// ("app stopping").
func AppStop() Termination {
	return Termination{name: "app stop", begin: func(context.Context, *Kit) error { return nil }}
}

// Terminate runs the termination, waits for the app's Stop, lets the
// clients see their sessions end, and returns what happened. ctx bounds
// the whole; without a deadline the budget's fx stop timeout plus 5s
// does. Later calls return the same result.
func (k *Kit) Terminate(ctx context.Context, how Termination) Result {
	if k.result != nil {
		return *k.result
	}
	if k.done {
		return Result{Termination: how.name, StopErr: ErrTerminated}
	}
	k.done = true
	if how.begin == nil {
		how = AppStop()
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, k.c.Plan().StopTimeout+5*time.Second)
		defer cancel()
	}
	r := Result{Termination: how.name}
	began := time.Now()
	r.PrestopErr = how.begin(ctx, k) // only Prestop can fail
	r.StopErr = k.app.Stop(ctx)
	r.Took = time.Since(began)
	k.endClients(k.o.endWithin)

	k.mu.Lock()
	r.Transitions = append([]Transition(nil), k.transitions...)
	k.mu.Unlock()
	r.Report = k.c.Telemetry().Report()
	for _, h := range k.https {
		r.HTTP = append(r.HTTP, h.stats)
	}
	for _, w := range k.wss {
		r.WebSocket = append(r.WebSocket, w.stats)
	}
	for _, s := range k.sses {
		r.SSE = append(r.SSE, s.stats)
	}
	k.result = &r
	return r
}

// endClients tells the clients that the app has stopped, waits up to
// within for them to end, then cuts the rest (counted as lost).
func (k *Kit) endClients(within time.Duration) {
	close(k.stop)
	ended := make(chan struct{})
	go func() { k.wg.Wait(); close(ended) }()
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-ended:
	case <-t.C:
		k.forced.Store(true)
		k.cancel()
		for _, w := range k.wss {
			_ = w.conn.Close()
		}
		<-ended
	}
	k.cancel()
	for _, h := range k.https {
		h.tr.CloseIdleConnections()
	}
	for _, s := range k.sses {
		s.tr.CloseIdleConnections()
	}
}

// Close cuts the clients and stops the app if [Kit.Terminate] has not run
// (a test that failed half-way); otherwise it does nothing. Use it with
// t.Cleanup.
func (k *Kit) Close() {
	if k.done {
		return
	}
	k.done = true
	k.endClients(0)
	ctx, cancel := context.WithTimeout(context.Background(), k.c.Plan().StopTimeout+5*time.Second)
	defer cancel()
	_ = k.app.Stop(ctx)
}
