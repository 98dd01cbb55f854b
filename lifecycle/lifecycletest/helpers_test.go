package lifecycletest_test

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/fx"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/demo"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
	"github.com/drainfx/drainfx/probemod"
	"github.com/drainfx/drainfx/wsmod"
)

// webApp is a small drainfx app on free ports: GET /, POST /echo,
// GET /slow?ms=N, GET /ws (echo), GET /events (SSE), probes and preStop.
type webApp struct {
	Coord *lifecycle.Coordinator
	HTTP  *httpmod.Server
	Admin *probemod.Admin
}

func (a *webApp) url(path string) string   { return "http://" + a.HTTP.Addr().String() + path }
func (a *webApp) wsURL(path string) string { return "ws://" + a.HTTP.Addr().String() + path }
func (a *webApp) adminURL(path string) string {
	return "http://" + a.Admin.Addr().String() + path
}

// webOptions builds the app; populate a *webApp with fx.Populate of its
// fields (see populate).
func webOptions(lc lifecycle.Config) fx.Option {
	lc.IgnoreSignals = true // signals are the process tests' business
	return fx.Options(
		modules.Web(modules.Config{
			Lifecycle: lc,
			HTTP:      httpmod.Config{Addr: "127.0.0.1:0"},
			Probe:     probemod.Config{Addr: "127.0.0.1:0"},
		}),
		wsmod.Module,
		httpmod.AsRoute(func(reg *wsmod.Registry) httpmod.Route {
			return httpmod.RouteFunc(func(mux *http.ServeMux) {
				mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
				mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
					b, err := io.ReadAll(r.Body)
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					w.Header().Set("Content-Type", "application/octet-stream")
					_, _ = w.Write(b)
				})
				mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) { // JSON only
					if r.Header.Get("Content-Type") != "application/json" {
						http.Error(w, "want JSON", http.StatusUnsupportedMediaType)
						return
					}
					w.WriteHeader(http.StatusCreated)
					_, _ = io.WriteString(w, "taken")
				})
				mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
					ms, _ := strconv.Atoi(r.URL.Query().Get("ms"))
					select {
					case <-time.After(time.Duration(ms) * time.Millisecond):
						_, _ = io.WriteString(w, "ok")
					case <-r.Context().Done():
					}
				})
				mux.Handle("GET /ws", reg.WebSocket(demo.Echo))
				mux.Handle("GET /events", reg.SSE(demo.Ticks(50*time.Millisecond)))
			})
		}),
	)
}

func (a *webApp) populate() fx.Option { return fx.Populate(&a.Coord, &a.HTTP, &a.Admin) }
