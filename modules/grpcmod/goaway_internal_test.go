package grpcmod

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// recConn records what is written to it.
type recConn struct {
	net.Conn
	buf bytes.Buffer
}

func (c *recConn) Write(p []byte) (int, error) { return c.buf.Write(p) }

// frames is a server's stream of frames, built with x/net's framer.
type frames struct {
	buf bytes.Buffer
	fr  *http2.Framer
	enc *hpack.Encoder
	hb  bytes.Buffer
}

func newFrames() *frames {
	f := &frames{}
	f.fr = http2.NewFramer(&f.buf, nil)
	f.enc = hpack.NewEncoder(&f.hb)
	return f
}

func (f *frames) block(fields ...string) []byte {
	f.hb.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		_ = f.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	return bytes.Clone(f.hb.Bytes())
}

// response is a unary answer on stream id: headers, a message, trailers.
func (f *frames) response(id uint32) *frames {
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.block(":status", "200"), EndHeaders: true})
	_ = f.fr.WriteData(id, false, []byte("\x00\x00\x00\x00\x05hello"))
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: f.block("grpc-status", "0"), EndHeaders: true, EndStream: true})
	return f
}

// split writes b to c in the chunk sizes given (the rest in one write).
func split(t *testing.T, c io.Writer, b []byte, sizes ...int) {
	t.Helper()
	for _, n := range sizes {
		n = min(n, len(b))
		if w, err := c.Write(b[:n]); err != nil || w != n {
			t.Fatalf("Write = %d, %v; want %d", w, err, n)
		}
		b = b[n:]
	}
	if len(b) > 0 {
		if w, err := c.Write(b); err != nil || w != len(b) {
			t.Fatalf("Write = %d, %v; want %d", w, err, len(b))
		}
	}
}

// frameOffset is where the k-th frame of b (from 0) begins.
func frameOffset(b []byte, k int) int {
	off := 0
	for range k {
		off += frameHeaderLen + (int(b[off])<<16 | int(b[off+1])<<8 | int(b[off+2]))
	}
	return off
}

// decode reads the frames back: "HEADERS 1", "HEADERS 1 END_STREAM",
// "DATA 1", "GOAWAY 2147483647 NO_ERROR draining", …
func decode(t *testing.T, b []byte) []string {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	var out []string
	for {
		f, err := fr.ReadFrame()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("the stream of frames is broken after %v: %v", out, err)
		}
		h := f.Header()
		s := fmt.Sprintf("%v %d", h.Type, h.StreamID)
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			s = fmt.Sprintf("GOAWAY %d %v %s", f.LastStreamID, f.ErrCode, f.DebugData())
		case *http2.HeadersFrame:
			if f.StreamEnded() {
				s += " END_STREAM"
			}
		}
		out = append(out, s)
	}
}

func TestGoAwayConnInsertsTheFrameBeforeTheTrailers(t *testing.T) {
	t.Parallel()
	drainAt := func(n int) func() bool { // draining from the n-th look on
		looks := 0
		return func() bool { looks++; return looks >= n }
	}
	var preface bytes.Buffer
	_ = http2.NewFramer(&preface, nil).WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100})
	two := newFrames().response(1).response(3).buf.Bytes()
	tests := []struct {
		name     string
		draining func() bool
		give     []byte
		sizes    []int // write chunk sizes
		want     string
	}{
		{"serving: nothing inserted", func() bool { return false }, two, nil,
			"HEADERS 1|DATA 1|HEADERS 1 END_STREAM|HEADERS 3|DATA 3|HEADERS 3 END_STREAM"},
		{"draining: before the first trailers, once", func() bool { return true }, two, nil,
			"HEADERS 1|DATA 1|GOAWAY 2147483647 NO_ERROR draining|HEADERS 1 END_STREAM|HEADERS 3|DATA 3|HEADERS 3 END_STREAM"},
		{"the drain begins between the two answers", drainAt(2), two, nil,
			"HEADERS 1|DATA 1|HEADERS 1 END_STREAM|HEADERS 3|DATA 3|GOAWAY 2147483647 NO_ERROR draining|HEADERS 3 END_STREAM"},
		// Chunks that end inside headers and payloads: the frame
		// boundaries are tracked across writes.
		{"split writes", func() bool { return true }, append(bytes.Clone(preface.Bytes()), two...), []int{4, 7, 9, 1, 13, 2},
			"SETTINGS 0|HEADERS 1|DATA 1|GOAWAY 2147483647 NO_ERROR draining|HEADERS 1 END_STREAM|HEADERS 3|DATA 3|HEADERS 3 END_STREAM"},
		// A trailers frame whose header began in an earlier write cannot
		// have anything before it: the next trailers get it.
		{"trailers header split", func() bool { return true }, two, []int{frameOffset(two, 2) + 4},
			"HEADERS 1|DATA 1|HEADERS 1 END_STREAM|HEADERS 3|DATA 3|GOAWAY 2147483647 NO_ERROR draining|HEADERS 3 END_STREAM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recConn{}
			c := &goAwayConn{Conn: rec, draining: tt.draining}
			split(t, c, tt.give, tt.sizes...)
			if got := strings.Join(decode(t, rec.buf.Bytes()), "|"); got != tt.want {
				t.Errorf("frames written:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// Once the server has sent a GOAWAY of its own (GracefulStop,
// MaxConnectionAge), nothing is inserted: a GOAWAY with a higher last
// stream id after it is a protocol error.
func TestGoAwayConnLeavesTheServersOwnGoAway(t *testing.T) {
	t.Parallel()
	f := newFrames()
	_ = f.fr.WriteGoAway(1<<31-1, http2.ErrCodeNo, []byte("graceful_stop"))
	_ = f.fr.WriteGoAway(3, http2.ErrCodeNo, []byte("graceful_stop"))
	f.response(3)
	rec := &recConn{}
	c := &goAwayConn{Conn: rec, draining: func() bool { return true }}
	split(t, c, f.buf.Bytes())
	want := "GOAWAY 2147483647 NO_ERROR graceful_stop|GOAWAY 3 NO_ERROR graceful_stop|HEADERS 3|DATA 3|HEADERS 3 END_STREAM"
	if got := strings.Join(decode(t, rec.buf.Bytes()), "|"); got != want {
		t.Errorf("frames written:\n%s\nwant:\n%s", got, want)
	}
}

// A header block in several frames (HEADERS, CONTINUATION) is never cut:
// the GOAWAY goes before the block.
func TestGoAwayConnKeepsHeaderBlocksWhole(t *testing.T) {
	t.Parallel()
	f := newFrames()
	block := f.block("grpc-status", "0", "x-long", strings.Repeat("a", 40))
	_ = f.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:10], EndStream: true})
	_ = f.fr.WriteContinuation(1, true, block[10:])
	rec := &recConn{}
	c := &goAwayConn{Conn: rec, draining: func() bool { return true }}
	split(t, c, f.buf.Bytes())
	want := "GOAWAY 2147483647 NO_ERROR draining|HEADERS 1 END_STREAM|CONTINUATION 1"
	if got := strings.Join(decode(t, rec.buf.Bytes()), "|"); got != want {
		t.Errorf("frames written:\n%s\nwant:\n%s", got, want)
	}
}
