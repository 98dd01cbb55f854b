package lifecycletest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gorilla/websocket"

	"github.com/drainfx/drainfx/internal/loadclient"
)

// keptErrors is how many error messages a client keeps.
const keptErrors = 5

// stillOpen is the loss of a session that had not ended when the app had
// stopped (and the kit had waited [WithEndTimeout] more).
const stillOpen = "still open after the app had stopped"

// httpClient sends one request after another on keep-alive connections.
type httpClient struct {
	k      *Kit
	body   []byte
	header http.Header
	tr     *http.Transport
	client *http.Client
	stats  HTTPStats
}

// HTTPOption sets a request of a [Kit.HTTP] client.
type HTTPOption func(*httpClient)

// Header adds a header to every request of a [Kit.HTTP] client (repeat it
// for several): Header("Content-Type", "application/json").
func Header(key, value string) HTTPOption {
	return func(h *httpClient) { h.header.Add(key, value) }
}

// HTTP attaches a keep-alive client that sends method url (with body, if
// not nil, and the headers of opts) again and again until the drain is
// over, and returns once its first request has been answered 2xx. Every
// later request that fails or gets another status is lost; a body is never
// replayed.
func (k *Kit) HTTP(method, url string, body []byte, opts ...HTTPOption) error {
	if err := k.attachable(); err != nil {
		return err
	}
	tr := k.transport()
	h := &httpClient{k: k, body: body, header: http.Header{}, tr: tr, client: &http.Client{Transport: tr},
		stats: HTTPStats{Method: method, URL: url}}
	for _, o := range opts {
		o(h)
	}
	ctx, cancel := context.WithTimeout(k.ctx, k.o.attachWithin)
	closeConn, err := h.do(ctx)
	cancel()
	if err != nil {
		tr.CloseIdleConnections()
		return fmt.Errorf("lifecycletest: attach %s %s: %w", method, url, err)
	}
	h.record(closeConn, nil)
	k.https = append(k.https, h)
	k.wg.Add(1)
	go h.run()
	return nil
}

func (h *httpClient) run() {
	defer h.k.wg.Done()
	t := time.NewTimer(h.k.o.interval)
	defer t.Stop()
	for {
		select {
		case <-h.k.stop:
			return
		case <-t.C:
		}
		closeConn, err := h.do(h.k.ctx)
		if errors.Is(err, errMoved) {
			h.stats.Moved = true
			return
		}
		h.record(closeConn, err)
		t.Reset(h.k.o.interval)
	}
}

func (h *httpClient) record(closeConn bool, err error) {
	switch {
	case err == nil:
		h.stats.OK++
		if closeConn {
			h.stats.ConnClose++
		}
	default:
		if h.k.forced.Load() {
			err = fmt.Errorf("%s: %w", stillOpen, err)
		}
		h.stats.Lost++
		if len(h.stats.Errors) < keptErrors {
			h.stats.Errors = append(h.stats.Errors, err.Error())
		}
	}
}

// do sends one request and reads its answer in full; closeConn is true if
// the answer carried Connection: close.
func (h *httpClient) do(ctx context.Context) (closeConn bool, err error) {
	a, err := loadclient.Send(ctx, h.client, h.stats.Method, h.stats.URL, h.header, h.body)
	return a.Close, err
}

// wsClient is one WebSocket session of echo round trips.
type wsClient struct {
	k     *Kit
	conn  *websocket.Conn
	stats WebSocketStats
}

// WebSocket attaches a client that opens one session to url (ws://…),
// sends a text message and waits for it to come back, again and again, and
// returns once the first message came back. The session must end with a
// close frame 1000, 1001 or 1012; any other end is lost.
func (k *Kit) WebSocket(url string) error {
	if err := k.attachable(); err != nil {
		return err
	}
	d := websocket.Dialer{NetDialContext: k.dial, HandshakeTimeout: k.o.attachWithin}
	ctx, cancel := context.WithTimeout(k.ctx, k.o.attachWithin)
	conn, _, err := d.DialContext(ctx, url, nil)
	cancel()
	if err != nil {
		return fmt.Errorf("lifecycletest: attach websocket %s: %w", url, err)
	}
	w := &wsClient{k: k, conn: conn, stats: WebSocketStats{URL: url}}
	_ = conn.SetReadDeadline(time.Now().Add(k.o.attachWithin))
	if err := w.exchange(0); err != nil {
		_ = conn.Close()
		return fmt.Errorf("lifecycletest: attach websocket %s: first echo: %w", url, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	k.wss = append(k.wss, w)
	k.wg.Add(1)
	go w.run()
	return nil
}

func (w *wsClient) run() {
	defer w.k.wg.Done()
	defer w.conn.Close()
	t := time.NewTimer(w.k.o.interval)
	defer t.Stop()
	for i := 1; ; i++ {
		select {
		case <-w.k.stop:
			// The app has stopped: the close frame should be here.
			w.end(w.awaitClose())
			return
		case <-t.C:
		}
		if err := w.exchange(i); err != nil {
			w.end(err)
			return
		}
		t.Reset(w.k.o.interval)
	}
}

// exchange sends message i and reads until its echo comes back.
func (w *wsClient) exchange(i int) error {
	msg := fmt.Sprintf("lifecycletest %d", i)
	if err := w.conn.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		// The server may have sent its close frame already: read it.
		if rerr := w.awaitClose(); isCloseError(rerr) {
			return rerr
		}
		return err
	}
	_, p, err := w.conn.ReadMessage()
	switch {
	case err != nil:
		w.stats.Unanswered++
		return err
	case string(p) != msg:
		return fmt.Errorf("got %.40q, want the echo %q", p, msg)
	}
	w.stats.Echoed++
	return nil
}

// awaitClose reads until the session ends (gorilla answers a close frame).
func (w *wsClient) awaitClose() error {
	for {
		if _, _, err := w.conn.ReadMessage(); err != nil {
			return err
		}
	}
}

func isCloseError(err error) bool {
	_, ok := errors.AsType[*websocket.CloseError](err)
	return ok
}

func (w *wsClient) end(err error) {
	if ce, ok := errors.AsType[*websocket.CloseError](err); ok {
		w.stats.CloseCode, w.stats.CloseText = ce.Code, ce.Text
		if loadclient.CleanClose(ce.Code) {
			return
		}
		if !w.k.forced.Load() {
			w.stats.Err = fmt.Sprintf("closed with %d %q", ce.Code, ce.Text)
			return
		}
	}
	if w.k.forced.Load() {
		w.stats.Err = stillOpen
		return
	}
	w.stats.Err = err.Error()
}

// sseClient reads one event stream to its end.
type sseClient struct {
	k      *Kit
	tr     *http.Transport
	body   io.ReadCloser
	events *loadclient.EventReader
	cancel context.CancelFunc
	stats  SSEStats
}

// SSE attaches a client that opens one event stream at url and reads it to
// its end, and returns once the first event has arrived. The stream must
// end cleanly (the body's end, io.EOF); any other end is lost.
func (k *Kit) SSE(url string) error {
	if err := k.attachable(); err != nil {
		return err
	}
	tr := k.transport()
	ctx, cancel := context.WithCancel(k.ctx)
	fail := func(err error) error {
		cancel()
		tr.CloseIdleConnections()
		return fmt.Errorf("lifecycletest: attach sse %s: %w", url, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fail(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	timer := time.AfterFunc(k.o.attachWithin, cancel)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		timer.Stop()
		return fail(err)
	}
	s := &sseClient{k: k, tr: tr, body: resp.Body, events: loadclient.NewEventReader(resp.Body), cancel: cancel,
		stats: SSEStats{URL: url}}
	if resp.StatusCode != http.StatusOK {
		timer.Stop()
		resp.Body.Close()
		return fail(fmt.Errorf("answered %s", resp.Status))
	}
	err = s.readEvent()
	if !timer.Stop() && err == nil {
		err = errors.New("no event in time")
	}
	if err != nil {
		resp.Body.Close()
		return fail(err)
	}
	k.sses = append(k.sses, s)
	k.wg.Add(1)
	go s.run()
	return nil
}

func (s *sseClient) run() {
	defer s.k.wg.Done()
	defer s.cancel()
	defer s.body.Close()
	for {
		if err := s.readEvent(); err != nil {
			s.end(err)
			return
		}
	}
}

// readEvent reads one event.
func (s *sseClient) readEvent() error {
	ev, err := s.events.Next()
	if err != nil {
		return err
	}
	s.stats.Events++
	s.stats.LastEvent = ev.Type
	return nil
}

func (s *sseClient) end(err error) {
	switch {
	case err == io.EOF:
		// clean
	case s.k.forced.Load():
		s.stats.Err = stillOpen
	default:
		s.stats.Err = err.Error()
	}
}
