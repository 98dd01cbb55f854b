package metricsmod

import (
	"errors"
	"fmt"
	"strings"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// DefaultPath is where the admin server serves the metrics by default.
const DefaultPath = "/metrics"

// Config configures the metrics endpoint.
type Config struct {
	// Path is the admin server's route for the metrics. Default "/metrics".
	Path string `yaml:"path" json:"path"`
	// NoRuntimeMetrics leaves out the Go runtime and process collectors
	// (go_*, process_*), for a registry that has its own under other
	// options. Default false: both are registered (and skipped if the
	// registry already has them).
	NoRuntimeMetrics bool `yaml:"noRuntimeMetrics" json:"noRuntimeMetrics"`
}

// ErrConfig is matched (with [errors.Is]) by every error [Config.Validate]
// returns.
var ErrConfig = errors.New("metricsmod: invalid config")

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Path == "" {
		c.Path = DefaultPath
	}
	return c
}

// Validate resolves defaults and checks c; the error names the field and
// its value.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if !strings.HasPrefix(c.Path, "/") {
		return confcheck.NewError(ErrConfig, fmt.Sprintf("metricsmod: Path=%q does not start with /", c.Path))
	}
	return nil
}
