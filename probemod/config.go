package probemod

import (
	"errors"
	"fmt"
	"time"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// Defaults of [Config]. A zero field resolves to its default.
const (
	DefaultAddr             = ":9090"
	DefaultCheckTimeout     = 1 * time.Second
	DefaultCacheTTL         = 1 * time.Second
	DefaultFailureThreshold = 1
)

// NoCache is a CacheTTL that keeps a check's result for no time: every probe
// runs the check (concurrent probes still share one run). A zero CacheTTL
// means "the default".
const NoCache = time.Nanosecond

// Config configures the admin server and the readiness checks.
type Config struct {
	// Addr is the admin server's listen address (probes, /prestop, admin
	// routes such as /metrics). Default ":9090"; use "127.0.0.1:0" in tests.
	Addr string `yaml:"addr" json:"addr"`
	// CheckTimeout bounds one run of a readiness check whose own Timeout is
	// zero; a probe never waits longer for a check. Keep it below the
	// probe's timeoutSeconds. Default 1s.
	CheckTimeout time.Duration `yaml:"checkTimeout" json:"checkTimeout"`
	// CacheTTL is how long a check's result is reused before a probe runs
	// the check again, so a storm of probes does not reach the dependency.
	// Default 1s; [NoCache] for none.
	CacheTTL time.Duration `yaml:"cacheTTL" json:"cacheTTL"`
	// FailureThreshold is how many consecutive failed runs of a check (once
	// it has passed) it takes to fail /readyz. A check that has never passed
	// fails at once. Default 1.
	FailureThreshold int `yaml:"failureThreshold" json:"failureThreshold"`
}

// ErrConfig is matched (with [errors.Is]) by every error [Config.Validate]
// returns, and by the errors [New] returns for an invalid [Check] or
// [AdminRoute].
var ErrConfig = errors.New("probemod: invalid config")

// configErrorf returns an error matching [ErrConfig], with the package's
// prefix.
func configErrorf(format string, args ...any) error {
	return confcheck.NewError(ErrConfig, "probemod: "+fmt.Sprintf(format, args...))
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = DefaultCheckTimeout
	}
	if c.CacheTTL == 0 {
		c.CacheTTL = DefaultCacheTTL
	}
	if c.FailureThreshold == 0 {
		c.FailureThreshold = DefaultFailureThreshold
	}
	return c
}

// Validate resolves defaults and checks c. The error names every field at
// fault and its value.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var bad confcheck.Problems
	bad.HostPort("Addr", c.Addr)
	bad.Negative("CheckTimeout", c.CheckTimeout)
	bad.Negative("CacheTTL", c.CacheTTL)
	bad.NegativeInt("FailureThreshold", int64(c.FailureThreshold))
	if len(bad) > 0 {
		return confcheck.NewError(ErrConfig, "probemod: "+bad.String())
	}
	return nil
}
