package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/drainfx/drainfx/internal/loadclient"
)

// The first losses of each kind are kept as samples.
const (
	samplesPerKind = 3
	maxSamples     = 30
)

type counter struct{ seen, lost atomic.Int64 }

// load is the traffic through the proxy. Every client runs in a goroutine
// of wg until ctx ends; a request or session cut short by the end of ctx is
// not counted.
type load struct {
	cfg       Load
	label     string // "" or the entry point, prefixed to the names of rows, clients and losses
	base      string // http://proxy
	wsURL     string
	proxyAddr string    // host:port, for the gRPC channels
	start     time.Time // of the rollout: loss samples are stamped from it
	wg        sync.WaitGroup
	dial      dialFunc

	// One row per request: the keep-alive clients' Requests, then the
	// new-connection clients' NewConnRequests.
	rowNames []string
	http     []counter
	replays  []atomic.Int64 // GETs the Go transport sent again on a new connection

	wsOpened, sseOpened                                         atomic.Int64 // sessions and streams opened
	wsFailedDials, wsSessions, wsLost, wsMessages, wsUnanswered atomic.Int64
	sseFailedOpens, sseStreams, sseLost, sseEvents, sseClean    atomic.Int64
	grpc                                                        grpcLoad

	progress []atomic.Int64 // per client: UnixNano of its last success
	names    []string

	mu         sync.Mutex
	opens      []sessionOpen // every WebSocket and SSE session opened
	wsCodes    map[int]int64
	samples    []string
	perWhat    map[string]int
	nSamples   int
	transports []*http.Transport
}

// dialFunc opens a connection, as [net.Dialer.DialContext] does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// target is an entry point of the load: the clients connect to addr with
// dial (nil: from this process's network namespace).
type target struct {
	label string // "" for the only one
	addr  string
	dial  dialFunc
}

// dialTimeout bounds every connection the clients open.
const dialTimeout = 5 * time.Second

func newLoad(cfg Load, t target, start time.Time) *load {
	proxyAddr := t.addr
	dial := t.dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	n := cfg.KeepAlive + cfg.NewConn + cfg.WebSocket + cfg.SSE + cfg.GRPC + cfg.GRPCNewConn
	var names []string
	if cfg.KeepAlive > 0 {
		for _, r := range cfg.Requests {
			names = append(names, "keep-alive "+r.Name())
		}
	}
	if cfg.NewConn > 0 {
		for _, r := range cfg.NewConnRequests {
			names = append(names, "new-conn "+r.Name())
		}
	}
	return &load{
		cfg:       cfg,
		base:      "http://" + proxyAddr,
		wsURL:     "ws://" + proxyAddr + cfg.WSPath,
		proxyAddr: proxyAddr,
		rowNames:  names,
		http:      make([]counter, len(names)),
		replays:   make([]atomic.Int64, len(names)),
		start:     start,
		label:     t.label,
		dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			return dial(ctx, network, addr)
		},
		progress: make([]atomic.Int64, n),
		names:    make([]string, n),
		wsCodes:  make(map[int]int64),
		perWhat:  make(map[string]int),
	}
}

// run starts every client.
func (l *load) run(ctx context.Context, seed uint64) {
	id := 0
	next := func(kind string, i int) int {
		l.names[id] = l.prefix() + fmt.Sprintf("%s client %d", kind, i)
		id++
		return id - 1
	}
	for i := range l.cfg.KeepAlive {
		id, rng := next("keep-alive", i), rand.New(rand.NewPCG(seed, uint64(id)))
		l.wg.Go(func() { l.keepAliveClient(ctx, id, rng) })
	}
	for i := range l.cfg.NewConn {
		id, rng := next("new-conn", i), rand.New(rand.NewPCG(seed, uint64(id)))
		l.wg.Go(func() { l.newConnClient(ctx, id, rng) })
	}
	for i := range l.cfg.WebSocket {
		id := next("WebSocket", i)
		l.wg.Go(func() { l.wsClient(ctx, id) })
	}
	for i := range l.cfg.SSE {
		id := next("SSE", i)
		l.wg.Go(func() { l.sseClient(ctx, id) })
	}
	for i := range grpcEchoClients(l.cfg) {
		id, rng := next("gRPC Echo", i), rand.New(rand.NewPCG(seed, uint64(id)))
		l.wg.Go(func() { l.grpcEchoClient(ctx, id, rng) })
	}
	for i := range grpcTicksClients(l.cfg) {
		id := next("gRPC Ticks", i)
		l.wg.Go(func() { l.grpcTicksClient(ctx, id) })
	}
	for i := range l.cfg.GRPCNewConn {
		id, rng := next("gRPC new-channel", i), rand.New(rand.NewPCG(seed, uint64(id)))
		l.wg.Go(func() { l.grpcNewChannelClient(ctx, id, rng) })
	}
}

// wait waits for every client to return and closes their idle connections.
func (l *load) wait() {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range l.transports {
		t.CloseIdleConnections()
	}
}

func (l *load) transport(keepAlive bool) *http.Transport {
	t := &http.Transport{
		Proxy:               nil, // never HTTP_PROXY: the proxy here is HAProxy
		DialContext:         l.dial,
		DisableKeepAlives:   !keepAlive,
		DisableCompression:  true,
		MaxIdleConnsPerHost: 1,
		IdleConnTimeout:     time.Minute,
	}
	l.mu.Lock()
	l.transports = append(l.transports, t)
	l.mu.Unlock()
	return t
}

// stalled returns the clients whose last success is not after t (the zero
// t: that have not succeeded yet).
func (l *load) stalled(t time.Time) []string {
	var after int64
	if !t.IsZero() {
		after = t.UnixNano()
	}
	var out []string
	for i := range l.progress {
		if l.progress[i].Load() <= after {
			out = append(out, l.names[i])
		}
	}
	return out
}

// waitProgress waits until every client has succeeded after t, or timeout;
// it returns the clients that have not.
func (l *load) waitProgress(ctx context.Context, t time.Time, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		s := l.stalled(t)
		if len(s) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return s
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond): // polling interval
		}
	}
}

// sessionOpen is a WebSocket or SSE session the load opened: when it was
// open (the handshake answered, the stream's headers read), the local port
// of its connection, which the proxy's connection log names, and whether
// that connection had carried a session or request before (an SSE stream
// on a kept-alive connection: the proxy's log has no line for this open).
type sessionOpen struct {
	at     time.Time
	port   int
	reused bool
}

// opened records a session opened on a connection from local address a,
// reused or new.
func (l *load) opened(a net.Addr, reused bool) {
	o := sessionOpen{at: time.Now(), reused: reused}
	if ta, ok := a.(*net.TCPAddr); ok {
		o.port = ta.Port
	}
	l.mu.Lock()
	l.opens = append(l.opens, o)
	l.mu.Unlock()
}

// sessionOpens returns the sessions opened so far.
func (l *load) sessionOpens() []sessionOpen {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.opens)
}

func (l *load) ok(id int) { l.progress[id].Store(time.Now().UnixNano()) }

// lose records one loss and keeps the first few as samples.
func (l *load) lose(what string, err any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.nSamples++
	if l.perWhat[what] < samplesPerKind && len(l.samples) < maxSamples {
		l.perWhat[what]++
		l.samples = append(l.samples, fmt.Sprintf("%7.3fs %s%s: %v", time.Since(l.start).Seconds(), l.prefix(), what, err))
	}
}

// pace waits for the next tick; false once ctx has ended.
func pace(ctx context.Context, t *time.Ticker) bool {
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// backoff waits a little after a failed connection, so that a broken
// backend does not turn a client into a busy loop.
func backoff(ctx context.Context) {
	t := time.NewTimer(50 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func (l *load) keepAliveClient(ctx context.Context, id int, rng *rand.Rand) {
	l.httpClient(ctx, id, rng, true, l.cfg.Requests, 0)
}

func (l *load) newConnClient(ctx context.Context, id int, rng *rand.Rand) {
	first := 0
	if l.cfg.KeepAlive > 0 {
		first = len(l.cfg.Requests)
	}
	l.httpClient(ctx, id, rng, false, l.cfg.NewConnRequests, first)
}

// httpClient sends reqs in turn, one per Interval; the row of reqs[i] is
// firstRow+i.
func (l *load) httpClient(ctx context.Context, id int, rng *rand.Rand, keepAlive bool, reqs []Request, firstRow int) {
	c := &http.Client{Transport: l.transport(keepAlive), Timeout: time.Minute}
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for n := 0; pace(ctx, tick); n++ {
		i := n % len(reqs)
		l.request(ctx, c, id, rng, n, firstRow+i, reqs[i])
	}
}

func payload(rng *rand.Rand, id, n int) []byte {
	b := fmt.Appendf(nil, "client %d request %d ", id, n)
	for range 64 + rng.IntN(512) {
		b = append(b, byte('a'+rng.IntN(26)))
	}
	return b
}

// request sends one request (the n-th of client id) and checks the answer:
// 2xx, and the body the request wants. The request body is never replayed
// (GetBody is nil), so the transport cannot send a POST twice; a GET it
// sends again on a new connection after a reused one was closed is counted
// in replays (not a loss: it is what Go clients do).
func (l *load) request(ctx context.Context, c *http.Client, id int, rng *rand.Rand, n, row int, r Request) {
	path := r.Path
	if strings.Contains(path, "{ms}") {
		path = strings.ReplaceAll(path, "{ms}", strconv.FormatInt(l.cfg.Slow.draw(rng).Milliseconds(), 10))
	}
	body := r.Body
	if r.RandomBody {
		body = payload(rng, id, n)
	}
	want := r.Want
	if r.Echo {
		want = body
		if want == nil {
			want = []byte{}
		}
	}
	header := l.cfg.Header
	if len(r.Header) > 0 {
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		for k, vs := range r.Header {
			header[k] = append(header[k], vs...)
		}
	}
	a, err := loadclient.Send(ctx, c, r.Method, l.base+path, header, body)
	if ctx.Err() != nil {
		return // the run ended
	}
	l.http[row].seen.Add(1)
	if a.Conns > 1 {
		l.replays[row].Add(1)
	}
	switch {
	case err != nil:
	case want != nil && !bytes.Equal(a.Body, want):
		err = fmt.Errorf("body %.40q, want %.40q", a.Body, want)
	default:
		l.ok(id)
		return
	}
	l.http[row].lost.Add(1)
	l.lose(l.rowNames[row], err)
}

func (l *load) wsClient(ctx context.Context, id int) {
	d := &websocket.Dialer{NetDialContext: l.dial, HandshakeTimeout: 5 * time.Second}
	for ctx.Err() == nil {
		if !l.wsSession(ctx, d, id) {
			backoff(ctx)
		}
	}
}

// wsSession runs one WebSocket session: a writer sends a numbered message
// every Interval while this goroutine reads the echoes, in order, and so
// answers the server's close frame at once (gorilla's close handler). It
// returns false if the session could not be opened.
func (l *load) wsSession(ctx context.Context, d *websocket.Dialer, id int) bool {
	conn, resp, err := d.DialContext(ctx, l.wsURL, nil)
	if err != nil {
		if ctx.Err() != nil {
			return true
		}
		if resp != nil {
			err = fmt.Errorf("%w (status %s)", err, resp.Status)
		}
		l.wsFailedDials.Add(1)
		l.wsLost.Add(1)
		l.lose("WebSocket dial", err)
		return false
	}
	l.wsOpened.Add(1)
	// A new connection: gorilla dials one per session.
	l.opened(conn.LocalAddr(), false)
	stop := context.AfterFunc(ctx, func() { conn.Close() }) // unblocks the read at the end
	defer stop()

	var sent atomic.Int64
	readerDone, writerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(writerDone)
		tick := time.NewTicker(l.cfg.Interval)
		defer tick.Stop()
		for n := int64(1); ; n++ {
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := conn.WriteMessage(websocket.TextMessage, wsMessage(id, n)); err != nil {
				return
			}
			sent.Store(n)
			select {
			case <-readerDone:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	var echoed int64
	var end error
	for {
		_, p, err := conn.ReadMessage()
		if err != nil {
			end = err
			break
		}
		echoed++
		if want := wsMessage(id, echoed); !bytes.Equal(p, want) {
			end = fmt.Errorf("%w: %q, want %q", errWrongEcho, p, want)
			break
		}
		l.ok(id)
	}
	close(readerDone)
	<-writerDone
	conn.Close()
	if ctx.Err() != nil {
		return true // the run ended
	}
	l.wsSessions.Add(1)
	l.wsMessages.Add(echoed)
	code := loadclient.CloseCode(end) // 1006 without a close frame: the connection broke
	if errors.Is(end, errWrongEcho) {
		code = 0
	}
	l.mu.Lock()
	l.wsCodes[code]++
	l.mu.Unlock()
	if !loadclient.CleanClose(code) {
		l.wsLost.Add(1)
		l.lose("WebSocket session", end)
	} else if u := sent.Load() - echoed; u > 0 {
		// Sent while the server's close frame was on its way: the client
		// knows they were not answered (a protocol-level race of any close).
		l.wsUnanswered.Add(u)
	}
	return true
}

var errWrongEcho = errors.New("wrong echo")

func wsMessage(id int, n int64) []byte { return fmt.Appendf(nil, "client %d message %d", id, n) }

// sseClient reads event streams one after the other. Like an EventSource
// it waits its reconnection time — the last "retry:" a stream sent — before
// it reconnects (at once with Load.SSEIgnoreRetry, or if no stream sent
// one).
func (l *load) sseClient(ctx context.Context, id int) {
	c := &http.Client{Transport: l.transport(true)}
	var retry time.Duration
	for ctx.Err() == nil {
		opened := l.sseSession(ctx, c, id, &retry)
		switch {
		case !opened:
			backoff(ctx)
		case retry > 0 && !l.cfg.SSEIgnoreRetry:
			_ = sleep(ctx, retry)
		}
	}
}

// sseSession reads one event stream. It ends cleanly when the body ends
// (io.EOF, the chunked terminator) right after the final event. It returns
// false if the stream could not be opened. A "retry:" field sets *retry.
func (l *load) sseSession(ctx context.Context, c *http.Client, id int, retry *time.Duration) bool {
	// The connection the stream runs on, new or reused: the proxy's log
	// names its server by its local port.
	var local net.Addr
	var reused bool
	trace := &httptrace.ClientTrace{GotConn: func(ci httptrace.GotConnInfo) { local, reused = ci.Conn.LocalAddr(), ci.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, l.base+l.cfg.SSEPath, nil)
	var resp *http.Response
	if err == nil {
		req.Header.Set("Accept", "text/event-stream")
		resp, err = c.Do(req)
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		err = fmt.Errorf("status %s", resp.Status)
	}
	if err != nil {
		if ctx.Err() != nil {
			return true
		}
		l.sseFailedOpens.Add(1)
		l.sseLost.Add(1)
		l.lose("SSE open", err)
		return false
	}
	defer resp.Body.Close()
	l.sseOpened.Add(1)
	l.opened(local, reused)

	var (
		er     = loadclient.NewEventReader(resp.Body)
		last   string
		events int64
		end    error
	)
	for {
		ev, err := er.Next()
		if r := er.Retry(); r > 0 {
			*retry = r
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				end = fmt.Errorf("stream broken after %d events: %w", events, err)
			} else if last != l.cfg.FinalEvent {
				end = fmt.Errorf("stream ended after %d events without the final event %q", events, l.cfg.FinalEvent)
			}
			break
		}
		if last = ev.Type; last != l.cfg.FinalEvent {
			events++
			l.ok(id)
		}
	}
	if ctx.Err() != nil {
		return true
	}
	l.sseStreams.Add(1)
	l.sseEvents.Add(events)
	if end != nil {
		l.sseLost.Add(1)
		l.lose("SSE stream", end)
		return true
	}
	l.sseClean.Add(1)
	return true
}

// rows is the load table.
func (l *load) rows() []Row {
	var rows []Row
	for i := range l.rowNames {
		note := ""
		if n := l.replays[i].Load(); n > 0 {
			note = fmt.Sprintf("%d resent by the Go transport on a new connection", n)
		}
		rows = append(rows, Row{Name: l.rowNames[i], Seen: l.http[i].seen.Load(), Lost: l.http[i].lost.Load(), Note: note})
	}
	l.mu.Lock()
	codes := make([]int, 0, len(l.wsCodes))
	for c := range l.wsCodes {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var cs []string
	for _, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "wrong echo"
		}
		cs = append(cs, fmt.Sprintf("%s×%d", name, l.wsCodes[c]))
	}
	l.mu.Unlock()
	wsNote := fmt.Sprintf("%d messages echoed; closes %s", l.wsMessages.Load(), strings.Join(cs, " "))
	if len(cs) == 0 {
		wsNote = fmt.Sprintf("%d messages echoed", l.wsMessages.Load())
	}
	if u := l.wsUnanswered.Load(); u > 0 {
		wsNote += fmt.Sprintf("; %d sent just before a clean close, unanswered", u)
	}
	if f := l.wsFailedDials.Load(); f > 0 {
		wsNote += fmt.Sprintf("; %d dials failed", f)
	}
	sseNote := fmt.Sprintf("%d events; %d ended cleanly by the final event", l.sseEvents.Load(), l.sseClean.Load())
	if f := l.sseFailedOpens.Load(); f > 0 {
		sseNote += fmt.Sprintf("; %d opens failed", f)
	}
	if l.cfg.WebSocket > 0 {
		rows = append(rows, Row{Name: "WebSocket sessions", Seen: l.wsOpened.Load() + l.wsFailedDials.Load(), Lost: l.wsLost.Load(), Note: wsNote})
	}
	if l.cfg.SSE > 0 {
		rows = append(rows, Row{Name: "SSE streams", Seen: l.sseOpened.Load() + l.sseFailedOpens.Load(), Lost: l.sseLost.Load(), Note: sseNote})
	}
	rows = append(rows, l.grpcRows()...)
	for i := range rows {
		rows[i].Name = l.prefix() + rows[i].Name
	}
	return rows
}

// prefix is what the names of the load's rows, clients and losses begin
// with: its entry point, if there are several.
func (l *load) prefix() string {
	if l.label == "" {
		return ""
	}
	return l.label + ": "
}

func (l *load) lossSamples() ([]string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.samples...), l.nSamples
}

// loads are the loads of a rollout, one per entry point: the clients of
// each kind are shared out between them (the first ones get the odd
// clients).
type loads []*load

func newLoads(cfg Load, ts []target, start time.Time) loads {
	n := len(ts)
	share := func(c, k int) int {
		s := c / n
		if k < c%n {
			s++
		}
		return s
	}
	var ls loads
	for k, t := range ts {
		c := cfg
		c.KeepAlive, c.NewConn, c.WebSocket, c.SSE = share(cfg.KeepAlive, k), share(cfg.NewConn, k), share(cfg.WebSocket, k), share(cfg.SSE, k)
		c.GRPC, c.GRPCNewConn = share(cfg.GRPC, k), share(cfg.GRPCNewConn, k)
		ls = append(ls, newLoad(c, t, start))
	}
	return ls
}

func (ls loads) run(ctx context.Context, seed uint64) {
	for k, l := range ls {
		l.run(ctx, seed+uint64(k)<<32)
	}
}

// sessionOpens are the session opens of every load.
func (ls loads) sessionOpens() []sessionOpen {
	var all []sessionOpen
	for _, l := range ls {
		all = append(all, l.sessionOpens()...)
	}
	return all
}

func (ls loads) wait() {
	for _, l := range ls {
		l.wait()
	}
}

// waitProgress waits until every client of every load has succeeded after
// t, or timeout; it returns the clients that have not.
func (ls loads) waitProgress(ctx context.Context, t time.Time, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	var stalled []string
	for _, l := range ls {
		stalled = append(stalled, l.waitProgress(ctx, t, max(time.Until(deadline), 0))...)
	}
	return stalled
}

func (ls loads) rows() []Row {
	var rows []Row
	for _, l := range ls {
		rows = append(rows, l.rows()...)
	}
	return rows
}

func (ls loads) lossSamples() ([]string, int) {
	var (
		samples []string
		n       int
	)
	for _, l := range ls {
		s, k := l.lossSamples()
		samples, n = append(samples, s...), n+k
	}
	return samples, n
}
