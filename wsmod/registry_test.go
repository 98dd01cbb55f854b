package wsmod_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/wsmod"
)

func TestConfigDefaults(t *testing.T) {
	got := wsmod.Config{}.WithDefaults()
	want := wsmod.Config{
		CloseCode:    1001,
		CloseReason:  "server shutting down",
		CloseTimeout: 5 * time.Second,
		WriteTimeout: time.Second,
		RetryAfter:   time.Second,
		ReadLimit:    1 << 20,
		FinalEvent:   wsmod.Event{Event: "shutdown", Data: "server shutting down", Retry: time.Second},
	}
	if got.CloseCode != want.CloseCode || got.CloseReason != want.CloseReason || got.CloseTimeout != want.CloseTimeout ||
		got.WriteTimeout != want.WriteTimeout || got.RetryAfter != want.RetryAfter || got.FinalEvent != want.FinalEvent ||
		got.PingInterval != 0 || got.PongTimeout != 0 || got.ReadLimit != 1<<20 {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
	if pt := (wsmod.Config{PingInterval: time.Second}).WithDefaults().PongTimeout; pt != time.Second {
		t.Errorf("PongTimeout default %v, want PingInterval", pt)
	}
	if got.CloseRate != 1000 || got.FinalEventRetryJitter != 500*time.Millisecond {
		t.Errorf("CloseRate %d, FinalEventRetryJitter %v; want 1000, 500ms", got.CloseRate, got.FinalEventRetryJitter)
	}
	kept := wsmod.Config{CloseRate: wsmod.AllAtOnce, FinalEventRetryJitter: -1}.WithDefaults()
	if kept.CloseRate != wsmod.AllAtOnce || kept.FinalEventRetryJitter != -1 {
		t.Errorf("CloseRate %d, FinalEventRetryJitter %v; want AllAtOnce and -1 kept", kept.CloseRate, kept.FinalEventRetryJitter)
	}
}

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		give    map[string]string
		want    int    // CloseRate
		wantErr string // "" for none
	}{
		{name: "unset", give: nil, want: 0},
		{name: "empty", give: map[string]string{wsmod.EnvCloseRate: ""}, want: 0},
		{name: "rate", give: map[string]string{wsmod.EnvCloseRate: "1000"}, want: 1000},
		{name: "zero: all at once", give: map[string]string{wsmod.EnvCloseRate: "0"}, want: wsmod.AllAtOnce},
		{name: "negative", give: map[string]string{wsmod.EnvCloseRate: "-5"}, wantErr: `SHUTDOWN_SESSION_CLOSE_RATE="-5"`},
		{name: "not a number", give: map[string]string{wsmod.EnvCloseRate: "2500/s"}, wantErr: `SHUTDOWN_SESSION_CLOSE_RATE="2500/s"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := wsmod.FromEnv(func(k string) (string, bool) { v, ok := tt.give[k]; return v, ok })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromEnv: %v, want an error with %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || cfg.CloseRate != tt.want {
				t.Errorf("FromEnv: CloseRate %d, %v; want %d", cfg.CloseRate, err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		give wsmod.Config
		want string // "" for valid
	}{
		{"zero", wsmod.Config{}, ""},
		{"service restart", wsmod.Config{CloseCode: 1012}, ""},
		{"private code", wsmod.Config{CloseCode: 4000}, ""},
		{"reserved code", wsmod.Config{CloseCode: 1006}, "CloseCode=1006"},
		{"out of range code", wsmod.Config{CloseCode: 999}, "CloseCode=999"},
		{"long reason", wsmod.Config{CloseReason: strings.Repeat("r", 124)}, "CloseReason="},
		{"negative timeout", wsmod.Config{CloseTimeout: -time.Second}, "CloseTimeout=-1s"},
		{"negative ping", wsmod.Config{PingInterval: -1}, "PingInterval=-1ns"},
		{"no read limit", wsmod.Config{ReadLimit: -1}, ""},
		{"empty origin", wsmod.Config{AllowedOrigins: []string{" "}}, "AllowedOrigins"},
		{"two at once", wsmod.Config{WriteTimeout: -1, RetryAfter: -1}, "WriteTimeout=-1ns is negative; RetryAfter=-1ns"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.give.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, wsmod.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: %v, want an ErrConfig with %q", err, tt.want)
			}
		})
	}
}

func TestNewNilCoordinator(t *testing.T) {
	if _, err := wsmod.New(wsmod.Config{}, nil); err == nil {
		t.Error("New with a nil coordinator: no error")
	}
}

func TestModuleBoot(t *testing.T) {
	var r *wsmod.Registry
	fxtest.New(t,
		fx.NopLogger,
		lifecycle.Module,
		wsmod.Module,
		fx.Supply(lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, IgnoreSignals: true}),
		fx.Populate(&r),
	).RequireStart().RequireStop()
	if !r.Stopping() || r.Len(wsmod.KindWebSocket) != 0 || r.Len(wsmod.KindSSE) != 0 {
		t.Errorf("after stop: stopping=%v, %d+%d sessions", r.Stopping(), r.Len(wsmod.KindWebSocket), r.Len(wsmod.KindSSE))
	}
}

func TestModuleInvalidConfig(t *testing.T) {
	app := fx.New(
		fx.NopLogger,
		lifecycle.Module,
		wsmod.Module,
		fx.Supply(lifecycle.Config{IgnoreSignals: true}, wsmod.Config{CloseCode: 1005}),
		fx.Invoke(func(*wsmod.Registry) {}),
	)
	if err := app.Err(); !errors.Is(err, wsmod.ErrConfig) || !strings.Contains(err.Error(), "CloseCode=1005") {
		t.Errorf("app error %v, want one naming CloseCode=1005", err)
	}
}

// Stop is bounded by its context even when the drain has not ended: the
// drain is cut short and the stop phase begins at once.
func TestStopBoundedByContext(t *testing.T) {
	c := newCoordinator(t, lifecycle.Config{DrainDelay: time.Hour, GracePeriod: 2 * time.Hour})
	r, err := wsmod.New(wsmod.Config{}, c)
	if err != nil {
		t.Fatal(err)
	}
	// Another stop participant holds the stop phase until the test lets it
	// go: Stop returns on its ctx, not because the shutdown got done first.
	release := make(chan struct{})
	c.AtStop("held", func(context.Context) error { <-release; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Stop: %v, want context.Canceled", err)
	}
	waittest.Recv(t, c.Reached(lifecycle.StateStopping), waitTimeout, "the stop phase")
	if !r.Stopping() {
		t.Error("the stop phase did not begin")
	}
	close(release)
	waittest.Recv(t, c.Reached(lifecycle.StateStopped), waitTimeout, "the shutdown to end")
	if by := c.Telemetry().Report().DrainEndedBy; by != lifecycle.DrainEndedAbort {
		t.Errorf("the drain ended by %q, want %q", by, lifecycle.DrainEndedAbort)
	}
}
