package main

import (
	"context"
	"database/sql"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/lifecycle/lifecycletest"
	"github.com/drainfx/drainfx/modules/kubemod"
	"github.com/drainfx/drainfx/probemod"
)

// env is a fixed environment for loadConfig.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

// The whole service, in process, under the test kit: every route has a
// client attached while the kubelet's preStop (or SIGTERM's drain) runs;
// nothing is lost, the phases come in order, and the teardown runs the
// worker before the pool.
func TestInProcessNothingLost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(adminURL string) lifecycletest.Termination
	}{
		{"prestop", func(adminURL string) lifecycletest.Termination {
			return lifecycletest.Prestop(adminURL+probemod.PathPrestop, http.Header{probemod.PrestopHeader: {"s3cret"}})
		}},
		{"signal", func(string) lifecycletest.Termination { return lifecycletest.Signal() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg, err := loadConfig(env{
				"SHUTDOWN_DRAIN_DELAY": "300ms",
				"PRESTOP_TOKEN":        "s3cret",
				"DATA_DIR":             dir,
			}.lookup)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Web.HTTP.Addr, cfg.Web.Probe.Addr = "127.0.0.1:0", "127.0.0.1:0"
			cfg.Web.Lifecycle.IgnoreSignals = true // no real signals in a test binary

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
				k.HTTP(http.MethodPost, base+"/hits", nil),
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
			t.Log(res)

			var hooks []string
			for _, h := range res.Report.Hooks {
				if h.Phase == lifecycle.StateTearingDown.String() {
					hooks = append(hooks, h.Name)
				}
			}
			if len(hooks) != 2 || hooks[0] != "worker presence" || hooks[1] != "sql" {
				t.Errorf("teardown hooks %q, want the worker, then the pool", hooks)
			}
			// The worker removed its presence row before the pool closed.
			db, err := sql.Open("sqlite", filepath.Join(dir, "app.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var rows, hits int
			if err := db.QueryRow(`SELECT count(*) FROM instances`).Scan(&rows); err != nil || rows != 0 {
				t.Errorf("presence rows after the stop: %d, %v; want 0", rows, err)
			}
			if err := db.QueryRow(`SELECT n FROM hits WHERE id = 1`).Scan(&hits); err != nil || hits != res.HTTP[3].OK {
				t.Errorf("hits = %d, %v; want the %d POST /hits answered", hits, err, res.HTTP[3].OK)
			}
		})
	}
}

// The pod's deadline from the Kubernetes API (modules/kubemod) is on with
// POD_NAME, as the manifests in k8s/ set it from the downward API, and off
// without it.
func TestK8sDeadlineModuleFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give env
		want string
	}{
		{"downward API", env{"POD_NAME": "drainfx-service-7d4b9-x2x8p", "POD_NAMESPACE": "shop"},
			"pod deadline from the API: on"},
		{"no POD_NAME", env{}, "pod deadline from the API: off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.give["DATA_DIR"] = t.TempDir()
			tt.give["SHUTDOWN_DRAIN_DELAY"], tt.give["SHUTDOWN_DRAIN_QUIET"] = "0s", "0s" // no drain to wait for
			cfg, err := loadConfig(tt.give.lookup)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Web.HTTP.Addr, cfg.Web.Probe.Addr = "127.0.0.1:0", "127.0.0.1:0"
			cfg.Web.Lifecycle.IgnoreSignals = true
			core, logs := observer.New(zapcore.InfoLevel)
			var w *kubemod.Watcher
			fxapp := fxtest.New(t, app(cfg), fx.Supply(zap.New(core)), fx.Populate(&w))
			fxapp.RequireStart()
			t.Cleanup(fxapp.RequireStop)
			got := logs.FilterField(zap.String("component", "kube")).AllUntimed()
			if len(got) != 1 || !strings.HasPrefix(got[0].Message, tt.want) {
				t.Fatalf("the module's lines %v, want %q", got, tt.want)
			}
			if pod, _ := got[0].ContextMap()["pod"].(string); tt.give["POD_NAME"] != "" && pod != "shop/"+tt.give["POD_NAME"] {
				t.Errorf("pod %q, want shop/%s", pod, tt.give["POD_NAME"])
			}
		})
	}
}
