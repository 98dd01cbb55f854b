package modules

import (
	"errors"
	"io"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/fx"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The memory limit is the runtime's, for the whole process: these tests
// are not parallel (t.Setenv refuses them anyway), and each puts the
// limit back.

// unsetenv unsets the variable k for the test; it is restored after.
func unsetenv(t *testing.T, k string) {
	t.Helper()
	t.Setenv(k, "") // restores k's value at cleanup
	if err := os.Unsetenv(k); err != nil {
		t.Fatal(err)
	}
}

// keepMemoryLimit restores the runtime's memory limit when the test ends,
// and sets it to a known value now.
func keepMemoryLimit(t *testing.T, now int64) {
	t.Helper()
	prev := debug.SetMemoryLimit(now)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
}

// The container's limit (here from a provider standing in for the cgroup)
// times the ratio becomes the runtime's soft memory limit, unless
// GOMEMLIMIT is set, the ratio is negative or AUTOMEMLIMIT is off; then
// the provider is not even asked. AUTOMEMLIMIT replaces the ratio. A
// container without a limit (or outside a cgroup) leaves none. Each case
// logs one line that says what was done.
func TestSetMemoryLimit(t *testing.T) {
	const (
		mib       = 1 << 20
		container = 1000 * mib
		before    = 123 * mib // the runtime's limit before the call
	)
	tests := []struct {
		name      string
		giveRatio float64
		giveEnv   map[string]string
		giveLimit memlimit.Provider // nil: must not be called
		want      int64             // the runtime's limit after
		wantLog   string
	}{
		{name: "default ratio", giveLimit: memlimit.Limit(container), want: 900 * mib, wantLog: "memory limit set"},
		{name: "ratio", giveRatio: 0.5, giveLimit: memlimit.Limit(container), want: 500 * mib, wantLog: "memory limit set"},
		{name: "GOMEMLIMIT set", giveEnv: map[string]string{EnvGoMemLimit: "2GiB"}, want: before,
			wantLog: "memory limit from GOMEMLIMIT"},
		{name: "GOMEMLIMIT set, AUTOMEMLIMIT too", giveEnv: map[string]string{EnvGoMemLimit: "2GiB", EnvAutoMemLimit: "0.5"},
			want: before, wantLog: "memory limit from GOMEMLIMIT"},
		{name: "off in the config", giveRatio: -1, want: before, wantLog: "memory limit left alone"},
		{name: "AUTOMEMLIMIT=off", giveEnv: map[string]string{EnvAutoMemLimit: "off"}, want: before, wantLog: "memory limit left alone"},
		{name: "AUTOMEMLIMIT ratio", giveRatio: 0.5, giveEnv: map[string]string{EnvAutoMemLimit: "0.8"},
			giveLimit: memlimit.Limit(container), want: 800 * mib, wantLog: "memory limit set"},
		{name: "no container limit", giveLimit: func() (uint64, error) { return 0, memlimit.ErrNoLimit },
			want: math.MaxInt64, wantLog: "no memory limit: the container has none"},
		{name: "no cgroup", giveLimit: func() (uint64, error) { return 0, errors.New("no cgroup here") },
			want: before, wantLog: "no memory limit: the container's is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(EnvGoMemLimit, "")
			unsetenv(t, EnvAutoMemLimit) // set but empty is a bad ratio
			for k, v := range tt.giveEnv {
				t.Setenv(k, v)
			}
			keepMemoryLimit(t, before)
			limit := tt.giveLimit
			if limit == nil {
				limit = func() (uint64, error) {
					t.Error("the container's limit was read, though the runtime's limit is to be left alone")
					return container, nil
				}
			}
			core, logs := observer.New(zap.InfoLevel)
			if err := setMemoryLimit(tt.giveRatio, limit, zap.New(core)); err != nil {
				t.Fatal(err)
			}
			if got := debug.SetMemoryLimit(-1); got != tt.want {
				t.Errorf("memory limit %d MiB, want %d MiB", got/mib, tt.want/mib)
			}
			if all := logs.All(); len(all) != 1 || !strings.HasPrefix(all[0].Message, tt.wantLog) {
				t.Errorf("logged %v, want one line %q", all, tt.wantLog)
			}
		})
	}
}

// An AUTOMEMLIMIT that is neither a ratio in (0, 1] nor "off" fails
// start-up, naming the variable and its value; so does a
// MemoryLimitRatio over 1.
func TestMemoryLimitBadConfig(t *testing.T) {
	for _, v := range []string{"abc", "1.5", "0", ""} {
		t.Run("AUTOMEMLIMIT="+v, func(t *testing.T) {
			t.Setenv(EnvGoMemLimit, "")
			t.Setenv(EnvAutoMemLimit, v)
			keepMemoryLimit(t, math.MaxInt64)
			err := setMemoryLimit(0, memlimit.Limit(1<<30), zap.NewNop())
			if err == nil || !strings.Contains(err.Error(), `AUTOMEMLIMIT="`+v+`"`) {
				t.Errorf("error %v, want one naming AUTOMEMLIMIT=%q", err, v)
			}
			if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
				t.Errorf("memory limit changed to %d", got)
			}
		})
	}
	if err := checkMemoryLimitRatio(1.5); err == nil || !strings.Contains(err.Error(), "MemoryLimitRatio=1.5") {
		t.Errorf("MemoryLimitRatio 1.5: %v, want an error naming it", err)
	}
	for _, r := range []float64{0, -1, 0.5, 1} {
		if err := checkMemoryLimitRatio(r); err != nil {
			t.Errorf("MemoryLimitRatio %v: %v", r, err)
		}
	}
}

// The bundle sets the memory limit as the app is built and says so once,
// whatever the container (this one may or may not have a limit); a
// MemoryLimitRatio over 1 fails the build, naming the field.
func TestWebSetsTheMemoryLimit(t *testing.T) {
	t.Setenv(EnvGoMemLimit, "")
	unsetenv(t, EnvAutoMemLimit)
	keepMemoryLimit(t, math.MaxInt64)
	core, logs := observer.New(zap.InfoLevel)
	app := fx.New(web(internalConfig(), io.Discard), fx.Supply(zap.New(core)))
	if err := app.Err(); err != nil {
		t.Fatal(err)
	}
	if n := logs.FilterField(zap.String("component", "memlimit")).Len(); n != 1 {
		t.Errorf("%d lines about the memory limit, want 1: %v", n, logs.All())
	}

	cfg := internalConfig()
	cfg.MemoryLimitRatio = 1.5
	if err := fx.New(web(cfg, io.Discard), fx.NopLogger).Err(); err == nil || !strings.Contains(err.Error(), "MemoryLimitRatio=1.5") {
		t.Errorf("fx.New with MemoryLimitRatio 1.5: %v, want an error naming it", err)
	}
}
