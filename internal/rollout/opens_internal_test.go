package rollout

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseConnLine(t *testing.T) {
	tests := []struct {
		give     string
		wantPort int
		wantSlot int
		wantAt   time.Time
		wantOK   bool
	}{
		{give: "40312 s3 1796525524.038", wantPort: 40312, wantSlot: 3, wantAt: time.Unix(1796525524, 38e6), wantOK: true},
		{give: "40312 <NOSRV> 1796525524.038"}, // no server: the check's own dial
		{give: "[WARNING] (1234) : Server be/s0 is going DOWN for maintenance."},
		{give: "40312 s3 1796525524"},
	}
	for _, tt := range tests {
		port, c, ok := parseConnLine(tt.give)
		if ok != tt.wantOK || port != tt.wantPort || c.slot != tt.wantSlot || !c.at.Equal(tt.wantAt) {
			t.Errorf("parseConnLine(%q) = %d, %+v, %v; want %d, slot %d at %v, %v", tt.give, port, c, ok, tt.wantPort, tt.wantSlot, tt.wantAt, tt.wantOK)
		}
	}
}

// Opens are placed on the pod the proxy sent their connection to, and only
// those on a pod not terminating at the time count, each at the time the
// proxy handed the pod its connection (the client's time for a stream on a
// kept-alive connection) and at the client's time; the peak is the most in
// any 100 ms.
func TestSurvivorOpens(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	pods := []PodReport{
		{Name: "pod-0", Slot: 0, Terminated: true, T0: at(1000)},
		{Name: "pod-1", Slot: 1},
		{Name: "pod-2", Slot: 2},
	}
	conns := map[int][]proxyConn{
		100: {{at: at(990), slot: 0}},                           // opened on pod-0 before its T0
		101: {{at: at(1500), slot: 0}},                          // on pod-0 while it terminates (still in the proxy)
		102: {{at: at(1600), slot: 1}},                          // a survivor
		103: {{at: at(200), slot: 0}, {at: at(1700), slot: 2}},  // the port used again: the later connection
		104: {{at: at(1750), slot: 1}},                          // a survivor
		105: {{at: at(1900), slot: 2}},                          // a survivor, 150 ms after 104's open
		106: {{at: at(5000), slot: 1}},                          // accepted after the open: no match
		107: {{at: at(1702), slot: 2}, {at: at(1720), slot: 2}}, // the open matches the first (the second is after it)
		108: {{at: at(1200), slot: 1}},                          // kept alive: a second stream on it
	}
	opens := []sessionOpen{
		{at: at(995), port: 100},  // before the first termination: not counted
		{at: at(1510), port: 101}, // on the terminating pod
		{at: at(1690), port: 102}, // the client read the answer 90 ms late
		{at: at(1705), port: 103},
		{at: at(1760), port: 104},
		{at: at(1910), port: 105},
		{at: at(1915), port: 106},
		{at: at(1712), port: 107},
		{at: at(1950), port: 108, reused: true}, // the pod took it then, not at 1200
	}
	atPod, atClient, unplaced := survivorOpens(opens, conns, pods, at(1000))
	wantPod := []time.Time{at(1600), at(1700), at(1702), at(1750), at(1900), at(1950)}
	wantClient := []time.Time{at(1690), at(1705), at(1712), at(1760), at(1910), at(1950)}
	if !slices.EqualFunc(atPod, wantPod, time.Time.Equal) || !slices.EqualFunc(atClient, wantClient, time.Time.Equal) || unplaced != 1 {
		t.Fatalf("on the pod %v, at the client %v, unplaced %d; want %v, %v, 1", atPod, atClient, unplaced, wantPod, wantClient)
	}
	if n, first := peak(atPod, OpensWindow); n != 3 || !first.Equal(at(1700)) {
		t.Errorf("peak %d at %v, want 3 at %v", n, first, at(1700))
	}
	// The late client bunches its open with the next three.
	if n, first := peak(atClient, OpensWindow); n != 4 || !first.Equal(at(1690)) {
		t.Errorf("client peak %d at %v, want 4 at %v", n, first, at(1690))
	}
	if n, _ := peak(nil, OpensWindow); n != 0 {
		t.Errorf("peak of nothing %d", n)
	}
}

// The window a pod's sessions were closed over comes from wsmod's "sessions
// closed" line, in seconds as zap's production encoder writes durations, or
// as a Go duration.
func TestReadSessionsClosed(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantN      int
		wantWindow time.Duration
		wantPeak   int
		wantLogged bool
	}{
		{"zap production", `{"level":"info","msg":"drain started"}` + "\n" +
			`{"level":"info","ts":1.5,"msg":"sessions closed","component":"ws","sessions":1050,"forced":0,"window":0.419,"peakPer100ms":253,"took":0.6}` + "\n",
			1050, 419 * time.Millisecond, 253, true},
		{"duration string", `{"msg":"sessions closed","sessions":3,"window":"250ms"}`, 3, 250 * time.Millisecond, 0, true},
		{"no such line", `{"msg":"closing sessions","sessions":3,"window":0.4}` + "\nplain text\n", 0, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &pod{PodReport: PodReport{Log: filepath.Join(t.TempDir(), "pod.log")}}
			if err := os.WriteFile(p.Log, []byte(tt.give), 0o600); err != nil {
				t.Fatal(err)
			}
			p.readSessionsClosed()
			if p.SessionsClosed != tt.wantN || p.SessionCloseWindow != tt.wantWindow || p.SessionClosePeak != tt.wantPeak ||
				p.SessionsLogged != tt.wantLogged {
				t.Errorf("got %d over %v, peak %d (logged %v), want %d over %v, peak %d (%v)", p.SessionsClosed, p.SessionCloseWindow,
					p.SessionClosePeak, p.SessionsLogged, tt.wantN, tt.wantWindow, tt.wantPeak, tt.wantLogged)
			}
		})
	}
}

func TestWriteTableSessionOpens(t *testing.T) {
	res := &Result{
		Bin: "service", Replicas: 2, Replacements: 1,
		SessionOpensPeak: 251, SessionOpensPeakAt: 12345 * time.Millisecond, SessionOpensPeakClient: 270, SessionOpens: 1050,
		Pods: []PodReport{{Name: "pod-0", Terminated: true, SessionsClosed: 1050, SessionCloseWindow: 420 * time.Millisecond,
			SessionClosePeak: 253, SessionsLogged: true}},
	}
	var b strings.Builder
	if err := res.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"peak session opens per 100ms on the survivors: 251 (at 12.345s, as the proxy handed them the connections; 270 as the clients saw the sessions open; 1050 opened on them from the first termination on)",
		"1050 over 0.420s, ≤253/100ms",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}
