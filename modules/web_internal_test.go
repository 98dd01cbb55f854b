package modules

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

func internalConfig() Config {
	return Config{
		Lifecycle: lifecycle.Config{DrainDelay: 10 * time.Millisecond, IgnoreSignals: true},
		HTTP:      httpmod.Config{Addr: "127.0.0.1:0"},
		Probe:     probemod.Config{Addr: "127.0.0.1:0"},
	}
}

type missing struct{} // provided by no one

// With no *zap.Logger in the app, fx's errors (and only they) go to the
// bundle's error writer: a start or an fx.New that fails is never silent.
// With one, they go to it and nothing to the writer.
func TestWebFxErrorsWithoutLogger(t *testing.T) {
	t.Parallel()
	failStart := fx.Invoke(func(lc fx.Lifecycle) {
		lc.Append(fx.Hook{OnStart: func(context.Context) error { return errors.New("boom") }})
	})
	tests := []struct {
		name     string
		give     fx.Option
		giveZap  bool     // supply a *zap.Logger
		wantFail bool     // Start fails
		want     []string // in the writer's output; none: nothing written
	}{
		{name: "start fails", give: failStart, wantFail: true, want: []string{"HOOK OnStart", "failed", "boom"}},
		{name: "fx.New fails", give: fx.Invoke(func(missing) {}), wantFail: true, want: []string{"ERROR", "modules.missing"}},
		{name: "clean start and stop", give: fx.Options()},
		{name: "start fails, zap logger", give: failStart, giveZap: true, wantFail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			core, logs := observer.New(zap.InfoLevel)
			opts := []fx.Option{web(internalConfig(), &out), tt.give}
			if tt.giveZap {
				opts = append(opts, fx.Supply(zap.New(core)))
			}
			app := fx.New(opts...)
			err := app.Start(context.Background())
			if (err != nil) != tt.wantFail {
				t.Fatalf("Start() = %v, want failure %v", err, tt.wantFail)
			}
			if err == nil {
				if err := app.Stop(context.Background()); err != nil {
					t.Fatalf("Stop() = %v", err)
				}
			}
			got := out.String()
			if len(tt.want) == 0 && got != "" {
				t.Errorf("written:\n%s\nwant nothing", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("written:\n%s\nwant %q", got, w)
				}
			}
			if tt.giveZap && logs.FilterMessage("OnStart hook failed").Len() != 1 {
				t.Errorf("the zap logger has no \"OnStart hook failed\": %v", logs.All())
			}
		})
	}
}
