package main_test

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/proctest"
)

// BenchmarkSIGTERMExit is a process-level measurement: one op is one
// process of an idle service, from the SIGTERM sent to its exit seen by the
// parent (ns/op is SIGTERM→exit). Starting the process and waiting until it
// is ready are not timed. "minimal" is examples/minimal with
// SHUTDOWN_DRAIN_DELAY=0s: the whole drainfx stop — signal, drain of no
// time, HTTP Shutdown, report, admin server last. The baseline is a bare
// net/http server (testdata/bare) that calls Shutdown on SIGTERM and exits.
// The allocations reported are the parent's, not the process's.
func BenchmarkSIGTERMExit(b *testing.B) {
	bare := proctest.Build(b, "./testdata/bare", b.TempDir())
	b.Run("minimal", func(b *testing.B) {
		sigtermExit(b, func(b *testing.B) *proctest.Proc {
			return proctest.StartService(b, bin, "SHUTDOWN_DRAIN_DELAY=0s").Proc
		})
	})
	b.Run("baseline=net/http", func(b *testing.B) {
		sigtermExit(b, func(b *testing.B) *proctest.Proc {
			port := proctest.FreePort(b)
			p := proctest.Start(b, bare, fmt.Sprintf("PORT=%d", port))
			p.WaitHTTP(b, proctest.URL(port, "/"), http.StatusOK, 10*time.Second)
			return p
		})
	})
}

func sigtermExit(b *testing.B, start func(b *testing.B) *proctest.Proc) {
	b.ReportAllocs()
	b.StopTimer()
	for range b.N {
		p := start(b)
		b.StartTimer()
		p.Signal(b, syscall.SIGTERM)
		code, _ := p.Wait(b, 10*time.Second)
		b.StopTimer()
		if code != 0 {
			b.Fatalf("exit code %d, want 0\n%s", code, p.Output())
		}
	}
}
