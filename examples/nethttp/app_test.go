package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/lifecycle/lifecycletest"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
)

// The service on ServeMux, in process, under the test kit: every route
// has a client attached while the kubelet's preStop (or SIGTERM's drain)
// runs; nothing is lost and the states come in order.
func TestInProcessNothingLost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(adminURL string) lifecycletest.Termination
	}{
		{"prestop", func(adminURL string) lifecycletest.Termination {
			return lifecycletest.Prestop(adminURL+probemod.PathPrestop, nil)
		}},
		{"signal", func(string) lifecycletest.Termination { return lifecycletest.Signal() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := map[string]string{"SHUTDOWN_DRAIN_DELAY": "300ms", "SHUTDOWN_DRAIN_QUIET": "0s"}
			cfg, err := modules.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			cfg.HTTP.Addr, cfg.Probe.Addr = "127.0.0.1:0", "127.0.0.1:0"
			cfg.Lifecycle.IgnoreSignals = true // no real signals in a test binary

			var (
				coord *lifecycle.Coordinator
				srv   *httpmod.Server
				admin *probemod.Admin
			)
			fxapp := fxtest.New(t, app(cfg), fx.Populate(&coord, &srv, &admin))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			k, err := lifecycletest.Start(ctx, fxapp, coord)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(k.Close)
			base := "http://" + srv.Addr().String()
			for _, err := range []error{
				k.HTTP(http.MethodGet, base+"/", nil),
				k.HTTP(http.MethodPost, base+"/echo", []byte("hello")),
				k.HTTP(http.MethodGet, base+"/slow?ms=200", nil),
				k.WebSocket("ws://" + srv.Addr().String() + "/ws"),
				k.SSE(base + "/events"),
			} {
				if err != nil {
					t.Fatal(err)
				}
			}
			res := k.Terminate(ctx, tt.give("http://"+admin.Addr().String()))
			if err := res.Err(); err != nil {
				t.Fatalf("%v\n%v", err, res)
			}
			if ws := res.WebSocket[0]; ws.CloseCode != 1001 {
				t.Errorf("websocket closed with %d, want 1001", ws.CloseCode)
			}
			if sse := res.SSE[0]; sse.LastEvent != "shutdown" {
				t.Errorf("stream ended with %q, want the final event", sse.LastEvent)
			}
			t.Log(res)
		})
	}
}
