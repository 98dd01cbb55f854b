package wsmod

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/drainfx/drainfx/internal/clockctx"
	"github.com/drainfx/drainfx/internal/idle"
	"github.com/drainfx/drainfx/lifecycle"
)

// CutSessions is the kind of work a [Registry] records as cut
// ([lifecycle.Telemetry.RecordCut]): the sessions still open at the close
// deadline, force-closed.
const CutSessions lifecycle.CutKind = "sessions"

// Kind is the kind of a long-lived session.
type Kind int

// The kinds of sessions.
const (
	KindWebSocket Kind = iota
	KindSSE
	numKinds
)

func (k Kind) String() string {
	switch k {
	case KindWebSocket:
		return "websocket"
	case KindSSE:
		return "sse"
	}
	return "unknown"
}

// KindStats counts the sessions of one kind.
type KindStats struct {
	// Active sessions now.
	Active int64 `json:"active"`
	// Accepted sessions since the registry was created.
	Accepted int64 `json:"accepted"`
	// Rejected requests: 503 in the stop phase.
	Rejected int64 `json:"rejected"`
	// Clean endings: the WebSocket close handshake completed, or the SSE
	// handler returned with its stream intact (the final event delivered, in
	// the stop phase).
	Clean int64 `json:"clean"`
	// Forced endings: still open at the close deadline of the stop phase and
	// force-closed. Each is reported to the coordinator as a cut session.
	Forced int64 `json:"forced"`
	// Aborted endings: anything else — the peer went away, a network error, a
	// dead peer found by the keep-alive, a close reply that never came
	// outside the stop phase.
	Aborted int64 `json:"aborted"`
}

// Stats counts the sessions of a [Registry], per kind, for metrics.
type Stats struct {
	WebSocket KindStats `json:"websocket"`
	SSE       KindStats `json:"sse"`
}

// Kind returns the counts of kind k (zero for an unknown kind).
func (s Stats) Kind(k Kind) KindStats {
	switch k {
	case KindWebSocket:
		return s.WebSocket
	case KindSSE:
		return s.SSE
	}
	return KindStats{}
}

// outcome is how a session ended.
type outcome int

const (
	outcomeClean outcome = iota
	outcomeForced
	outcomeAborted
)

// session is one registered WebSocket or SSE session.
type session struct {
	kind   Kind
	shard  uint32
	cancel context.CancelFunc // ends the handler's context
	sock   Socket             // KindWebSocket
	stream *Stream            // KindSSE

	closing atomic.Bool // the close frame or final event is out (or being written)
	forced  atomic.Bool // force-closed at the deadline

	// The shard's intrusive list, under its lock: adding and removing is a
	// few pointer writes, no hashing and no allocation beyond the session.
	prev, next *session
	listed     bool
}

// numShards spreads the sessions over this many locks. A power of two; 64
// keeps contention negligible up to dozens of cores for 8 KiB.
const numShards = 64

type kindCounts struct {
	active, accepted, clean, forced, aborted int64
}

// shard is one lock and the sessions under it, padded to its own cache
// lines so that shards do not share one.
type shard struct {
	mu     sync.Mutex
	head   *session // the sessions, a doubly linked list
	n      int
	counts [numKinds]kindCounts
	_      [128 - (8+8+8+int(numKinds)*5*8)%128]byte
}

func (sh *shard) pushLocked(s *session) {
	s.prev, s.next = nil, sh.head
	if sh.head != nil {
		sh.head.prev = s
	}
	sh.head = s
	s.listed = true
	sh.n++
}

func (sh *shard) unlinkLocked(s *session) {
	if !s.listed {
		return
	}
	if s.prev != nil {
		s.prev.next = s.next
	} else {
		sh.head = s.next
	}
	if s.next != nil {
		s.next.prev = s.prev
	}
	s.prev, s.next, s.listed = nil, nil, false
	sh.n--
}

// Option configures a [Registry].
type Option func(*options)

type options struct {
	log         *zap.Logger
	checkOrigin func(*http.Request) bool
	upgrader    Upgrader
}

// WithLogger sets the logger (default [zap.NewNop]); the registry adds the
// field component=ws.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithCheckOrigin replaces the origin check of WebSocket upgrades
// ([Config.AllowedOrigins]). fn returns true to allow the request.
func WithCheckOrigin(fn func(r *http.Request) bool) Option {
	return func(o *options) { o.checkOrigin = fn }
}

// WithUpgrader replaces the gorilla upgrader built from the config: the seam
// for another WebSocket library, or a gorilla [websocket.Upgrader] with
// other buffer sizes, subprotocols or compression (see [Gorilla]). The
// upgrader then owns the origin check.
func WithUpgrader(u Upgrader) Option {
	return func(o *options) { o.upgrader = u }
}

// Registry tracks the long-lived sessions (WebSocket and SSE) of a service
// and ends them in the stop phase of its [lifecycle.Coordinator], as one of
// its stop participants: a close frame to every WebSocket peer, a final
// event on every SSE stream, every handler's context cancelled — spread
// over the close window ([Config.CloseRate]); then it waits for the
// handlers up to the close deadline and force-closes the rest. It is safe
// for concurrent use.
//
// A Registry serves one shutdown, like its coordinator. It takes part in
// the stop phase from [New] on; under Fx, [Module] also asks for the stop
// in its OnStop ([Registry.Stop]).
type Registry struct {
	cfg   Config
	c     *lifecycle.Coordinator
	log   *zap.Logger
	clock lifecycle.Clock
	up    Upgrader

	shards [numShards]shard

	stopping atomic.Bool // the stop phase has begun: refuse new sessions, close on registration
	forcing  atomic.Bool // the close deadline has passed: force on registration
	removed  idle.Signal // notified when a session leaves during the stop phase
	rejected [numKinds]atomic.Int64

	// The close schedule's seams for tests: wait waits until a time (the
	// clock's, waitClock); onClose, if set, hears each session the
	// schedule ends.
	wait    func(ctx context.Context, t time.Time) bool
	onClose func(at time.Time)
}

// New returns a registry for cfg that closes its sessions when c's stop
// phase begins: it registers itself with c as the stop participant
// "sessions" ([lifecycle.Coordinator.AtStop]). It registers the gauges
// "websocket" and "sse" with c's telemetry, and how their sessions end,
// for the shutdown report and metrics. It fails with an error matching
// [ErrConfig] if cfg is invalid.
func New(cfg Config, c *lifecycle.Coordinator, opts ...Option) (*Registry, error) {
	if c == nil {
		return nil, errors.New("wsmod: nil coordinator")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := options{log: zap.NewNop()}
	for _, opt := range opts {
		opt(&o)
	}
	cfg = cfg.WithDefaults()
	r := &Registry{
		cfg:   cfg,
		c:     c,
		log:   o.log.With(zap.String("component", "ws")),
		clock: c.Clock(),
		up:    o.upgrader,
	}
	r.wait = r.waitClock
	if r.up == nil {
		check := o.checkOrigin
		if check == nil {
			check = originChecker(cfg.AllowedOrigins)
		}
		r.up = defaultUpgrader(check)
	}
	tel := c.Telemetry()
	tel.TrackInFlight(KindWebSocket.String(), func() int64 { return int64(r.Len(KindWebSocket)) })
	tel.TrackInFlight(KindSSE.String(), func() int64 { return int64(r.Len(KindSSE)) })
	for k := range numKinds {
		tel.TrackSessions(k.String(), func() lifecycle.SessionEnds {
			st := r.Stats().Kind(k)
			return lifecycle.SessionEnds{Clean: st.Clean, Forced: st.Forced, Aborted: st.Aborted}
		})
	}
	// New sessions are refused from the transition into the stop phase on,
	// before any stop participant runs: the HTTP server, shutting down in
	// parallel with the registry, may still hand a request to a handler.
	c.OnState(lifecycle.StateStopping, func() { r.stopping.Store(true) })
	c.AtStop("sessions", r.closeAll)
	return r, nil
}

// Config returns the resolved config.
func (r *Registry) Config() Config { return r.cfg }

// Stop asks the coordinator for the stop and waits for the end of the
// shutdown ([lifecycle.Coordinator.Stop]): the drain runs its course if it
// has not yet (it begins now if nothing has begun it), then the stop phase
// ends every session — cleanly, or force-closed at the close deadline —
// in parallel with the other stop participants (the HTTP server's
// Shutdown), then the teardown runs and the report is written. Stop is the
// module's OnStop; any number of calls, from any module, wait for the same
// shutdown.
//
// If ctx ends first, the coordinator cuts the drain short and the stop
// phase's deadline comes at once: the registry force-closes what is left
// without waiting for the close replies, and Stop returns ctx.Err()
// without waiting for that.
//
// The registry does not wait for a handler that ignores both its context
// and its connection beyond [Config.WriteTimeout] after the force-close;
// such a session is counted as forced and logged.
func (r *Registry) Stop(ctx context.Context) error { return r.c.Stop(ctx) }

// Len returns the number of live sessions of kind k (0 for an unknown
// kind).
func (r *Registry) Len(k Kind) int {
	if k < 0 || k >= numKinds {
		return 0
	}
	var n int64
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += sh.counts[k].active
		sh.mu.Unlock()
	}
	return int(n)
}

// Stats returns the counts of sessions per kind.
func (r *Registry) Stats() Stats {
	var s [numKinds]KindStats
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for k := range numKinds {
			c := sh.counts[k]
			s[k].Active += c.active
			s[k].Accepted += c.accepted
			s[k].Clean += c.clean
			s[k].Forced += c.forced
			s[k].Aborted += c.aborted
		}
		sh.mu.Unlock()
	}
	for k := range numKinds {
		s[k].Rejected = r.rejected[k].Load()
	}
	return Stats{WebSocket: s[KindWebSocket], SSE: s[KindSSE]}
}

// Stopping reports whether the stop phase has begun for this registry: new
// sessions are refused and the live ones are being ended.
func (r *Registry) Stopping() bool { return r.stopping.Load() }

func (r *Registry) newSession(k Kind, cancel context.CancelFunc) *session {
	return &session{kind: k, shard: rand.Uint32() & (numShards - 1), cancel: cancel}
}

// add registers s. It is the hot path of every new session: one of 64
// locks, chosen at random, and a list insert.
func (r *Registry) add(s *session) {
	sh := &r.shards[s.shard]
	sh.mu.Lock()
	sh.pushLocked(s)
	c := &sh.counts[s.kind]
	c.active++
	c.accepted++
	sh.mu.Unlock()
}

// remove unregisters s, counting how it ended.
func (r *Registry) remove(s *session, o outcome) {
	sh := &r.shards[s.shard]
	sh.mu.Lock()
	sh.unlinkLocked(s)
	c := &sh.counts[s.kind]
	c.active--
	switch o {
	case outcomeClean:
		c.clean++
	case outcomeForced:
		c.forced++
	default:
		c.aborted++
	}
	sh.mu.Unlock()
	if r.stopping.Load() {
		r.removed.Notify()
	}
}

// registered adds s and, if the stop phase has already begun (or its
// deadline passed), ends it at once: the stop participant's snapshot may
// have missed it. Stores and loads of the flags are sequentially
// consistent and the snapshot locks every shard, so each session is either
// in the snapshot or sees the flag (or both; ending is idempotent).
func (r *Registry) registered(s *session) {
	r.add(s)
	if r.stopping.Load() {
		r.beginClose(s)
	}
	if r.forcing.Load() {
		r.force(s)
	}
}

func (r *Registry) total() int {
	n := 0
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		n += sh.n
		sh.mu.Unlock()
	}
	return n
}

// listed reports whether s is still registered.
func (r *Registry) listed(s *session) bool {
	sh := &r.shards[s.shard]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return s.listed
}

func (r *Registry) snapshot() []*session {
	var list []*session
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		for s := sh.head; s != nil; s = s.next {
			list = append(list, s)
		}
		sh.mu.Unlock()
	}
	return list
}

type requestKey struct{}

// withRequest is the base of a session handler's context: the request's own
// context, which carries its values, and the request.
func withRequest(req *http.Request) context.Context {
	return context.WithValue(req.Context(), requestKey{}, req)
}

// Request returns the request that opened the session a handler of
// [Registry.WebSocket] or [Registry.SSE] runs in — its path values
// ([http.Request.PathValue]), headers, URL — or nil for another context.
// The request is valid until the handler returns; its body is not to be
// read.
//
// Path parameters of a router other than [http.ServeMux] are the router's:
// copy them into the request with [http.Request.SetPathValue] before
// calling the handler (see the package doc for echo).
func Request(ctx context.Context) *http.Request {
	r, _ := ctx.Value(requestKey{}).(*http.Request)
	return r
}

// refuse answers a new session in the stop phase: 503 with Retry-After.
func (r *Registry) refuse(w http.ResponseWriter, k Kind) {
	r.rejected[k].Add(1)
	h := w.Header()
	h.Set("Retry-After", strconv.FormatInt(r.cfg.retryAfterSeconds(), 10))
	h.Set("Connection", "close")
	http.Error(w, "server shutting down", http.StatusServiceUnavailable)
}

// beginClose sends the close frame (WebSocket) or the final event (SSE) and
// cancels the handler's context. It is idempotent.
func (r *Registry) beginClose(s *session) {
	switch s.kind {
	case KindWebSocket:
		r.sendClose(s, r.cfg.CloseCode, r.cfg.CloseReason)
	case KindSSE:
		r.sendFinal(s)
	}
	s.cancel()
}

// force ends s at once: the network connection of a WebSocket is closed; an
// SSE stream's writes fail from now on. It reports whether this call forced
// it.
func (r *Registry) force(s *session) bool {
	if !s.forced.CompareAndSwap(false, true) {
		return false
	}
	switch s.kind {
	case KindWebSocket:
		_ = s.sock.Close()
	case KindSSE:
		s.stream.abort()
	}
	s.cancel()
	return true
}

// closeAll is the registry's stop participant: close frames and final
// events out over the close window ([Config.CloseRate]), each in its own
// goroutine; then wait for the handlers up to the close deadline —
// CloseTimeout from now, or the end of ctx (the stop deadline, or sooner if
// the stop was cut short) if that comes first — then force-close and count
// what is left. With no session (a registry that never served) it returns
// at once.
func (r *Registry) closeAll(ctx context.Context) error {
	start := r.clock.Now()
	r.stopping.Store(true)
	forceAt := start.Add(r.cfg.CloseTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(forceAt) {
		forceAt = dl
	}
	// The wait context exists before the first close frame goes out: a
	// session that ends then is waited for on its timer.
	closeCtx, cancel := clockctx.Until(ctx, r.clock, forceAt)
	defer cancel()

	list := r.snapshot()
	plan := planCloses(len(list), r.cfg.CloseRate, forceAt.Sub(start), r.cfg.WriteTimeout)
	if len(list) > 0 {
		r.logPlan(list, plan, forceAt.Sub(start))
	}

	// The goroutines of the close frames are waited for before closeAll
	// returns; each is bounded by its write deadline, or by the
	// force-close below.
	var wg sync.WaitGroup
	tally := r.closeSpread(closeCtx, list, start, plan, &wg)

	allGone := r.waitGone(closeCtx)
	var forced int64
	if !allGone {
		r.forcing.Store(true)
		for _, s := range r.snapshot() {
			if r.listed(s) && r.force(s) {
				forced++
			}
		}
		r.c.Telemetry().RecordCut(CutSessions, forced)
		r.log.Warn("sessions force-closed at the close deadline", zap.Int64("forced", forced))
		// A force-closed handler returns as soon as it touches its
		// connection; one that does not is abandoned after WriteTimeout.
		abandonCtx, cancelAbandon := clockctx.Until(context.Background(), r.clock, r.clock.Now().Add(r.cfg.WriteTimeout))
		gone := r.waitGone(abandonCtx)
		cancelAbandon()
		if !gone {
			if n := r.total(); n > 0 {
				r.log.Error("handlers did not return after the force-close; abandoned", zap.Int("sessions", n))
			}
		}
	}
	wg.Wait()
	if len(list) > 0 || forced > 0 {
		r.log.Info("sessions closed", zap.Int("sessions", len(list)), zap.Int64("forced", forced),
			zap.Duration("window", tally.window()), zap.Int("peakPer100ms", tally.peak),
			zap.Duration("took", r.clock.Now().Sub(start)))
	}
	return nil
}

// logPlan says, in one line, how many sessions the stop phase ends and over
// what window; a warning if the window had to be compressed to fit before
// the close deadline.
func (r *Registry) logPlan(list []*session, p closePlan, untilDeadline time.Duration) {
	var ws, sse int
	for _, s := range list {
		if s.kind == KindWebSocket {
			ws++
		} else {
			sse++
		}
	}
	fields := []zap.Field{zap.Int("sessions", len(list)), zap.Int("websocket", ws), zap.Int("sse", sse),
		zap.Duration("window", p.window), zap.Duration("closeTimeout", untilDeadline)}
	if !p.compressed {
		r.log.Info("closing sessions", fields...)
		return
	}
	r.log.Warn("closing sessions over a compressed window: the stop phase is too short for the close rate",
		append(fields, zap.Duration("wanted", p.wanted), zap.Int("closeRate", r.cfg.CloseRate))...)
}

// waitGone waits until no session is left or ctx ends; it reports whether
// none is left.
func (r *Registry) waitGone(ctx context.Context) bool {
	return r.removed.Wait(ctx, func() bool { return r.total() == 0 }) == nil
}
