package idle_test

import (
	"testing"

	"github.com/drainfx/drainfx/internal/idle"
)

// BenchmarkNotify is what a removal pays when nobody waits, the usual
// case (a connection closing, a probe run ending): Notify, beside the
// baseline it replaced in httpmod and wsmod, a non-blocking send on a
// channel of size 1 (full, as it stays when nobody receives).
func BenchmarkNotify(b *testing.B) {
	b.Run("baseline=chan-send", func(b *testing.B) {
		ch := make(chan struct{}, 1)
		b.ReportAllocs()
		for b.Loop() {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	})
	b.Run("Notify", func(b *testing.B) {
		var sig idle.Signal
		b.ReportAllocs()
		for b.Loop() {
			sig.Notify()
		}
	})
}
