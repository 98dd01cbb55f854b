package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/drainfx/drainfx/examples/grpc/echopb"
)

// grpcTimeout bounds one unary call.
const grpcTimeout = time.Minute

// grpcLoad is the gRPC share of the load: its counters.
type grpcLoad struct {
	echo, newChan counter      // unary Echo calls: on long-lived channels, on a channel per call
	conns         atomic.Int64 // connections the long-lived channels opened
	streamsOpened atomic.Int64 // Ticks streams that delivered a tick or a status from the server
	streamsFailed atomic.Int64 // Ticks streams that never did (the open failed)
	streamsLost   atomic.Int64
	streamsClean  atomic.Int64
	ticks         atomic.Int64
	streamEnds    map[string]int64 // "UNAVAILABLE from the server" → count; under load.mu
}

// grpcStats is the stats handler of the load's channels: it counts their
// connections, and tells a stream whether its status came from the server
// (in trailers) or from the client itself (a broken connection reads as
// UNAVAILABLE too).
type grpcStats struct{ conns *atomic.Int64 }

type trailersKey struct{}

func (h grpcStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (h grpcStats) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context   { return ctx }

func (h grpcStats) HandleConn(_ context.Context, s stats.ConnStats) {
	if _, ok := s.(*stats.ConnBegin); ok && h.conns != nil {
		h.conns.Add(1)
	}
}

func (h grpcStats) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if _, ok := s.(*stats.InTrailer); ok {
		if got, ok := ctx.Value(trailersKey{}).(*atomic.Bool); ok {
			got.Store(true)
		}
	}
}

// grpcDial opens a channel to the proxy. Nothing is retried beyond what
// grpc-go does by itself (transparent retries of calls the server never
// saw); a call made while the channel cannot connect fails (no
// wait-for-ready).
func (l *load) grpcDial(conns *atomic.Int64) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+l.proxyAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(grpcStats{conns: conns}),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return l.dial(ctx, "tcp", addr)
		}))
}

// grpcEchoClient calls Echo once per Interval on one long-lived channel.
func (l *load) grpcEchoClient(ctx context.Context, id int, rng *rand.Rand) {
	cc, err := l.grpcDial(&l.grpc.conns)
	if err != nil {
		l.grpc.echo.lost.Add(1)
		l.lose("gRPC channel", err)
		return
	}
	defer cc.Close()
	c := echopb.NewEchoClient(cc)
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for n := 0; pace(ctx, tick); n++ {
		l.grpcEcho(ctx, c, id, rng, n, &l.grpc.echo, rowGRPCEcho)
	}
}

// grpcNewChannelClient opens a channel per call, as a client that dials
// per request does, and closes it after the call.
func (l *load) grpcNewChannelClient(ctx context.Context, id int, rng *rand.Rand) {
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for n := 0; pace(ctx, tick); n++ {
		cc, err := l.grpcDial(nil)
		if err != nil {
			l.grpc.newChan.seen.Add(1)
			l.grpc.newChan.lost.Add(1)
			l.lose(rowGRPCNewChan, err)
			continue
		}
		l.grpcEcho(ctx, echopb.NewEchoClient(cc), id, rng, n, &l.grpc.newChan, rowGRPCNewChan)
		cc.Close()
	}
}

// grpcEcho makes one Echo call and checks the answer: OK and the message
// sent.
func (l *load) grpcEcho(ctx context.Context, c echopb.EchoClient, id int, rng *rand.Rand, n int, ctr *counter, row string) {
	msg := string(payload(rng, id, n))
	cctx, cancel := context.WithTimeout(ctx, grpcTimeout)
	r, err := c.Echo(cctx, &echopb.EchoRequest{Message: msg})
	cancel()
	if ctx.Err() != nil {
		return // the run ended
	}
	ctr.seen.Add(1)
	if err == nil && r.GetMessage() != msg {
		err = fmt.Errorf("echo %.40q, want %.40q", r.GetMessage(), msg)
	}
	if err != nil {
		ctr.lost.Add(1)
		l.lose(row, err)
		return
	}
	l.ok(id)
}

// grpcTicksClient reads Ticks streams one after the other on one
// long-lived channel, opening the next as soon as one ends.
func (l *load) grpcTicksClient(ctx context.Context, id int) {
	cc, err := l.grpcDial(&l.grpc.conns)
	if err != nil {
		l.grpc.streamsFailed.Add(1)
		l.grpc.streamsLost.Add(1)
		l.lose("gRPC channel", err)
		return
	}
	defer cc.Close()
	c := echopb.NewEchoClient(cc)
	for ctx.Err() == nil {
		if !l.grpcTicksStream(ctx, c, id) {
			backoff(ctx)
		}
	}
}

// grpcTicksStream reads one stream: ticks numbered from 0, in order. It
// ends cleanly when the server ends it with UNAVAILABLE (drainfx's "open it
// again, elsewhere") or OK, sent in its trailers; a status the client made
// up (a broken connection reads as UNAVAILABLE too), a wrong tick, or a
// stream that could not be opened is a loss. It returns false if the
// stream could not be opened.
func (l *load) grpcTicksStream(ctx context.Context, c echopb.EchoClient, id int) bool {
	var fromServer atomic.Bool
	sctx, cancel := context.WithCancel(context.WithValue(ctx, trailersKey{}, &fromServer))
	defer cancel()
	var (
		n   int64
		end error
	)
	st, err := c.Ticks(sctx, &echopb.TicksRequest{})
	if err != nil {
		end = err
	} else {
		for {
			tick, err := st.Recv()
			if err != nil {
				end = err
				break
			}
			if tick.GetN() != n {
				end = fmt.Errorf("%w: tick %d, want %d", errWrongTick, tick.GetN(), n)
				cancel()
				break
			}
			n++
			l.ok(id)
		}
	}
	if ctx.Err() != nil {
		return true // the run ended
	}
	code := status.Code(end)
	if errors.Is(end, io.EOF) {
		code = codes.OK
	}
	clean := fromServer.Load() && !errors.Is(end, errWrongTick) && (code == codes.Unavailable || code == codes.OK)
	opened := n > 0 || fromServer.Load()
	how := code.String() + " from the server"
	switch {
	case errors.Is(end, errWrongTick):
		how = "wrong tick"
	case !fromServer.Load():
		how = code.String() + " without the server's status"
	}
	l.grpc.ticks.Add(n)
	if opened {
		l.grpc.streamsOpened.Add(1)
	} else {
		l.grpc.streamsFailed.Add(1)
	}
	l.mu.Lock()
	if l.grpc.streamEnds == nil {
		l.grpc.streamEnds = map[string]int64{}
	}
	l.grpc.streamEnds[how]++
	l.mu.Unlock()
	if clean {
		l.grpc.streamsClean.Add(1)
		return true
	}
	l.grpc.streamsLost.Add(1)
	l.lose(rowGRPCTicks, fmt.Errorf("after %d ticks: %s: %v", n, how, end))
	return opened
}

var errWrongTick = errors.New("wrong tick")

// The rows of the gRPC load.
const (
	rowGRPCEcho    = "gRPC Echo (a long-lived channel each)"
	rowGRPCNewChan = "gRPC Echo (a new channel per call)"
	rowGRPCTicks   = "gRPC Ticks streams"
)

// grpcEchoClients and grpcTicksClients split Load.GRPC: half Echo (the odd
// one too), half Ticks.
func grpcEchoClients(cfg Load) int  { return cfg.GRPC - cfg.GRPC/2 }
func grpcTicksClients(cfg Load) int { return cfg.GRPC / 2 }

// grpcRows is the gRPC share of the load table.
func (l *load) grpcRows() []Row {
	var rows []Row
	if n := grpcEchoClients(l.cfg); n > 0 {
		rows = append(rows, Row{Name: rowGRPCEcho, Seen: l.grpc.echo.seen.Load(), Lost: l.grpc.echo.lost.Load(),
			Note: fmt.Sprintf("%d connections for the %d long-lived channels", l.grpc.conns.Load(), n+grpcTicksClients(l.cfg))})
	}
	if l.cfg.GRPCNewConn > 0 {
		rows = append(rows, Row{Name: rowGRPCNewChan, Seen: l.grpc.newChan.seen.Load(), Lost: l.grpc.newChan.lost.Load()})
	}
	if grpcTicksClients(l.cfg) > 0 {
		l.mu.Lock()
		ends := make([]string, 0, len(l.grpc.streamEnds))
		for how, n := range l.grpc.streamEnds {
			ends = append(ends, fmt.Sprintf("%s×%d", how, n))
		}
		l.mu.Unlock()
		sort.Strings(ends)
		note := fmt.Sprintf("%d ticks", l.grpc.ticks.Load())
		if len(ends) > 0 {
			note += "; ended: " + strings.Join(ends, ", ")
		}
		if f := l.grpc.streamsFailed.Load(); f > 0 {
			note += fmt.Sprintf("; %d opens failed", f)
		}
		rows = append(rows, Row{Name: rowGRPCTicks, Seen: l.grpc.streamsOpened.Load() + l.grpc.streamsFailed.Load(),
			Lost: l.grpc.streamsLost.Load(), Note: note})
	}
	return rows
}
