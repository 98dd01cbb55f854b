package httpmod

import (
	"errors"
	"net"
	"time"

	"github.com/drainfx/drainfx/internal/confcheck"
)

// Defaults of [Config]. A zero field resolves to its default.
const (
	DefaultAddr              = ":8080"
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	// DefaultBodyReadTimeout bounds the reading of a request body: the
	// default grace period of a Kubernetes pod, since an upload slower than
	// that could not finish during a pod's termination anyway.
	DefaultBodyReadTimeout = 30 * time.Second
	// DefaultMaxHeaderBytes bounds a request's header to 64 KiB, what
	// proxies in front of a service accept (Envoy's max_request_headers_kb
	// defaults to 60 KiB; nginx's large_client_header_buffers to 4 × 8 KiB,
	// 8 KiB a line), rather than net/http's 1 MB: each connection that
	// sends a header holds up to this much memory until the header ends or
	// ReadHeaderTimeout passes, so 1 MB lets a few hundred slow clients take
	// hundreds of MiB.
	DefaultMaxHeaderBytes = 64 << 10
)

// Config configures the public HTTP server. Zero values resolve to the
// defaults stated on each field, as in [net/http.Server].
type Config struct {
	// Addr is the TCP address to listen on, host:port; port 0 picks a free
	// port ([Server.Addr] tells which). Default ":8080".
	Addr string `yaml:"addr" json:"addr"`
	// ReadHeaderTimeout bounds the reading of a request's header (it also
	// bounds how long a silent new connection is kept). Default 5s.
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout" json:"readHeaderTimeout"`
	// ReadTimeout bounds the reading of a whole request, header and body,
	// from its first byte. Default 0: none; BodyReadTimeout bounds bodies.
	ReadTimeout time.Duration `yaml:"readTimeout" json:"readTimeout"`
	// BodyReadTimeout bounds the reading of a request's body, from the
	// moment its handler is called: a read past it fails (with an error
	// matching [os.ErrDeadlineExceeded]), so that a client trickling a body
	// cannot hold its handler, nor the stop phase, for longer. Requests
	// without a body — GET, an SSE stream, a WebSocket handshake — and
	// hijacked connections are not affected, nor is the response. Default
	// 30s ([DefaultBodyReadTimeout]); negative: none. A ReadTimeout at
	// least as short makes it moot (it is then not set).
	BodyReadTimeout time.Duration `yaml:"bodyReadTimeout" json:"bodyReadTimeout"`
	// WriteTimeout bounds the writing of a response. Default 0: none, so
	// that SSE and other streamed responses work.
	WriteTimeout time.Duration `yaml:"writeTimeout" json:"writeTimeout"`
	// IdleTimeout is how long a keep-alive connection may wait for its next
	// request. Default 60s.
	IdleTimeout time.Duration `yaml:"idleTimeout" json:"idleTimeout"`
	// MaxHeaderBytes bounds the size of a request header (request line
	// included); a larger one is answered 431 Request Header Fields Too
	// Large. Default 64 KiB ([DefaultMaxHeaderBytes]), what proxies accept,
	// not net/http's 1 MB ([net/http.DefaultMaxHeaderBytes]). net/http
	// reads up to 4 KiB past it before it answers.
	MaxHeaderBytes int `yaml:"maxHeaderBytes" json:"maxHeaderBytes"`
	// MaxConns bounds the connections open at once on the public listener,
	// so that the process keeps file descriptors for the admin server (the
	// kubelet's probes: a liveness probe that cannot connect restarts the
	// pod) and for everything else it opens. Connections beyond it wait in
	// the kernel's accept queue until one closes. Default 0: the process's
	// open-file limit (RLIMIT_NOFILE, read at [New]) less a reserve of 64
	// or a tenth of the limit, whichever is more, and never less than half
	// the limit — 192 for `ulimit -n 256`, 58,983 for 65,536; no bound
	// where the limit is unlimited or cannot be read (Windows). Negative:
	// no bound.
	MaxConns int `yaml:"maxConns" json:"maxConns"`
	// H2C also serves HTTP/2 without TLS to clients that speak it with prior
	// knowledge (a proxy or a gRPC-style client), next to HTTP/1. Default
	// false: HTTP/1 only.
	H2C bool `yaml:"h2c" json:"h2c"`
}

// ErrConfig is matched (with [errors.Is]) by every error
// [Config.Validate] returns.
var ErrConfig = errors.New("httpmod: invalid config")

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.BodyReadTimeout == 0 {
		c.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return c
}

// Validate resolves defaults and checks c. The error names every field at
// fault and its value.
func (c Config) Validate() error {
	c = c.WithDefaults()
	var bad confcheck.Problems
	// Not bad.HostPort: httpmod's message carries net's reason.
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad.Addf("Addr=%q: %v", c.Addr, err)
	}
	bad.Negative("ReadHeaderTimeout", c.ReadHeaderTimeout)
	bad.Negative("ReadTimeout", c.ReadTimeout)
	bad.Negative("WriteTimeout", c.WriteTimeout)
	bad.Negative("IdleTimeout", c.IdleTimeout)
	bad.NegativeInt("MaxHeaderBytes", int64(c.MaxHeaderBytes))
	if len(bad) > 0 {
		return confcheck.NewError(ErrConfig, "httpmod: "+bad.String())
	}
	return nil
}
