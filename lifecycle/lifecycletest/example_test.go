package lifecycletest_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/lifecycle/lifecycletest"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
	"github.com/drainfx/drainfx/wsmod"
)

// An app with a page, a WebSocket echo and an event stream is terminated
// the way the kubelet does it — preStop, then SIGTERM — while a keep-alive
// client, a WebSocket client and an SSE reader are attached. In a test,
// build the app with fxtest.New(t, …) instead and fail on res.Err().
func Example() {
	var (
		coord *lifecycle.Coordinator
		srv   *httpmod.Server
		admin *probemod.Admin
	)
	app := fx.New(
		modules.Web(modules.Config{
			Lifecycle: lifecycle.Config{DrainDelay: 200 * time.Millisecond, IgnoreSignals: true},
			HTTP:      httpmod.Config{Addr: "127.0.0.1:0"},
			Probe:     probemod.Config{Addr: "127.0.0.1:0"},
		}),
		wsmod.Module,
		httpmod.AsRoute(func(reg *wsmod.Registry) httpmod.Route {
			return httpmod.RouteFunc(func(mux *http.ServeMux) {
				mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
				mux.Handle("GET /ws", reg.WebSocket(func(_ context.Context, conn wsmod.Conn) error {
					for {
						mt, p, err := conn.ReadMessage()
						if err != nil {
							return err
						}
						if err := conn.WriteMessage(mt, p); err != nil {
							return err
						}
					}
				}))
				mux.Handle("GET /events", reg.SSE(func(ctx context.Context, s *wsmod.Stream) error {
					for n := 0; ; n++ {
						if err := s.Send(wsmod.Event{Data: fmt.Sprint(n)}); err != nil {
							return err
						}
						select {
						case <-ctx.Done():
							return nil
						case <-time.After(50 * time.Millisecond):
						}
					}
				}))
			})
		}),
		fx.Populate(&coord, &srv, &admin),
	)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k, err := lifecycletest.Start(ctx, app, coord)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer k.Close()
	base := srv.Addr().String()
	for _, err := range []error{
		k.HTTP(http.MethodGet, "http://"+base+"/", nil),
		k.WebSocket("ws://" + base + "/ws"),
		k.SSE("http://" + base + "/events"),
	} {
		if err != nil {
			fmt.Println(err)
			return
		}
	}

	res := k.Terminate(ctx, lifecycletest.Prestop("http://"+admin.Addr().String()+"/prestop", nil))
	fmt.Println("error:", res.Err())
	fmt.Println("states:", res.States())
	fmt.Println("drain began by:", res.Report.Reason)
	fmt.Println("websocket closed with:", res.WebSocket[0].CloseCode, res.WebSocket[0].CloseText)
	fmt.Println("last event:", res.SSE[0].LastEvent)
	fmt.Println("lost:", res.Lost())
	// Output:
	// error: <nil>
	// states: [serving draining drained stopping tearing down stopped]
	// drain began by: prestop
	// websocket closed with: 1001 server shutting down
	// last event: shutdown
	// lost: 0 requests, 0 WebSocket sessions, 0 SSE streams
}
