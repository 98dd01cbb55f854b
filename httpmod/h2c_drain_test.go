package httpmod_test

import (
	"io"
	"net/http"
	"net/http/httptrace"
	"testing"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
)

// An h2c client multiplexes its requests over one connection, so a
// Connection: close per response cannot move it: net/http turns the header
// into a GOAWAY, and the client's next requests go out on a new connection
// (through the proxy, to another pod) — with every response intact.
func TestH2CDrainMovesClientsWithGOAWAY(t *testing.T) {
	t.Parallel()
	s, c := servertest.Start(t, quick, httpmod.Config{H2C: true}, okMux())
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: waitTimeout}
	url := "http://" + s.Addr().String() + "/"

	// get answers whether the request went out on a connection used before.
	get := func() (reused bool) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || string(body) != "ok" {
			t.Fatalf("GET = %d over HTTP/%d, body %q, %v; want 200 ok over HTTP/2", resp.StatusCode, resp.ProtoMajor, body, err)
		}
		return reused
	}

	get()
	if !get() {
		t.Fatal("before the drain the h2c connection was not reused")
	}
	c.BeginDrain("test")
	// The first response during the drain comes on the old connection and
	// carries the GOAWAY; the client's requests then move to a new one.
	waittest.Eventually(t, waitTimeout, func() bool { return !get() }, "a request on a new connection after GOAWAY")
}

// The stop waits for the HTTP/1 connections to close before Shutdown; an
// h2c connection is not one of them (Shutdown sends it a GOAWAY): an idle
// one does not hold the stop phase to its deadline.
func TestH2CConnectionDoesNotHoldTheStop(t *testing.T) {
	t.Parallel()
	s, c := servertest.Start(t, quick, httpmod.Config{H2C: true}, okMux()) // stop deadline: 26s after D0
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: tr, Timeout: waitTimeout}
	resp, err := client.Get("http://" + s.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("HTTP/%d, want 2", resp.ProtoMajor)
	}
	r := servertest.WaitReport(t, c) // fails after 10s: the connection is still open, idle
	if r.ExitCode != 0 || r.Hooks[0].Err != "" {
		t.Errorf("report: cut %v, hooks %+v", r.Cut, r.Hooks)
	}
	tr.CloseIdleConnections()
}
