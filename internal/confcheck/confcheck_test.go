package confcheck_test

import (
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/confcheck"
)

func TestProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give func(p *confcheck.Problems)
		want string
	}{
		{"none", func(p *confcheck.Problems) {
			p.Negative("Zero", 0)
			p.Negative("Positive", time.Second)
			p.NegativeInt("Count", 0)
			p.HostPort("Addr", ":8080")
			p.HostPort("Addr", "127.0.0.1:0")
			p.HostPort("Addr", "[::1]:9090")
		}, ""},
		{"negative duration", func(p *confcheck.Problems) { p.Negative("ReadTimeout", -time.Second) }, "ReadTimeout=-1s is negative"},
		{"negative nanosecond", func(p *confcheck.Problems) { p.Negative("IdleTimeout", -1) }, "IdleTimeout=-1ns is negative"},
		{"negative int", func(p *confcheck.Problems) { p.NegativeInt("MaxHeaderBytes", -1) }, "MaxHeaderBytes=-1 is negative"},
		{"no port", func(p *confcheck.Problems) { p.HostPort("Addr", "9090") }, `Addr="9090" is not host:port`},
		{"empty", func(p *confcheck.Problems) { p.HostPort("Addr", "") }, `Addr="" is not host:port`},
		{"in order, joined", func(p *confcheck.Problems) {
			p.Negative("GracePeriod", -time.Second)
			p.Addf("MaxDrainDelay=%v is below DrainDelay=%v", time.Second, 2*time.Second)
			p.NegativeInt("ReadLimit", -2)
		}, "GracePeriod=-1s is negative; MaxDrainDelay=1s is below DrainDelay=2s; ReadLimit=-2 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var p confcheck.Problems
			tt.give(&p)
			if got := p.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if (len(p) == 0) != (tt.want == "") {
				t.Errorf("len = %d for %q", len(p), tt.want)
			}
		})
	}
}
