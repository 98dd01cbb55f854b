package wsmod_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/fx"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

// A WebSocket echo route whose sessions end with 1001 when the app stops.
// The HTTP server here stands in for httpmod.
func Example() {
	var (
		r    *wsmod.Registry
		addr string
	)
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		lifecycle.AppOptions,
		wsmod.Module,
		fx.Supply(lifecycle.Config{DrainDelay: 10 * time.Millisecond, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Invoke(func(lc fx.Lifecycle, c *lifecycle.Coordinator, reg *wsmod.Registry) {
			mux := http.NewServeMux()
			mux.Handle("GET /ws", reg.WebSocket(func(ctx context.Context, conn wsmod.Conn) error {
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
			srv := &http.Server{Handler: mux}
			served := make(chan struct{})
			var started atomic.Bool
			// The server shuts down in the stop phase, in parallel with the
			// registry closing the sessions.
			c.AtStop("http", func(ctx context.Context) error {
				if !started.Load() {
					return nil
				}
				err := srv.Shutdown(ctx)
				<-served
				return err
			})
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error {
					ln, err := net.Listen("tcp", "127.0.0.1:0")
					if err != nil {
						return err
					}
					addr = ln.Addr().String()
					go func() { defer close(served); _ = srv.Serve(ln) }()
					started.Store(true)
					return nil
				},
				OnStop: c.Stop, // asks for the stop, waits for the shutdown
			})
		}),
		fx.Populate(&r),
	)
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}

	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	_ = conn.WriteMessage(websocket.TextMessage, []byte("hello"))
	_, p, _ := conn.ReadMessage()
	fmt.Printf("echo: %s\n", p)

	closed := make(chan error, 1)
	go func() {
		_, _, err := conn.ReadMessage() // replies to the close frame
		closed <- err
	}()
	if err := app.Stop(ctx); err != nil {
		fmt.Println(err)
	}
	var ce *websocket.CloseError
	if errors.As(<-closed, &ce) {
		fmt.Printf("client: close %d %q\n", ce.Code, ce.Text)
	}
	st := r.Stats().WebSocket
	fmt.Printf("sessions: clean %d, forced %d\n", st.Clean, st.Forced)
	// Output:
	// echo: hello
	// client: close 1001 "server shutting down"
	// sessions: clean 1, forced 0
}

func ExampleRegistry_SSE() {
	c, _ := lifecycle.New(lifecycle.Config{IgnoreSignals: true})
	defer c.Stop(context.Background())
	r, _ := wsmod.New(wsmod.Config{}, c)
	mux := http.NewServeMux()
	// A "data: N" event every 100ms until the stop phase, which adds
	// "event: shutdown" with a retry hint and ends the body cleanly.
	mux.Handle("GET /events", r.SSE(func(ctx context.Context, s *wsmod.Stream) error {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for n := 0; ; n++ {
			if err := s.Send(wsmod.Event{Data: fmt.Sprint(n)}); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}))
	fmt.Println(r.Config().FinalEvent.Event, r.Config().FinalEvent.Retry)
	// Output: shutdown 1s
}
