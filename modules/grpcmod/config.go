package grpcmod

import (
	"errors"
	"fmt"
	"time"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// DefaultAddr is the default listen address of the gRPC server.
const DefaultAddr = ":9000"

// Config configures the gRPC server.
type Config struct {
	// Addr is the listen address. Default ":9000"; use "127.0.0.1:0" in
	// tests.
	Addr string `yaml:"addr" json:"addr"`
	// MaxConnectionAge, if set, sends each connection a GOAWAY this long
	// (±10 %) after it opened, so that clients reconnect now and then and
	// their channels spread over the pods a scale-up added (a client
	// behind kube-proxy otherwise keeps its connection for good). Streams
	// are never cut by it: the connection closes once its last stream
	// ends. Default 0: none. The drain does not need it: it moves every
	// connection with a GOAWAY of its own.
	MaxConnectionAge time.Duration `yaml:"maxConnectionAge" json:"maxConnectionAge"`
}

// ErrConfig is matched (with [errors.Is]) by every error about a [Config]
// or a client that does not hold together.
var ErrConfig = errors.New("grpcmod: invalid config")

// configErrorf returns an error matching [ErrConfig] with the message
// "grpcmod: " and the formatted phrase.
func configErrorf(format string, args ...any) error {
	return confcheck.NewError(ErrConfig, "grpcmod: "+fmt.Sprintf(format, args...))
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	return c
}

// Validate resolves defaults and checks c; the error names the field and
// its value.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var bad confcheck.Problems
	bad.HostPort("Addr", c.Addr)
	bad.Negative("MaxConnectionAge", c.MaxConnectionAge)
	if len(bad) > 0 {
		return confcheck.NewError(ErrConfig, "grpcmod: "+bad.String())
	}
	return nil
}
