package modules_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// An SSE stream opened before D0 keeps its connection alive. When the
// registry ends the stream at the stop phase, that connection must close
// with it (keep-alives are off from the stop phase on): a reader that
// reconnects at once would otherwise reuse it and reach a pod that refuses
// new streams (503 — fatal to a browser's EventSource), in the moment
// before Shutdown closes idle connections.
func TestStreamEndedAtStopClosesItsConnection(t *testing.T) {
	t.Parallel()
	c, err := lifecycle.New(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := wsmod.New(wsmod.Config{}, c)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	mux.Handle("GET /events", reg.SSE(func(ctx context.Context, s *wsmod.Stream) error {
		if err := s.Send(wsmod.Event{Data: "hello"}); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}))
	srv, err := httpmod.New(httpmod.Config{Addr: "127.0.0.1:0"}, c, mux)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c.MarkStarted()
	stopped := make(chan error, 1)
	defer func() {
		if err := <-stopped; err != nil {
			t.Error(err)
		}
	}()

	conn, err := net.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second)) // a bound on a hang, not a wait
	if _, err := io.WriteString(conn, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Close {
		t.Fatal("the stream was opened before D0 but its response says Connection: close")
	}
	first := make([]byte, len("data: hello\n\n"))
	if _, err := io.ReadFull(resp.Body, first); err != nil || string(first) != "data: hello\n\n" {
		t.Fatalf("first event %q, %v", first, err)
	}

	// The stop phase begins: the registry ends the stream while the server
	// shuts down.
	go func() { stopped <- c.Stop(ctx) }()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(rest), "event: shutdown") {
		t.Fatalf("stream end %q, %v; want the final event then a clean end", rest, err)
	}
	// A reader reconnecting at once on the same connection must find it closed.
	_, werr := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if werr == nil {
		if resp2, err := http.ReadResponse(br, nil); err == nil {
			t.Fatalf("the connection stayed open after the stream ended: a second request got %s", resp2.Status)
		} else if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
			t.Fatalf("second request: %v, want the connection closed", err)
		}
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}
