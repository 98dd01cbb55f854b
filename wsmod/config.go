package wsmod

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// Defaults of [Config]. A zero field resolves to its default.
const (
	// DefaultCloseCode is 1001 "going away": the endpoint is going down.
	DefaultCloseCode    = CloseGoingAway
	DefaultCloseReason  = "server shutting down"
	DefaultCloseTimeout = 5 * time.Second
	DefaultWriteTimeout = 1 * time.Second
	DefaultRetryAfter   = 1 * time.Second
	// DefaultFinalEventName is the event type of the final SSE event.
	DefaultFinalEventName = "shutdown"
	// DefaultFinalEventRetry is the reconnection hint of the final SSE event.
	DefaultFinalEventRetry = 1 * time.Second
	// DefaultCloseRate is how many sessions per second the stop phase ends,
	// at most: 1,000 sessions over 1 s, about 100 in any 100 ms from this
	// pod, which leaves the pods that take the reconnections room for the
	// bunching of a busy node (measured on 2 shared cores, the README:
	// at most 239 in any 100 ms on the survivors). 2,000 sessions fill
	// the 2 s that the default CloseTimeout gives a window; more are
	// compressed into it.
	DefaultCloseRate = 1000
	// DefaultReadLimit is the largest WebSocket message a peer may send:
	// 1 MiB, as the example service's POST /echo. gorilla has no limit of its
	// own, so without one a single frame header announcing 256 MiB makes the
	// server read (and hold) 256 MiB.
	DefaultReadLimit = 1 << 20
)

// AllAtOnce as [Config.CloseRate] ends every session at once when the stop
// phase begins, as drainfx did before it spread them.
const AllAtOnce = -1

// EnvCloseRate is the environment variable [FromEnv] reads:
// [Config.CloseRate] in sessions per second, "0" for [AllAtOnce].
const EnvCloseRate = "SHUTDOWN_SESSION_CLOSE_RATE"

// WebSocket close codes (RFC 6455 §7.4.1, IANA registry) used by drainfx.
const (
	CloseNormalClosure   = 1000
	CloseGoingAway       = 1001
	CloseMessageTooBig   = 1009
	CloseInternalError   = 1011
	CloseServiceRestart  = 1012
	CloseTryAgainLater   = 1013
	maxCloseReasonLength = 123 // a control frame carries 125 bytes, 2 of them the code
)

// Config tunes how the registry ends sessions. Every zero field resolves to
// its default, as in [net/http.Server].
type Config struct {
	// CloseCode is the close code sent to every WebSocket peer at the stop
	// phase. Default 1001 (going away); 1012 (service restart) is the other
	// usual choice. Must be a code an endpoint may send: 1000–1003, 1007–1014
	// or 3000–4999.
	CloseCode int `yaml:"closeCode" json:"closeCode"`
	// CloseReason goes with CloseCode (at most 123 bytes of UTF-8). Default
	// "server shutting down".
	CloseReason string `yaml:"closeReason" json:"closeReason"`
	// CloseTimeout is how long the stop phase waits for the peers' close
	// replies and the handlers' return before it force-closes what is left.
	// It is clipped so that the force-close never comes after the
	// coordinator's stop deadline ([lifecycle.Plan.StopDeadline] after D0),
	// or after the stop was cut short ([lifecycle.Coordinator.Stop]).
	// Outside the stop phase, it also bounds the wait for a peer's close
	// reply after a handler returned. Default 5s. The close window
	// ([Config.CloseRate]) is part of it.
	CloseTimeout time.Duration `yaml:"closeTimeout" json:"closeTimeout"`
	// CloseRate is how many sessions per second the stop phase ends, at
	// most. Ending them all at once sends every client to the other pods in
	// the same instant; instead the registry spreads the close frames and
	// final events over a window of N/CloseRate for N sessions, from the
	// start of the stop phase (the drain is over: the proxies no longer
	// route here, so each client reconnects elsewhere), in a random order,
	// one at a random point of each of N equal slots. The other pods then
	// see at most about CloseRate/10 reconnections from this pod in any
	// 100 ms. Of the time to the close deadline (CloseTimeout, clipped to
	// the stop deadline), the last sessions' close handshakes keep
	// WriteTimeout (or half, if that is less), and the window takes at most
	// half of the rest: the other half is for a schedule that runs late on
	// a busy node to slip into. If N/CloseRate does not fit, the window is
	// compressed to fit (the rate is then higher) and a warning says so:
	// the deadline wins. Default 1000 (DefaultCloseRate: 1,000 sessions
	// over 1 s, 2,000 over the 2 s the default CloseTimeout gives a window;
	// 5,000 are compressed into those 2 s, 2,500 a second, with the
	// warning); negative (AllAtOnce): every session at once. [FromEnv]:
	// SHUTDOWN_SESSION_CLOSE_RATE.
	CloseRate int `yaml:"closeRate" json:"closeRate"`
	// WriteTimeout bounds the writing of a close frame, a ping or the final
	// SSE event. Default 1s.
	WriteTimeout time.Duration `yaml:"writeTimeout" json:"writeTimeout"`
	// PingInterval turns on the WebSocket keep-alive: a ping every
	// PingInterval, and a read deadline of PingInterval+PongTimeout that every
	// pong extends, so a dead peer's reads fail and its session leaves the
	// registry. Only a handler that reads sees pongs (gorilla processes
	// control frames inside reads). Default 0: off.
	PingInterval time.Duration `yaml:"pingInterval" json:"pingInterval"`
	// PongTimeout is how long after a ping interval a pong may be late.
	// Default: PingInterval.
	PongTimeout time.Duration `yaml:"pongTimeout" json:"pongTimeout"`
	// ReadLimit is the largest WebSocket message a peer may send, in bytes;
	// a larger one closes the session with 1009 (message too big) as soon as
	// its frame header announces it, before its payload is read. Default
	// 1 MiB (DefaultReadLimit); negative: no limit (gorilla's own default,
	// which lets one peer make the server hold any amount of memory).
	ReadLimit int64 `yaml:"readLimit" json:"readLimit"`
	// RetryAfter is sent in the Retry-After header (whole seconds, at least
	// 1) of the 503 that refuses a new session in the stop phase. Default 1s.
	RetryAfter time.Duration `yaml:"retryAfter" json:"retryAfter"`
	// FinalEvent is the last event of every SSE stream at the stop phase.
	// Default: event "shutdown", data CloseReason, retry 1s. Give it data:
	// browsers drop an event without a data line.
	FinalEvent Event `yaml:"finalEvent" json:"finalEvent"`
	// FinalEventRetryJitter adds a random delay, from 0 up to this, to the
	// "retry:" of each stream's final event, so that EventSource clients,
	// which wait that long before they reconnect (and before each later
	// reconnection), do not come back in step. Default: half of
	// FinalEvent.Retry (1s to 1.5s with the default final event);
	// negative: none. No effect on a final event without Retry.
	FinalEventRetryJitter time.Duration `yaml:"finalEventRetryJitter" json:"finalEventRetryJitter"`
	// AllowedOrigins lists the origins a WebSocket upgrade may come from:
	// an entry with a scheme ("https://app.example.com") must equal the
	// Origin header; one without ("app.example.com:8443") must equal its host;
	// "*" allows any. Case-insensitive. Default empty: gorilla's same-origin
	// check (no Origin header, or its host equals the request's Host).
	// [WithCheckOrigin] replaces it.
	AllowedOrigins []string `yaml:"allowedOrigins" json:"allowedOrigins"`
}

// ErrConfig is matched (with [errors.Is]) by every error [Config.Validate]
// returns.
var ErrConfig = errors.New("wsmod: invalid config")

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.CloseCode == 0 {
		c.CloseCode = DefaultCloseCode
	}
	if c.CloseReason == "" {
		c.CloseReason = DefaultCloseReason
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.PongTimeout == 0 {
		c.PongTimeout = c.PingInterval
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = DefaultReadLimit
	}
	if c.RetryAfter == 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.CloseRate == 0 {
		c.CloseRate = DefaultCloseRate
	}
	if c.FinalEvent == (Event{}) {
		c.FinalEvent = Event{Event: DefaultFinalEventName, Data: c.CloseReason, Retry: DefaultFinalEventRetry}
	}
	if c.FinalEventRetryJitter == 0 {
		c.FinalEventRetryJitter = c.FinalEvent.Retry / 2
	}
	return c
}

// FromEnv reads the registry's configuration from the environment, through
// lookup (pass [os.LookupEnv]): SHUTDOWN_SESSION_CLOSE_RATE
// ([Config.CloseRate]), a whole number of sessions per second; "0" ends
// every session at once ([AllAtOnce]); unset or empty keeps the default.
// The other fields are zero (their defaults). A bad value is an error
// naming the variable and the value.
func FromEnv(lookup func(string) (string, bool)) (Config, error) {
	var cfg Config
	if v, ok := lookup(EnvCloseRate); ok && v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Config{}, fmt.Errorf("%s=%q: not a whole number of sessions per second, 0 or more (like 1000; 0: all at once)", EnvCloseRate, v)
		}
		cfg.CloseRate = n
		if n == 0 {
			cfg.CloseRate = AllAtOnce
		}
	}
	return cfg, nil
}

// Validate resolves defaults and checks every field. The error names each
// field at fault and its value.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var bad confcheck.Problems
	bad.Negative("CloseTimeout", c.CloseTimeout)
	bad.Negative("WriteTimeout", c.WriteTimeout)
	bad.Negative("PingInterval", c.PingInterval)
	bad.Negative("PongTimeout", c.PongTimeout)
	bad.Negative("RetryAfter", c.RetryAfter)
	bad.Negative("FinalEvent.Retry", c.FinalEvent.Retry)
	if !sendableCloseCode(c.CloseCode) {
		bad.Addf("CloseCode=%d is not a code an endpoint may send (1000-1003, 1007-1014, 3000-4999)", c.CloseCode)
	}
	if len(c.CloseReason) > maxCloseReasonLength {
		bad.Addf("CloseReason=%q is %d bytes, more than %d", c.CloseReason, len(c.CloseReason), maxCloseReasonLength)
	} else if !utf8.ValidString(c.CloseReason) {
		bad.Addf("CloseReason=%q is not valid UTF-8", c.CloseReason)
	}
	if err := c.FinalEvent.validate(); err != nil {
		bad.Addf("FinalEvent: %v", err)
	}
	for _, o := range c.AllowedOrigins {
		if strings.TrimSpace(o) == "" {
			bad.Addf("AllowedOrigins has an empty entry in %q", c.AllowedOrigins)
			break
		}
	}
	if len(bad) > 0 {
		return confcheck.NewError(ErrConfig, "wsmod: "+bad.String())
	}
	return nil
}

// sendableCloseCode reports whether an endpoint may put code in a close
// frame (RFC 6455 §7.4; 1004–1006 and 1015 are reserved).
func sendableCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// retryAfterSeconds is the Retry-After value: whole seconds, rounded up, at
// least 1.
func (c Config) retryAfterSeconds() int64 {
	s := int64((c.RetryAfter + time.Second - 1) / time.Second)
	return max(s, 1)
}
