package probemod

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/lifecycle"
)

// A Serve error (here: the listener closed under the server) asks the app
// to stop with exit code 1.
func TestServeErrorStopsTheApp(t *testing.T) {
	t.Parallel()
	var a *Admin
	app := fxtest.New(t,
		lifecycle.Module,
		Module,
		fx.Supply(lifecycle.Config{IgnoreSignals: true, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None}, Config{Addr: "127.0.0.1:0"}),
		fx.Populate(&a),
	).RequireStart()
	wait := app.Wait()
	a.mu.Lock()
	_ = a.ln.Close()
	a.mu.Unlock()
	select {
	case sig := <-wait:
		if sig.ExitCode != 1 {
			t.Errorf("shutdown exit code %d, want 1", sig.ExitCode)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no shutdown after the admin server failed")
	}
	app.RequireStop()
}

func TestVerbose(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give string
		want bool
	}{
		{"", false},
		{"verbose", true},
		{"verbose=", true},
		{"verbose=0", true}, // any value, as the apiserver reads it
		{"a=1&verbose", true},
		{"verbose&a=1", true},
		{"verbosely", false},
		{"a=verbose", false},
		{"xverbose=1", false},
	}
	for _, tt := range tests {
		r := &http.Request{URL: &url.URL{RawQuery: tt.give}}
		if got := verbose(r); got != tt.want {
			t.Errorf("verbose(?%s) = %v, want %v", tt.give, got, tt.want)
		}
	}
}
