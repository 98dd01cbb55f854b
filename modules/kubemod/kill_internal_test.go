package kubemod

import (
	"testing"
	"time"
)

// The deadline on this node's clock from what the API said: the
// deletionTimestamp, corrected by what the Date header proves of the API
// server's clock, and never later than D0 + deletionGracePeriodSeconds.
func TestReadingKill(t *testing.T) {
	t.Parallel()
	const s = time.Second
	d0 := time.Date(2030, 1, 2, 3, 4, 5, 250_000_000, time.UTC) // D0 at .25 s
	sent := d0.Add(10 * time.Millisecond)
	recv := sent.Add(20 * time.Millisecond)
	g := func(n int64) *int64 { return &n }
	tests := []struct {
		name      string
		give      reading
		wantKill  time.Time
		wantAhead time.Duration
	}{
		{"no Date header", reading{deletion: new(d0.Add(12 * s).Truncate(s)), sent: sent, recv: recv},
			d0.Add(12 * s).Truncate(s), 0},
		{"clocks agree (Date within its second)", reading{deletion: new(d0.Add(12 * s).Truncate(s)), date: sent.Truncate(s), sent: sent, recv: recv},
			d0.Add(12 * s).Truncate(s), 0},
		// The server's clock is 3 s ahead: Date 08.000 received at 05.280
		// proves 2.72 s of it, taken off its deletionTimestamp (20.000).
		{"API server ahead", reading{deletion: new(d0.Add(15 * s).Truncate(s)), date: sent.Add(3 * s).Truncate(s), sent: sent, recv: recv},
			d0.Add(12030 * time.Millisecond), 2720 * time.Millisecond},
		// 5 s behind: Date 00.000 (so before 01.000 on its clock) for a
		// request sent at 05.260 proves 4.26 s, added to 12.000.
		{"API server behind", reading{deletion: new(d0.Add(7 * s).Truncate(s)), date: sent.Add(-5 * s).Truncate(s), sent: sent, recv: recv},
			d0.Add(11010 * time.Millisecond), -4260 * time.Millisecond},
		// An API server far ahead, unseen (no header): D0 + the grace
		// period bounds it.
		{"capped by D0 + deletionGracePeriodSeconds", reading{deletion: new(d0.Add(40 * s)), grace: g(12), sent: sent, recv: recv},
			d0.Add(12 * s), 0},
		{"deletionTimestamp before the cap", reading{deletion: new(d0.Add(11 * s).Truncate(s)), grace: g(12), sent: sent, recv: recv},
			d0.Add(11 * s).Truncate(s), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			kill, ahead := tt.give.kill(d0)
			if !kill.Equal(tt.wantKill) || ahead != tt.wantAhead {
				t.Errorf("kill = D0+%v (API clock ahead %v), want D0+%v (%v)", kill.Sub(d0), ahead, tt.wantKill.Sub(d0), tt.wantAhead)
			}
			if !kill.After(d0) {
				t.Errorf("kill D0+%v is not after D0", kill.Sub(d0))
			}
		})
	}
}
