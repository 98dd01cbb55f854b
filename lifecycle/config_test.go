package lifecycle_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/drainfx/drainfx/lifecycle"
)

const s = time.Second

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give lifecycle.Config
		want lifecycle.Config
	}{
		{
			name: "zero: the adaptive drain, its max all the room, the stop phase keeps 5s",
			give: lifecycle.Config{},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 5 * s, DrainQuiet: s, DrainMissProbability: 0.001, MaxDrainDelay: 21 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "fixed drain: the max is the drain delay",
			give: lifecycle.Config{DrainQuiet: lifecycle.None},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 5 * s, DrainQuiet: lifecycle.None, DrainMissProbability: 0.001, MaxDrainDelay: 5 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "adaptive drain: the max is all the room, the stop phase keeps 5s",
			give: lifecycle.Config{DrainQuiet: s},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 5 * s, DrainQuiet: s, DrainMissProbability: 0.001, MaxDrainDelay: 21 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "adaptive drain with a drain delay",
			give: lifecycle.Config{DrainDelay: 2 * s, DrainQuiet: s},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 2 * s, DrainQuiet: s, DrainMissProbability: 0.001, MaxDrainDelay: 21 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "adaptive drain: a short grace period leaves the stop phase half the room",
			give: lifecycle.Config{GracePeriod: 12 * s, DrainDelay: 3 * s, DrainQuiet: s},
			want: lifecycle.Config{GracePeriod: 12 * s, DrainDelay: 3 * s, DrainQuiet: s, DrainMissProbability: 0.001, MaxDrainDelay: 4 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "adaptive drain max never below the drain delay",
			give: lifecycle.Config{GracePeriod: 10 * s, DrainDelay: 5 * s, DrainQuiet: s},
			want: lifecycle.Config{GracePeriod: 10 * s, DrainDelay: 5 * s, DrainQuiet: s, DrainMissProbability: 0.001, MaxDrainDelay: 5 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "explicit values kept",
			give: lifecycle.Config{GracePeriod: 60 * s, DrainDelay: 7 * s, DrainQuiet: 2 * s, DrainMissProbability: 0.05, MaxDrainDelay: 20 * s, TeardownReserve: 5 * s, Margin: 2 * s, PrestopToken: "t", IgnoreSignals: true},
			want: lifecycle.Config{GracePeriod: 60 * s, DrainDelay: 7 * s, DrainQuiet: 2 * s, DrainMissProbability: 0.05, MaxDrainDelay: 20 * s, TeardownReserve: 5 * s, Margin: 2 * s, PrestopToken: "t", IgnoreSignals: true},
		},
		{
			name: "None is kept, not defaulted",
			give: lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, TeardownReserve: lifecycle.None, Margin: lifecycle.None},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, DrainMissProbability: 0.001, MaxDrainDelay: 0, TeardownReserve: lifecycle.None, Margin: lifecycle.None},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.give.WithDefaults(); got != tt.want {
				t.Errorf("WithDefaults() =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give lifecycle.Config
		want string // the whole error message; empty: valid
	}{
		{name: "zero is the default budget", give: lifecycle.Config{}},
		{name: "adaptive defaults fit", give: lifecycle.Config{DrainQuiet: s}},
		{name: "just below the grace period", give: lifecycle.Config{GracePeriod: 9*s + 1, DrainQuiet: lifecycle.None}},
		{
			name: "all None",
			give: lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, TeardownReserve: lifecycle.None, Margin: lifecycle.None},
		},
		{
			name: "None shown as none",
			give: lifecycle.Config{GracePeriod: s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, MaxDrainDelay: s},
			want: "lifecycle: MaxDrainDelay=1s + TeardownReserve=3s + Margin=1s = 5s must be below GracePeriod=1s",
		},
		{
			name: "negative drain delay",
			give: lifecycle.Config{DrainDelay: -s},
			want: "lifecycle: DrainDelay=-1s is negative (lifecycle.None is none)",
		},
		{
			name: "negative grace period",
			give: lifecycle.Config{GracePeriod: -30 * s},
			want: "lifecycle: GracePeriod=-30s is negative",
		},
		{
			name: "negative quiet",
			give: lifecycle.Config{DrainQuiet: -500 * time.Millisecond},
			want: "lifecycle: DrainQuiet=-500ms is negative (lifecycle.None is none)",
		},
		{
			name: "negative max drain delay",
			give: lifecycle.Config{MaxDrainDelay: -s},
			want: "lifecycle: MaxDrainDelay=-1s is negative",
		},
		{
			name: "every negative field is named",
			give: lifecycle.Config{GracePeriod: -s, TeardownReserve: -3 * s, Margin: -2 * s},
			want: "lifecycle: GracePeriod=-1s is negative; TeardownReserve=-3s is negative (lifecycle.None is none); Margin=-2s is negative (lifecycle.None is none)",
		},
		{
			name: "sum equals the grace period",
			give: lifecycle.Config{GracePeriod: 9 * s, DrainQuiet: lifecycle.None},
			want: "lifecycle: DrainDelay=5s + TeardownReserve=3s + Margin=1s = 9s must be below GracePeriod=9s",
		},
		{
			name: "sum above the grace period",
			give: lifecycle.Config{GracePeriod: 10 * s, DrainDelay: 8 * s, DrainQuiet: lifecycle.None, TeardownReserve: 2 * s, Margin: 500 * time.Millisecond},
			want: "lifecycle: DrainDelay=8s + TeardownReserve=2s + Margin=500ms = 10.5s must be below GracePeriod=10s",
		},
		{
			name: "adaptive drain reserves the max",
			give: lifecycle.Config{GracePeriod: 12 * s, DrainQuiet: s, MaxDrainDelay: 10 * s},
			want: "lifecycle: MaxDrainDelay=10s + TeardownReserve=3s + Margin=1s = 14s must be below GracePeriod=12s",
		},
		{
			name: "max below the drain delay",
			give: lifecycle.Config{DrainDelay: 5 * s, DrainQuiet: s, MaxDrainDelay: 4 * s},
			want: "lifecycle: MaxDrainDelay=4s is below DrainDelay=5s",
		},
		{
			name: "max below the defaulted drain delay",
			give: lifecycle.Config{MaxDrainDelay: 3 * s},
			want: "lifecycle: MaxDrainDelay=3s is below DrainDelay=5s",
		},
		{
			name: "a sum that overflows does not fit",
			give: lifecycle.Config{GracePeriod: 24 * time.Hour, DrainDelay: math.MaxInt64 - 1, DrainQuiet: lifecycle.None},
			want: "lifecycle: DrainDelay=2562047h47m16.854775806s + TeardownReserve=3s + Margin=1s must be below GracePeriod=24h0m0s",
		},
		{name: "a grace period of a day", give: lifecycle.Config{GracePeriod: 24 * time.Hour}},
		{
			name: "a grace period of 292 years",
			give: lifecycle.Config{GracePeriod: math.MaxInt64},
			want: "lifecycle: GracePeriod=2562047h47m16.854775807s is above 24h0m0s, the longest accepted",
		},
		{
			name: "a grace period just over a day",
			give: lifecycle.Config{GracePeriod: 24*time.Hour + 1},
			want: "lifecycle: GracePeriod=24h0m0.000000001s is above 24h0m0s, the longest accepted",
		},
		{
			name: "a tiny bad probability is written compactly",
			give: lifecycle.Config{DrainMissProbability: -1e-300},
			want: "lifecycle: DrainMissProbability=-1e-300 is not in (0, 1)",
		},
		{name: "a tiny probability", give: lifecycle.Config{DrainMissProbability: 1e-300}},
		{name: "a token with inner spaces and UTF-8", give: lifecycle.Config{PrestopToken: "s3 cr\tet-ünï"}},
		{
			name: "a token with a trailing newline",
			give: lifecycle.Config{PrestopToken: "s3cret\n"},
			want: "lifecycle: PrestopToken has a newline at its end, as `echo` without -n leaves: no HTTP header can carry it",
		},
		{
			name: "a token with CRLF",
			give: lifecycle.Config{PrestopToken: "s3cret\r\n"},
			want: "lifecycle: PrestopToken has a carriage return at byte 7 of 8: no HTTP header can carry it",
		},
		{
			name: "a token with a NUL",
			give: lifecycle.Config{PrestopToken: "s3\x00cret"},
			want: "lifecycle: PrestopToken has byte 0x00 at byte 3 of 7: no HTTP header can carry it",
		},
		{
			name: "a token with DEL",
			give: lifecycle.Config{PrestopToken: "s3cret\x7f"},
			want: "lifecycle: PrestopToken has byte 0x7f at its end: no HTTP header can carry it",
		},
		{
			name: "a token with a trailing space",
			give: lifecycle.Config{PrestopToken: "s3cret "},
			want: "lifecycle: PrestopToken has a space at its end: HTTP trims it off a header value, so the token could never match",
		},
		{
			name: "a token with a leading tab",
			give: lifecycle.Config{PrestopToken: "\ts3cret"},
			want: "lifecycle: PrestopToken has a tab at its start: HTTP trims it off a header value, so the token could never match",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.give.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if _, err := lifecycle.New(tt.give); err != nil {
					t.Fatalf("New() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("Validate() =\n  %q\nwant\n  %q", got, tt.want)
			}
			if !errors.Is(err, lifecycle.ErrBudget) {
				t.Errorf("errors.Is(%v, ErrBudget) = false", err)
			}
			if _, perr := lifecycle.NewPlan(tt.give); !errors.Is(perr, lifecycle.ErrBudget) {
				t.Errorf("NewPlan() error = %v, want ErrBudget", perr)
			}
			c, nerr := lifecycle.New(tt.give)
			if c != nil || !errors.Is(nerr, lifecycle.ErrBudget) || nerr.Error() != tt.want {
				t.Errorf("New() = %v, %v; want nil, %q", c, nerr, tt.want)
			}
		})
	}
}

func TestNewPlan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give lifecycle.Config
		want lifecycle.Plan
	}{
		{
			name: "defaults",
			give: lifecycle.Config{},
			want: lifecycle.Plan{DrainEnd: 21 * s, StopDeadline: 26 * s, TeardownDeadline: 29 * s, StopTimeout: 30 * s},
		},
		{
			name: "adaptive drain ends by the max",
			give: lifecycle.Config{GracePeriod: 60 * s, DrainDelay: 5 * s, DrainQuiet: s, MaxDrainDelay: 15 * s, TeardownReserve: 10 * s, Margin: 2 * s},
			want: lifecycle.Plan{DrainEnd: 15 * s, StopDeadline: 48 * s, TeardownDeadline: 58 * s, StopTimeout: 60 * s},
		},
		{
			name: "small",
			give: testConfig(),
			want: lifecycle.Plan{DrainEnd: 2 * s, StopDeadline: 6 * s, TeardownDeadline: 9 * s, StopTimeout: 10 * s},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := lifecycle.NewPlan(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			tt.want.Config = tt.give.WithDefaults()
			if got != tt.want {
				t.Errorf("NewPlan() =\n  %+v\nwant\n  %+v", got, tt.want)
			}
			c, err := lifecycle.New(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			if c.Plan() != got {
				t.Errorf("Coordinator.Plan() = %+v, want %+v", c.Plan(), got)
			}
			// The phases tile the grace period: drain ≤ stop deadline ≤
			// teardown deadline ≤ grace period.
			if !(got.DrainEnd < got.StopDeadline && got.StopDeadline < got.TeardownDeadline && got.TeardownDeadline < got.GracePeriod) {
				t.Errorf("plan offsets out of order: %+v", got)
			}
		})
	}
}

// The plan line writes a tiny DrainMissProbability as a short JSON number,
// not as the 300-digit decimal of zap's AddFloat64.
func TestPlanLogsFloatsCompactly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give float64
		want string
	}{
		{1e-300, `"drainMissProbability":1e-300,`},
		{0.001, `"drainMissProbability":0.001,`},
		{1e-9, `"drainMissProbability":1e-9,`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.InfoLevel))
		c, err := lifecycle.New(lifecycle.Config{DrainMissProbability: tt.give, IgnoreSignals: true}, lifecycle.WithLogger(log))
		if err != nil {
			t.Fatal(err)
		}
		c.MarkStarted() // logs the plan
		stopNow(t, c)
		var line string
		for l := range strings.Lines(buf.String()) {
			if strings.Contains(l, `"shutdown plan"`) {
				line = l
			}
		}
		if !strings.Contains(line, tt.want) || len(line) > 400 {
			t.Errorf("ε=%g: the plan line (%d bytes) does not hold %s:\n%s", tt.give, len(line), tt.want, line)
		}
	}
}
