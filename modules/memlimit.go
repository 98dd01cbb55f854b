package modules

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"go.uber.org/fx"
	"go.uber.org/zap"
)

// DefaultMemoryLimitRatio is the share of the container's memory limit that
// [Web] gives the Go runtime as its soft memory limit when
// [Config.MemoryLimitRatio] is zero: 90 %, the rest for what the runtime
// does not count (stacks of threads in cgo, the binary) and a margin
// before the kernel's OOM killer.
const DefaultMemoryLimitRatio = 0.9

// EnvGoMemLimit and EnvAutoMemLimit are the environment variables that
// decide, before [Config.MemoryLimitRatio], the Go runtime's memory limit
// at start-up: GOMEMLIMIT set (the runtime's own, e.g. "900MiB") is left
// as it is; AUTOMEMLIMIT (automemlimit's) is a ratio in (0, 1] that
// replaces the config's, or "off".
const (
	EnvGoMemLimit   = "GOMEMLIMIT"
	EnvAutoMemLimit = "AUTOMEMLIMIT"
)

// checkMemoryLimitRatio returns an error naming the field unless r is 0
// (the default), negative (off) or a ratio in (0, 1].
func checkMemoryLimitRatio(r float64) error {
	if math.IsNaN(r) || r > 1 {
		return fmt.Errorf("modules: MemoryLimitRatio=%v: not a ratio in (0, 1], 0 for the default (%v), or negative for none",
			r, DefaultMemoryLimitRatio)
	}
	return nil
}

// memoryLimit is the bundle's fx.Invoke that sets the memory limit as the
// app is built, before anything starts ([setMemoryLimit]).
func memoryLimit(ratio float64) fx.Option {
	return fx.Invoke(func(p loggerParams) error {
		log := p.Logger
		if log == nil {
			log = zap.NewNop()
		}
		return setMemoryLimit(ratio, memlimit.FromCgroup, log.With(zap.String("component", "memlimit")))
	})
}

// setMemoryLimit sets the Go runtime's soft memory limit
// ([runtime/debug.SetMemoryLimit]) to ratio of the limit that limitOf
// reports (the container's cgroup: [memlimit.FromCgroup]), through
// automemlimit's [memlimit.Set], and logs once what it did or why not.
// GOMEMLIMIT set, a negative ratio or AUTOMEMLIMIT=off leave the runtime's
// limit alone; AUTOMEMLIMIT replaces ratio. No limit found (no cgroup
// limit, not Linux) is no error. Its one error is an AUTOMEMLIMIT that is
// neither a ratio nor "off", which fails start-up.
func setMemoryLimit(ratio float64, limitOf memlimit.Provider, log *zap.Logger) error {
	if v := os.Getenv(EnvGoMemLimit); v != "" {
		log.Info("memory limit from GOMEMLIMIT", zap.String(EnvGoMemLimit, v), zap.Int64("limit", debug.SetMemoryLimit(-1)))
		return nil
	}
	if ratio < 0 {
		log.Info("memory limit left alone: Config.MemoryLimitRatio is negative")
		return nil
	}
	if ratio == 0 {
		ratio = DefaultMemoryLimitRatio
	}
	if v, ok := os.LookupEnv(EnvAutoMemLimit); ok {
		if v == "off" {
			log.Info("memory limit left alone: AUTOMEMLIMIT=off")
			return nil
		}
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || !(r > 0 && r <= 1) {
			return fmt.Errorf("%s=%q: not a ratio in (0, 1] (like 0.9), nor off", EnvAutoMemLimit, v)
		}
		ratio = r // memlimit.Set reads it too, to the same value
	}
	var found uint64
	var findErr error
	limit, err := memlimit.Set(memlimit.WithRatio(ratio), memlimit.WithProvider(func() (uint64, error) {
		found, findErr = limitOf()
		return found, findErr
	}))
	switch {
	case errors.Is(findErr, memlimit.ErrNoLimit):
		log.Info("no memory limit: the container has none")
	case err != nil:
		log.Info("no memory limit: the container's is unknown", zap.Error(err))
	default:
		log.Info("memory limit set from the container's", zap.Int64("limit", limit),
			zap.Uint64("containerLimit", found), zap.Float64("ratio", ratio))
	}
	return nil
}
