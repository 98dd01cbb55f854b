package httpmod_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
)

const waitTimeout = servertest.WaitTimeout

var quick = servertest.Quick

// okHandler answers 200 "ok".
func okHandler(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }

// muxOf returns a ServeMux with each pattern of routes handled by its
// function.
func muxOf(routes map[string]http.HandlerFunc) *http.ServeMux {
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, h)
	}
	return mux
}

// okMux serves GET / with okHandler.
func okMux() *http.ServeMux { return muxOf(map[string]http.HandlerFunc{"GET /": okHandler}) }

// stuck is a GET /block handler that ignores its context, as a stuck
// handler does, until the test closes release.
type stuck struct {
	entered chan struct{} // closed when the handler runs
	release chan struct{} // close to let the handler return
}

func newStuck() *stuck { return &stuck{entered: make(chan struct{}), release: make(chan struct{})} }

// mux serves GET /block.
func (h *stuck) mux() *http.ServeMux {
	return muxOf(map[string]http.HandlerFunc{"GET /block": func(w http.ResponseWriter, _ *http.Request) {
		close(h.entered)
		<-h.release
		w.WriteHeader(http.StatusOK)
	}})
}

// request sends GET /block to s from a goroutine and waits until the
// handler runs. The client's error arrives on the channel (nil: it got an
// answer).
func (h *stuck) request(t *testing.T, s *httpmod.Server) <-chan error {
	t.Helper()
	client := servertest.NewClient(t)
	clientErr := make(chan error, 1)
	go func() {
		resp, err := client.Get("http://" + s.Addr().String() + "/block")
		if err == nil {
			resp.Body.Close()
		}
		clientErr <- err
	}()
	waittest.Recv(t, h.entered, waitTimeout, "the blocked handler")
	return clientErr
}
