package wsmod

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// Message types of [Conn.ReadMessage] and [Conn.WriteMessage] (the RFC 6455
// opcodes, equal to gorilla's).
const (
	TextMessage   = websocket.TextMessage
	BinaryMessage = websocket.BinaryMessage
)

// Conn is the WebSocket connection a handler gets: one goroutine may read and
// one may write at a time, as with gorilla. The registry's close frame and
// pings are safe alongside them.
type Conn interface {
	// ReadMessage returns the next data message. After the peer's close frame
	// it returns an error for which [Socket.IsClose] is true.
	ReadMessage() (messageType int, p []byte, err error)
	// WriteMessage sends one data message. Once the close frame is out it
	// fails (gorilla: [websocket.ErrCloseSent]).
	WriteMessage(messageType int, data []byte) error
	// Subprotocol is the negotiated subprotocol, or "".
	Subprotocol() string
	// RemoteAddr is the peer's network address.
	RemoteAddr() net.Addr
}

// Socket is a [Conn] plus what the registry needs to end it. The default is
// gorilla's ([Gorilla]); implement Socket and [Upgrader] to plug in another
// WebSocket library.
type Socket interface {
	Conn
	// WriteClose sends a close frame with code and reason, giving up at
	// deadline. It must be safe to call concurrently with one goroutine in
	// WriteMessage and one in ReadMessage.
	WriteClose(code int, reason string, deadline time.Time) error
	// WritePing sends a ping, giving up at deadline, with the same
	// concurrency guarantee as WriteClose.
	WritePing(deadline time.Time) error
	// OnPong sets fn to be called, from within a read, when a pong arrives.
	OnPong(fn func())
	// SetReadDeadline sets the deadline of reads (keep-alive, the wait for
	// the peer's close reply).
	SetReadDeadline(t time.Time) error
	// SetReadLimit sets the largest message a peer may send (0: no limit).
	SetReadLimit(n int64)
	// IsClose reports whether err, from ReadMessage, means that the peer's
	// close frame arrived.
	IsClose(err error) bool
	// Close closes the network connection at once, without a close frame.
	// It must be safe to call concurrently with every other method.
	Close() error
}

// Upgrader turns an HTTP request into a [Socket]. On failure it has written
// the HTTP error response itself.
type Upgrader interface {
	Upgrade(w http.ResponseWriter, r *http.Request) (Socket, error)
}

// Gorilla adapts a gorilla [websocket.Upgrader] (buffer sizes,
// subprotocols, compression, origin check) to [Upgrader]. A nil
// CheckOrigin is gorilla's same-origin check.
func Gorilla(u *websocket.Upgrader) Upgrader { return gorillaUpgrader{u} }

type gorillaUpgrader struct{ u *websocket.Upgrader }

func (g gorillaUpgrader) Upgrade(w http.ResponseWriter, r *http.Request) (Socket, error) {
	c, err := g.u.Upgrade(w, r, nil)
	if err != nil {
		return nil, err
	}
	return gorillaSocket{c}, nil
}

// defaultUpgrader is gorilla with a shared write buffer pool: an idle
// session holds no write buffer, which matters at 10,000 sessions.
func defaultUpgrader(checkOrigin func(*http.Request) bool) Upgrader {
	return Gorilla(&websocket.Upgrader{
		CheckOrigin:     checkOrigin,
		WriteBufferPool: &sync.Pool{},
	})
}

// gorillaSocket is a gorilla connection as a [Socket].
type gorillaSocket struct{ *websocket.Conn }

func (s gorillaSocket) WriteClose(code int, reason string, deadline time.Time) error {
	return s.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), deadline)
}

func (s gorillaSocket) WritePing(deadline time.Time) error {
	return s.WriteControl(websocket.PingMessage, nil, deadline)
}

func (s gorillaSocket) OnPong(fn func()) {
	s.SetPongHandler(func(string) error { fn(); return nil })
}

// IsClose is true for a close frame from the peer; gorilla reports a
// connection lost without one as a CloseError with 1006, which no peer
// sends.
func (s gorillaSocket) IsClose(err error) bool {
	var ce *websocket.CloseError
	return errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure
}

// originChecker builds the check of [Config.AllowedOrigins]; nil (gorilla's
// same-origin check) when there is none.
func originChecker(allowed []string) func(*http.Request) bool {
	if len(allowed) == 0 {
		return nil
	}
	full := map[string]bool{}
	hosts := map[string]bool{}
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == "*" {
			return func(*http.Request) bool { return true }
		}
		if strings.Contains(a, "://") {
			full[strings.TrimSuffix(a, "/")] = true
		} else {
			hosts[a] = true
		}
	}
	return func(r *http.Request) bool {
		origin := r.Header.Get("Origin")
		if origin == "" {
			return true // not a browser
		}
		origin = strings.ToLower(origin)
		if full[origin] {
			return true
		}
		u, err := url.Parse(origin)
		return err == nil && hosts[u.Host]
	}
}

// WebSocket returns a handler that upgrades the request, registers the
// session and runs h with the connection and a context that ends when the
// registry ends the session in the stop phase, at its turn in the close
// window (or when the request ends). The context carries the
// request's values; [Request] returns the request itself. When h returns
// the session is closed: with 1000, or 1011 if h returned an error that is
// not about the connection closing, or with [Config.CloseCode] in the stop
// phase; the handler then waits (bounded) for the peer's close reply.
//
// In the stop phase (not before: the drain phase still accepts sessions), a
// new request gets 503 with Retry-After. A failed upgrade has been answered
// by the upgrader (400, 403) and is logged at debug level.
//
// The handler mounts on any router: [http.ServeMux] takes it as is
// (mux.Handle("GET /ws", reg.WebSocket(fn))), echo through
// echo.WrapHandler. The response writer must support hijacking, as
// net/http's does.
func (r *Registry) WebSocket(h func(ctx context.Context, conn Conn) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.serveWebSocket(w, req, h)
	})
}

func (r *Registry) serveWebSocket(w http.ResponseWriter, req *http.Request, h func(context.Context, Conn) error) {
	if r.Stopping() {
		r.refuse(w, KindWebSocket)
		return
	}
	sock, err := r.up.Upgrade(w, req)
	if err != nil {
		r.log.Debug("websocket upgrade", zap.Error(err), zap.String("remote", req.RemoteAddr))
		return
	}
	if !claim(sock) {
		// The HTTP server's stop deadline came between the upgrade and
		// now: it has closed the connection and counted it.
		_ = sock.Close()
		return
	}
	if r.cfg.ReadLimit > 0 { // negative: no limit
		sock.SetReadLimit(r.cfg.ReadLimit)
	}
	ctx, cancel := context.WithCancel(withRequest(req))
	defer cancel()
	s := r.newSession(KindWebSocket, cancel)
	s.sock = sock
	var herr error
	defer func() { r.remove(s, r.endWebSocket(s, herr)) }()
	r.registered(s)

	if r.cfg.PingInterval > 0 {
		stop := r.keepAlive(sock)
		defer stop()
	}
	herr = h(ctx, sock)
}

// hijackClaimer is httpmod.HijackClaimer, which wsmod does not import (it
// runs on any server): a hijacked connection that the server would
// otherwise close and count at its stop deadline, unless claimed.
type hijackClaimer interface {
	ClaimHijacked() bool
}

// claim tells the HTTP server, if it tracks hijacked connections
// (httpmod's does), that the registry ends and counts sock's connection
// itself: each session is counted once, by the registry. It reports false
// if the server has already cut the connection at its stop deadline. A
// [Socket] takes part if it has gorilla's NetConn method.
func claim(sock Socket) bool {
	nc, ok := sock.(interface{ NetConn() net.Conn })
	if !ok {
		return true
	}
	c, ok := nc.NetConn().(hijackClaimer)
	return !ok || c.ClaimHijacked()
}

// keepAlive pings the peer every PingInterval and keeps a read deadline
// that every pong extends. The returned function stops the pinger and
// waits for it.
func (r *Registry) keepAlive(sock Socket) (stop func()) {
	wait := r.cfg.PingInterval + r.cfg.PongTimeout
	_ = sock.SetReadDeadline(time.Now().Add(wait))
	sock.OnPong(func() { _ = sock.SetReadDeadline(time.Now().Add(wait)) })
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(r.cfg.PingInterval)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				if err := sock.WritePing(time.Now().Add(r.cfg.WriteTimeout)); err != nil {
					return
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		sock.OnPong(func() {})
	}
}

// sendClose writes the close frame once per session.
func (r *Registry) sendClose(s *session, code int, reason string) {
	if !s.closing.CompareAndSwap(false, true) {
		return
	}
	if err := s.sock.WriteClose(code, reason, time.Now().Add(r.cfg.WriteTimeout)); err != nil {
		r.log.Debug("websocket close frame", zap.Error(err))
	}
}

// endWebSocket ends a session whose handler has returned: close frame (if
// not out yet), the wait for the peer's close reply, then the network
// close. It returns how the session ended.
func (r *Registry) endWebSocket(s *session, herr error) outcome {
	sock := s.sock
	stopping := r.stopping.Load()
	switch {
	case stopping:
		r.sendClose(s, r.cfg.CloseCode, r.cfg.CloseReason)
	case herr != nil && !s.closing.Load() && !sock.IsClose(herr) && !connEnded(herr):
		r.log.Warn("websocket handler", zap.Error(herr))
		r.sendClose(s, CloseInternalError, "")
	default:
		r.sendClose(s, CloseNormalClosure, "")
	}
	// In the stop phase the registry force-closes at its deadline; outside
	// it, CloseTimeout bounds the wait here.
	deadline := time.Time{}
	if !stopping {
		deadline = time.Now().Add(r.cfg.CloseTimeout)
	}
	_ = sock.SetReadDeadline(deadline)
	peerClosed := false
	for {
		if _, _, err := sock.ReadMessage(); err != nil {
			peerClosed = sock.IsClose(err)
			break
		}
	}
	_ = sock.Close()
	switch {
	case s.forced.Load():
		return outcomeForced
	case peerClosed:
		return outcomeClean
	default:
		return outcomeAborted
	}
}

// connEnded reports whether a handler's error only says that the
// connection ended (the peer left, a deadline, the close frame already
// out), which is no failure of the handler.
func connEnded(err error) bool {
	var ce *websocket.CloseError
	var ne net.Error
	// ErrReadLimit: the peer sent a message over Config.ReadLimit and gorilla
	// has already answered with close 1009.
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, websocket.ErrReadLimit) ||
		errors.Is(err, net.ErrClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
