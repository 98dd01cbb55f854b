package workermod

import (
	"errors"
	"fmt"
	"time"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// Defaults of [Config]. A zero field resolves to its default.
const (
	DefaultRestartBackoff    = 1 * time.Second
	DefaultMaxRestartBackoff = 30 * time.Second
)

// Config is the supervisor's policy for workers that fail.
type Config struct {
	// Restart restarts a worker that fails — returns an error before its
	// context ended, or panics — after a backoff, instead of shutting the
	// app down with exit code 1. Default false: a failed worker stops the
	// app.
	Restart bool `yaml:"restart" json:"restart"`
	// RestartBackoff is the wait before the first restart; it doubles after
	// each failure in a row. Default 1s.
	RestartBackoff time.Duration `yaml:"restartBackoff" json:"restartBackoff"`
	// MaxRestartBackoff caps the backoff; a run that lasted at least this
	// long starts the doubling again from RestartBackoff. Default 30s.
	MaxRestartBackoff time.Duration `yaml:"maxRestartBackoff" json:"maxRestartBackoff"`
}

// ErrConfig is matched (with [errors.Is]) by every error about a [Config]
// or a [Worker] that does not hold together.
var ErrConfig = errors.New("workermod: invalid config")

// configErrorf returns an error matching [ErrConfig] whose message is
// "workermod: " and the formatted phrase.
func configErrorf(format string, args ...any) error {
	return confcheck.NewError(ErrConfig, "workermod: "+fmt.Sprintf(format, args...))
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.RestartBackoff == 0 {
		c.RestartBackoff = DefaultRestartBackoff
	}
	if c.MaxRestartBackoff == 0 {
		c.MaxRestartBackoff = max(DefaultMaxRestartBackoff, c.RestartBackoff)
	}
	return c
}

// Validate resolves defaults and checks c; the error names the field and
// its value.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var bad confcheck.Problems
	bad.Negative("RestartBackoff", c.RestartBackoff)
	bad.Negative("MaxRestartBackoff", c.MaxRestartBackoff)
	if len(bad) > 0 {
		return confcheck.NewError(ErrConfig, "workermod: "+bad.String())
	}
	if c.MaxRestartBackoff < c.RestartBackoff {
		return configErrorf("MaxRestartBackoff=%v is below RestartBackoff=%v", c.MaxRestartBackoff, c.RestartBackoff)
	}
	return nil
}
