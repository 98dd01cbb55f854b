// Package demo holds the session handlers of the example services' route
// contract (README, "The example service"), written once for every service
// and test that serves it: examples/service, examples/nethttp, and the
// apps of the core's tests (lifecycle/lifecycletest, modules).
//
//   - GET /ws: [Echo], a WebSocket echo;
//   - GET /events: [Ticks], an SSE stream of "data: N" at a fixed interval.
//
// Both end as wsmod's registry ends their sessions at the stop phase. The
// examples' module imports it by path (Go's internal rule is by import
// path, and github.com/drainfx/drainfx/examples is below the root).
// Documentation that a reader copies (the README, the packages' Example
// functions) shows its handlers inline instead.
package demo

import (
	"context"
	"strconv"
	"time"

	"github.com/drainfx/drainfx/wsmod"
)

// Echo sends every message back. The registry's close frame at the stop
// phase makes the next read return the peer's close reply (or the next
// write fail): either ends the handler normally.
func Echo(_ context.Context, conn wsmod.Conn) error {
	for {
		mt, p, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		if err := conn.WriteMessage(mt, p); err != nil {
			return err
		}
	}
}

// Ticks returns an SSE handler that sends "data: N" (N = 0, 1, 2, …) at
// once and then every interval, until the stream ends: at the stop phase
// the registry sends the final event and ends ctx.
func Ticks(interval time.Duration) func(ctx context.Context, s *wsmod.Stream) error {
	return func(ctx context.Context, s *wsmod.Stream) error {
		t := time.NewTicker(interval)
		defer t.Stop()
		for n := 0; ; n++ {
			if err := s.Send(wsmod.Event{Data: strconv.Itoa(n)}); err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	}
}
