package main_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/drainfx/drainfx/internal/proctest"
)

// The example's /metrics shows the drainfx_ families, the state follows
// the drain, and the process logs one shutdown report with its fields.
func TestMetricsAndReport(t *testing.T) {
	t.Parallel()
	s := start(t, "SHUTDOWN_DRAIN_DELAY=1s")
	metrics := s.AdminURL("/metrics")
	_, text := proctest.Get(t, metrics)
	for _, want := range []string{
		`drainfx_state{state="serving"} 1`,
		"drainfx_state_number 1",
		"drainfx_inflight_requests 0",
		`drainfx_cut_total{kind="requests"} 0`,
		// the tests' fixed drain: DrainDelay
		`drainfx_phase_planned_seconds{phase="draining"} 1`,
		"go_goroutines ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics has no %q:\n%s", want, text)
		}
	}

	s.Signal(t, syscall.SIGTERM)
	s.WaitHTTP(t, s.AdminURL("/readyz"), http.StatusServiceUnavailable, time.Second)
	if _, text := proctest.Get(t, metrics); !strings.Contains(text, `drainfx_state{state="draining"} 1`) ||
		!strings.Contains(text, `drainfx_drain_start_timestamp_seconds{reason="signal_terminated"}`) ||
		!strings.Contains(text, `drainfx_phase_duration_seconds{phase="draining"}`) {
		t.Errorf("/metrics during the drain:\n%s", text)
	}
	if code, _ := s.Wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}

	var reports []string
	for _, line := range strings.Split(s.Output(), "\n") {
		if strings.Contains(line, `"msg":"shutdown report"`) {
			reports = append(reports, line)
		}
	}
	if len(reports) != 1 {
		t.Fatalf("%d shutdown reports in the log, want 1:\n%s", len(reports), s.Output())
	}
	var entry struct {
		Level  string `json:"level"`
		Report struct {
			Reason       string             `json:"reason"`
			D0           float64            `json:"d0"`
			DrainEndedBy string             `json:"drainEndedBy"`
			Phases       []map[string]any   `json:"phases"`
			InFlightAtD0 map[string]float64 `json:"inFlightAtD0"`
			Cut          map[string]float64 `json:"cut"`
			ExitCode     *int               `json:"exitCode"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(reports[0]), &entry); err != nil {
		t.Fatalf("report line %s: %v", reports[0], err)
	}
	r := entry.Report
	if entry.Level != "info" || r.Reason != "signal terminated" || r.D0 == 0 || r.DrainEndedBy != "delay" ||
		r.ExitCode == nil || *r.ExitCode != 0 || len(r.Cut) != 0 {
		t.Errorf("report %s", reports[0])
	}
	if v, ok := r.InFlightAtD0["requests"]; !ok || v != 0 {
		t.Errorf("inFlightAtD0 = %v, want requests: 0", r.InFlightAtD0)
	}
	var names []string
	for _, p := range r.Phases {
		names = append(names, p["name"].(string))
		if _, ok := p["planned"]; !ok {
			t.Errorf("phase without planned: %v", p)
		}
	}
	if got := strings.Join(names, ","); got != "draining,drained,stopping,tearing down" {
		t.Errorf("phases %s", got)
	}
	if d, _ := r.Phases[0]["actual"].(float64); d < 1 || d > 1.5 {
		t.Errorf("drain lasted %vs, want 1s", d)
	}
}
