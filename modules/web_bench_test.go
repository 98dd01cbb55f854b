package modules_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
)

// BenchmarkWebStartStop is one whole life of an app, fx.New to the end of
// app.Stop, with one route: the Web bundle (coordinator with its signal
// handler, public server, admin server with probes and /metrics, report)
// with no drain delay, against a bare fx app that starts and stops one
// net/http server by hand. Both listen on 127.0.0.1:0 and log nothing.
func BenchmarkWebStartStop(b *testing.B) {
	ok := func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }
	run := func(b *testing.B, opts ...fx.Option) {
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			app := fx.New(opts...)
			if err := app.Start(ctx); err != nil {
				b.Fatal(err)
			}
			if err := app.Stop(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("bundle", func(b *testing.B) {
		run(b,
			modules.Web(modules.Config{
				Lifecycle: lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None},
				HTTP:      httpmod.Config{Addr: "127.0.0.1:0"},
				Probe:     probemod.Config{Addr: "127.0.0.1:0"},
			}),
			httpmod.AsRoute(func() httpmod.Route {
				return httpmod.RouteFunc(func(mux *http.ServeMux) { mux.HandleFunc("GET /{$}", ok) })
			}),
		)
	})
	b.Run("baseline=fx+net/http", func(b *testing.B) {
		run(b, fx.NopLogger, fx.Invoke(func(lc fx.Lifecycle) {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /{$}", ok)
			srv := &http.Server{Handler: mux}
			done := make(chan struct{})
			lc.Append(fx.Hook{
				OnStart: func(ctx context.Context) error {
					var lc net.ListenConfig
					ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
					if err != nil {
						return err
					}
					go func() {
						defer close(done)
						if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
							b.Error(err)
						}
					}()
					return nil
				},
				OnStop: func(ctx context.Context) error {
					err := srv.Shutdown(ctx)
					<-done
					return err
				},
			})
		}))
	})
}
