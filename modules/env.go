package modules

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/internal/confcheck"
	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/probemod"
)

// The environment variables [FromEnv] reads, with their defaults.
const (
	EnvPort            = "PORT"                     // public port, default 8080
	EnvAdminPort       = "ADMIN_PORT"               // admin port (probes, preStop, metrics), default 9090
	EnvGracePeriod     = "SHUTDOWN_GRACE_PERIOD"    // = terminationGracePeriodSeconds, default 30s
	EnvDrainDelay      = "SHUTDOWN_DRAIN_DELAY"     // least drain, default 5s; 0s = none
	EnvDrainQuiet      = "SHUTDOWN_DRAIN_QUIET"     // adaptive drain quiet period, default 1s; 0s = off (fixed drain)
	EnvMaxDrainDelay   = "SHUTDOWN_MAX_DRAIN_DELAY" // most drain, default all the room the budget gives (the stop keeps up to 5s)
	EnvTeardownReserve = "SHUTDOWN_TEARDOWN_RESERVE"
	// EnvDrainMissProbability is the adaptive drain's ε, default 0.001: the
	// quiet period is max(SHUTDOWN_DRAIN_QUIET, ln(1/ε)/λ) for a pod whose
	// traffic arrived at λ per second before the drain.
	EnvDrainMissProbability = "SHUTDOWN_DRAIN_MISS_PROBABILITY"
	// EnvPrestopToken is the token /prestop wants in X-Prestop-Token; empty
	// = none (a WARN at start-up). One that no HTTP header can carry as
	// written — a control character such as a trailing newline, a space or
	// tab at either end — is refused (no HTTP header could carry it).
	EnvPrestopToken = "PRESTOP_TOKEN"
	// EnvHTTPMaxConns bounds the public connections open at once
	// (httpmod.Config.MaxConns): unset or 0, the default derived from the
	// open-file limit; -1 (any negative), no bound.
	EnvHTTPMaxConns = "HTTP_MAX_CONNS"
)

// FromEnv reads the bundle's configuration from the environment, through
// lookup (pass [os.LookupEnv]). A bad value is an error naming the variable
// and the value; so is a budget that does not fit the grace period, and so
// are PORT and ADMIN_PORT that resolve to the same port (defaults included).
// Unset variables keep the defaults; a duration of 0 means none ("0s" drain
// delay drains for no time, "0s" quiet turns the adaptive drain off), as
// [lifecycle.None] does in a Config, where a zero field means the default.
// The opt-in modules read their own variables beside it: wsmod.FromEnv
// (SHUTDOWN_SESSION_CLOSE_RATE), kubemod.FromEnv (POD_NAME, POD_NAMESPACE).
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	var cfg Config
	port := func(name string, def int) (string, error) {
		v, ok := lookup(name)
		if !ok || v == "" {
			return net.JoinHostPort("", strconv.Itoa(def)), nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 65535 {
			return "", fmt.Errorf("%s=%q: not a port number (0-65535)", name, v)
		}
		return net.JoinHostPort("", strconv.Itoa(n)), nil
	}
	var err error
	httpDef, adminDef := defaultPort(httpmod.DefaultAddr), defaultPort(probemod.DefaultAddr)
	if cfg.HTTP.Addr, err = port(EnvPort, httpDef); err != nil {
		return Config{}, err
	}
	if cfg.Probe.Addr, err = port(EnvAdminPort, adminDef); err != nil {
		return Config{}, err
	}
	// Compared as resolved (the check Web makes), so that PORT=9090 with
	// ADMIN_PORT unset collides too; said here in the variables' names.
	if cfg.checkAddrs() != nil {
		v := func(name string, def int) string {
			if s, _ := lookup(name); s != "" {
				return fmt.Sprintf("%s=%q", name, s)
			}
			return fmt.Sprintf("%s unset (default %d)", name, def)
		}
		return Config{}, fmt.Errorf("%s, %s: the public and the admin server cannot share port %s",
			v(EnvPort, httpDef), v(EnvAdminPort, adminDef), strings.TrimPrefix(cfg.HTTP.Addr, ":"))
	}
	if v, ok := lookup(EnvHTTPMaxConns); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Config{}, fmt.Errorf("%s=%q: not a whole number (0: the default, -1: no bound)", EnvHTTPMaxConns, v)
		}
		cfg.HTTP.MaxConns = n
	}
	lc := &cfg.Lifecycle
	budget := []struct {
		name     string
		field    func(*lifecycle.Config) *time.Duration
		zeroNone bool // "0s" means none (lifecycle.None); else it is refused
	}{
		{EnvGracePeriod, func(c *lifecycle.Config) *time.Duration { return &c.GracePeriod }, false},
		{EnvDrainDelay, func(c *lifecycle.Config) *time.Duration { return &c.DrainDelay }, true},
		{EnvDrainQuiet, func(c *lifecycle.Config) *time.Duration { return &c.DrainQuiet }, true}, // none: a fixed drain
		{EnvMaxDrainDelay, func(c *lifecycle.Config) *time.Duration { return &c.MaxDrainDelay }, false},
		{EnvTeardownReserve, func(c *lifecycle.Config) *time.Duration { return &c.TeardownReserve }, true},
	}
	for _, d := range budget {
		v, ok := lookup(d.name)
		if !ok || v == "" {
			continue
		}
		dur, err := time.ParseDuration(v)
		switch {
		case err != nil || dur < 0:
			return Config{}, fmt.Errorf("%s=%q: not a duration of 0 or more (like 5s or 500ms)", d.name, v)
		case dur == 0 && !d.zeroNone:
			return Config{}, fmt.Errorf("%s=%q: must be more than 0 (unset it for the default)", d.name, v)
		case dur == 0:
			dur = lifecycle.None
		case d.name == EnvGracePeriod && dur > maxGracePeriod:
			// Said here too, to name the variable in one short line.
			return Config{}, fmt.Errorf("%s=%q: above %v, the longest accepted (a day)", d.name, v, maxGracePeriod)
		}
		*d.field(lc) = dur
	}
	if v, ok := lookup(EnvDrainMissProbability); ok && v != "" {
		p, err := strconv.ParseFloat(v, 64)
		if err != nil || !(p > 0 && p < 1) {
			return Config{}, fmt.Errorf("%s=%q: not a probability between 0 and 1, exclusive (like 0.001)", EnvDrainMissProbability, v)
		}
		lc.DrainMissProbability = p
	}
	lc.PrestopToken, _ = lookup(EnvPrestopToken)
	// Said here to name the variable; the error never quotes the token.
	if err := confcheck.HeaderValue(lc.PrestopToken); err != nil {
		return Config{}, fmt.Errorf("%s (%d bytes) %w", EnvPrestopToken, len(lc.PrestopToken), err)
	}
	if err := lc.Validate(); err != nil {
		// The variables as the user wrote them, then the budget's own
		// words, which name the fields with their resolved values.
		def := lc.WithDefaults()
		var written []string
		for _, d := range budget {
			if v, _ := lookup(d.name); v != "" {
				written = append(written, fmt.Sprintf("%s=%q", d.name, v))
				continue
			}
			written = append(written, fmt.Sprintf("%s unset (%v)", d.name, *d.field(&def)))
		}
		return Config{}, fmt.Errorf("%s: %w", strings.Join(written, ", "), err)
	}
	return cfg, nil
}

// Prestop runs the preStop hook as a command, for a Kubernetes exec hook
// (`command: ["/service", "prestop"]`): it reads the same environment as
// [FromEnv], asks the admin server on loopback (ADMIN_PORT) to drain, with
// PRESTOP_TOKEN, and returns once the drain has ended — or fails after the
// grace period. An exec hook inherits the container's environment, so the
// token can come from a Secret; an httpGet hook's headers cannot.
func Prestop(ctx context.Context, lookup func(string) (string, bool)) (probemod.PrestopResponse, error) {
	cfg, err := FromEnv(lookup)
	if err != nil {
		return probemod.PrestopResponse{}, err
	}
	_, port, err := net.SplitHostPort(cfg.Probe.Addr)
	if err != nil {
		return probemod.PrestopResponse{}, fmt.Errorf("%s: %w", EnvAdminPort, err)
	}
	lc := cfg.Lifecycle.WithDefaults()
	ctx, cancel := context.WithTimeout(ctx, lc.GracePeriod)
	defer cancel()
	url := "http://" + net.JoinHostPort("127.0.0.1", port) + "/prestop"
	return probemod.CallPrestop(ctx, url, lc.PrestopToken)
}

// maxGracePeriod is the longest grace period lifecycle.Config accepts
// (TestEnvGraceBound holds the two together).
const maxGracePeriod = 24 * time.Hour

// defaultPort is the port of a module's default address (":8080").
func defaultPort(addr string) int {
	_, p, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(p)
	return n
}
