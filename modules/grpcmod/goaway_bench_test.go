package grpcmod

import (
	"net"
	"testing"
)

// discardConn takes every write.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkGoAwayConnWrite is the cost of the drain's frame tracking on the
// server's writes while serving: one unary answer (headers, a message,
// trailers) per write, as grpc-go's writer flushes it.
func BenchmarkGoAwayConnWrite(b *testing.B) {
	resp := newFrames().response(1).buf.Bytes()
	serving := func() bool { return false }
	for _, bb := range []struct {
		name string
		conn net.Conn
	}{
		{"baseline: the connection itself", discardConn{}},
		{"goAwayConn, serving", &goAwayConn{Conn: discardConn{}, draining: serving}},
	} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(resp)))
			for b.Loop() {
				_, _ = bb.conn.Write(resp)
			}
		})
	}
}
