package grpcmod

import (
	"encoding/binary"
	"net"

	"google.golang.org/grpc/credentials"
)

// HTTP/2 framing (RFC 9113 §4.1, §6.2, §6.8): what the drain's GOAWAY needs
// of it.
const (
	frameHeaderLen  = 9
	frameHeaders    = 0x1
	frameGoAway     = 0x7
	flagEndStream   = 0x1
	maxStreamID     = 1<<31 - 1
	goAwayDebugData = "draining"
)

// goAwayFrame is the drain's GOAWAY: last stream 2^31−1, NO_ERROR. It is
// the first frame of HTTP/2's graceful shutdown (RFC 9113 §6.8): the client
// opens no new stream on the connection and sends its next RPCs on a new
// one, while every stream it has already opened is served. grpc-go's own
// GracefulStop sends the same frame first, then a second one with the real
// last stream id, which a client accepts after this one.
var goAwayFrame = func() []byte {
	b := make([]byte, frameHeaderLen+8+len(goAwayDebugData))
	n := len(b) - frameHeaderLen
	b[0], b[1], b[2] = byte(n>>16), byte(n>>8), byte(n)
	b[3] = frameGoAway
	// flags 0, stream 0
	binary.BigEndian.PutUint32(b[9:], maxStreamID)
	// error code NO_ERROR (0) at b[13:17]
	copy(b[17:], goAwayDebugData)
	return b
}()

// drainCreds wraps the server's transport credentials so that every
// connection, once its handshake is done, is a [goAwayConn]: the bytes it
// sees are the server's HTTP/2 frames in the clear, whatever the
// credentials (plaintext or TLS).
type drainCreds struct {
	credentials.TransportCredentials
	draining func() bool
	sent     func() // counts a GOAWAY sent
}

func (c drainCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return conn, info, err
	}
	return &goAwayConn{Conn: conn, draining: c.draining, sent: c.sent}, info, nil
}

func (c drainCreds) Clone() credentials.TransportCredentials {
	return drainCreds{TransportCredentials: c.TransportCredentials.Clone(), draining: c.draining, sent: c.sent}
}

// goAwayConn is a server connection that, once the drain has begun, sends
// the client a GOAWAY right before the trailers of the next RPC that ends
// on it (its first HEADERS frame with END_STREAM), once: the client gets
// the answer of that RPC and sends the next one on a new connection,
// through the proxies — to another pod, or back here while the proxies
// still route here, and then that connection is sent away after its first
// RPC too. It is the HTTP/1 drain's Connection: close, for HTTP/2.
//
// grpc-go has no public way to send a GOAWAY on one connection (only
// GracefulStop, for all of them at once, and MaxConnectionAge, fixed when
// the server is built), so the frame is written into the server's own
// stream of frames, between two of them. The connection tracks where each
// frame begins (9-byte headers, length-prefixed) and inserts the frame at
// a frame boundary, which is never inside a header block: a HEADERS frame
// only begins after the previous block has ended. Once the server sends a
// GOAWAY of its own (GracefulStop, MaxConnectionAge), nothing more is
// inserted: a later GOAWAY with a higher last stream id would be a
// protocol error.
//
// Write is called by one goroutine at a time (grpc-go's writer for the
// connection), so the parse state needs no lock.
type goAwayConn struct {
	net.Conn
	draining func() bool
	sent     func()

	done bool                 // a GOAWAY went out (ours or the server's): pass everything through
	hdr  [frameHeaderLen]byte // the header being read, when split across writes
	nhdr int                  // bytes of hdr read
	skip int                  // payload bytes of the current frame still to pass
}

// Write passes p on, inserting the GOAWAY before the first trailers once
// the drain has begun.
func (c *goAwayConn) Write(p []byte) (int, error) {
	if c.done {
		return c.Conn.Write(p)
	}
	at := c.scan(p)
	if at < 0 {
		return c.Conn.Write(p)
	}
	c.done = true
	bufs := net.Buffers{p[:at], goAwayFrame, p[at:]}
	n64, err := bufs.WriteTo(c.Conn) // one writev
	n := int(n64)
	if n >= at+len(goAwayFrame) && c.sent != nil {
		c.sent()
	}
	// The caller is told of p's bytes only.
	switch {
	case n <= at:
		return n, err
	case n < at+len(goAwayFrame):
		return at, err
	default:
		return n - len(goAwayFrame), err
	}
}

// scan advances the parse state over p and returns the offset in p of the
// frame the GOAWAY goes before, or -1. Once it has found one (or seen the
// server's own GOAWAY) it is not called again.
func (c *goAwayConn) scan(p []byte) int {
	for i := 0; i < len(p); {
		if c.skip > 0 {
			n := min(c.skip, len(p)-i)
			c.skip -= n
			i += n
			continue
		}
		start := i - c.nhdr // where this frame's header began; < 0 if in an earlier write
		var h []byte
		if c.nhdr == 0 && len(p)-i >= frameHeaderLen {
			h = p[i : i+frameHeaderLen] // the whole header in p: read it there
			i += frameHeaderLen
		} else {
			n := copy(c.hdr[c.nhdr:], p[i:])
			c.nhdr += n
			i += n
			if c.nhdr < frameHeaderLen {
				return -1 // the header goes on in the next write
			}
			c.nhdr = 0
			h = c.hdr[:]
		}
		c.skip = int(h[0])<<16 | int(h[1])<<8 | int(h[2])
		switch typ, flags := h[3], h[4]; {
		case typ == frameGoAway:
			c.done = true // the server's own: it knows best from here on
			return -1
		case typ == frameHeaders && flags&flagEndStream != 0 && start >= 0 && c.draining():
			return start
		}
	}
	return -1
}
