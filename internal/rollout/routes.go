package rollout

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// checkRoutes asks one ready pod, directly, for the streaming routes the
// load will use, before any load starts: a service without a WebSocket or
// an SSE route answers 404 (or 405), and every client of that kind would
// fail for the whole run. Said at once, with the flag that turns the kind
// off, instead of as losses at the end.
func (r *runner) checkRoutes(ctx context.Context, p *pod) error {
	ld := r.cfg.Load
	checks := []struct {
		n          int
		path, flag string
		header     http.Header
	}{
		{ld.WebSocket, ld.WSPath, "-ws-path", http.Header{
			"Connection": {"Upgrade"}, "Upgrade": {"websocket"}, "Sec-Websocket-Version": {"13"},
			"Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="},
		}},
		{ld.SSE, ld.SSEPath, "-sse-path", http.Header{"Accept": {"text/event-stream"}}},
	}
	for _, c := range checks {
		if c.n == 0 || c.path == "" {
			continue
		}
		url := "http://" + net.JoinHostPort(p.Host, strconv.Itoa(p.Port)) + c.path
		status, err := r.headStatus(ctx, url, c.header)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", c.flag, url, err)
		}
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s: the service answers %d %s: give %s '' if it has no such route, or the right path",
				c.flag, c.path, status, http.StatusText(status), c.flag)
		}
	}
	return nil
}

// headStatus sends GET url with header and returns the status, without
// reading a body that may never end (a stream).
func (r *runner) headStatus(ctx context.Context, url string, header http.Header) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	req.Header = header
	resp, err := r.kubelet.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 { // an error page: read it, so the connection ends cleanly
		_, _ = io.CopyN(io.Discard, resp.Body, 4096)
	}
	return resp.StatusCode, nil
}
