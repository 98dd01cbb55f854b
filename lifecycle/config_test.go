package lifecycle_test

import (
	"errors"
	"math"
	"testing"
	"time"

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
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 5 * s, DrainQuiet: s, DrainMissProbability: lifecycle.DefaultDrainMissProbability, MaxDrainDelay: 21 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "fixed drain: the max is the drain delay",
			give: lifecycle.Config{DrainQuiet: lifecycle.None},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 5 * s, DrainQuiet: lifecycle.None, DrainMissProbability: lifecycle.DefaultDrainMissProbability, MaxDrainDelay: 5 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "adaptive drain: the max is all the room, the stop phase keeps 5s",
			give: lifecycle.Config{DrainQuiet: s},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 5 * s, DrainQuiet: s, DrainMissProbability: lifecycle.DefaultDrainMissProbability, MaxDrainDelay: 21 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "adaptive drain with a drain delay",
			give: lifecycle.Config{DrainDelay: 2 * s, DrainQuiet: s},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: 2 * s, DrainQuiet: s, DrainMissProbability: lifecycle.DefaultDrainMissProbability, MaxDrainDelay: 21 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "adaptive drain: a short grace period leaves the stop phase half the room",
			give: lifecycle.Config{GracePeriod: 12 * s, DrainDelay: 3 * s, DrainQuiet: s},
			want: lifecycle.Config{GracePeriod: 12 * s, DrainDelay: 3 * s, DrainQuiet: s, DrainMissProbability: lifecycle.DefaultDrainMissProbability, MaxDrainDelay: 4 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "adaptive drain max never below the drain delay",
			give: lifecycle.Config{GracePeriod: 10 * s, DrainDelay: 5 * s, DrainQuiet: s},
			want: lifecycle.Config{GracePeriod: 10 * s, DrainDelay: 5 * s, DrainQuiet: s, DrainMissProbability: lifecycle.DefaultDrainMissProbability, MaxDrainDelay: 5 * s, TeardownReserve: 3 * s, Margin: s},
		},
		{
			name: "explicit values kept",
			give: lifecycle.Config{GracePeriod: 60 * s, DrainDelay: 7 * s, DrainQuiet: 2 * s, DrainMissProbability: 0.05, MaxDrainDelay: 20 * s, TeardownReserve: 5 * s, Margin: 2 * s, PrestopToken: "t", IgnoreSignals: true},
			want: lifecycle.Config{GracePeriod: 60 * s, DrainDelay: 7 * s, DrainQuiet: 2 * s, DrainMissProbability: 0.05, MaxDrainDelay: 20 * s, TeardownReserve: 5 * s, Margin: 2 * s, PrestopToken: "t", IgnoreSignals: true},
		},
		{
			name: "None is kept, not defaulted",
			give: lifecycle.Config{DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, TeardownReserve: lifecycle.None, Margin: lifecycle.None},
			want: lifecycle.Config{GracePeriod: 30 * s, DrainDelay: lifecycle.None, DrainQuiet: lifecycle.None, DrainMissProbability: lifecycle.DefaultDrainMissProbability, MaxDrainDelay: 0, TeardownReserve: lifecycle.None, Margin: lifecycle.None},
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
			give: lifecycle.Config{GracePeriod: math.MaxInt64, DrainDelay: math.MaxInt64 - 1, DrainQuiet: lifecycle.None},
			want: "lifecycle: DrainDelay=2562047h47m16.854775806s + TeardownReserve=3s + Margin=1s must be below GracePeriod=2562047h47m16.854775807s",
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
