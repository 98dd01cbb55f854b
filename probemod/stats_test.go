package probemod_test

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/clocktest"
	"github.com/drainfx/drainfx/probemod"
)

func TestCheckStats(t *testing.T) {
	t.Parallel()
	c := newCoordinator(t, testLifecycle)
	c.MarkStarted()
	clk := clocktest.New()
	boom := errors.New("boom")
	seq := &sequence{errs: []error{nil, boom, boom, nil}}
	took := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond, 40 * time.Millisecond}
	db := func(ctx context.Context) error {
		clk.Advance(took[seq.runs.Load()]) // the check's own time, on the fake clock
		return seq.check(ctx)
	}
	p, err := probemod.NewProbes(probemod.Config{CacheTTL: probemod.NoCache, FailureThreshold: 2}, c,
		[]probemod.Check{{Name: "db", Check: db}, okCheck("cache")}, probemod.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer closeProbes(t, p)
	mux := http.NewServeMux()
	p.Register(mux)

	if got, want := p.CheckStats(), []probemod.CheckStats{{Name: "cache"}, {Name: "db"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("CheckStats() before any probe = %+v, want %+v", got, want)
	}
	tests := []struct {
		wantCode int
		want     probemod.CheckStats
	}{
		{200, probemod.CheckStats{Name: "db", Runs: 1, Passing: true, LastDuration: 10 * time.Millisecond}},
		{200, probemod.CheckStats{Name: "db", Runs: 2, Failures: 1, Passing: true, LastDuration: 20 * time.Millisecond}}, // under the threshold
		{503, probemod.CheckStats{Name: "db", Runs: 3, Failures: 2, Passing: false, LastDuration: 30 * time.Millisecond}},
		{200, probemod.CheckStats{Name: "db", Runs: 4, Failures: 2, Passing: true, LastDuration: 40 * time.Millisecond}},
	}
	for i, tt := range tests {
		clk.Advance(time.Millisecond) // past the last result's NoCache expiry
		if code := serve(mux, "/readyz").Code; code != tt.wantCode {
			t.Errorf("probe %d: /readyz = %d, want %d", i, code, tt.wantCode)
		}
		st := p.CheckStats()
		// cache runs beside db: its duration includes db's on the fake clock.
		if len(st) != 2 || st[0].Name != "cache" || st[0].Runs != int64(i+1) || st[0].Failures != 0 || !st[0].Passing {
			t.Errorf("probe %d: cache stats = %+v", i, st)
		}
		if got := st[1]; got != tt.want {
			t.Errorf("probe %d: db stats = %+v, want %+v", i, got, tt.want)
		}
	}
}
