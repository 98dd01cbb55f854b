package metricsmod_test

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// eventTimeout bounds every wait on an event; a safety net, never what a
// test measures.
const eventTimeout = 5 * time.Second

// client keeps no idle connection, so no transport goroutine outlives a test.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

// stopNow runs what is left of c's timeline at once — a Stop whose ctx has
// ended cuts the drain short — and waits for the report.
func stopNow(t *testing.T, c *lifecycle.Coordinator) {
	t.Helper()
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	_ = c.Stop(ended) // returns at once
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("waiting for the coordinator to stop: %v", err)
	}
}

// families is one scrape, parsed.
type families map[string]*dto.MetricFamily

func scrape(t *testing.T, url string) families {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = %d\n%s", url, resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return fams
}

// value returns the value of the series name{labels} ("k", "v", …), and
// whether it is there.
func (f families) value(name string, labels ...string) (float64, bool) {
	fam, ok := f[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range fam.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Untyped != nil:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// state returns the state whose drainfx_state series is 1, checking that
// exactly one is.
func (f families) state(t *testing.T) string {
	t.Helper()
	var on []string
	for _, m := range f["drainfx_state"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			on = append(on, m.GetLabel()[0].GetValue())
		}
	}
	if len(on) != 1 {
		t.Fatalf("drainfx_state is 1 for %v, want exactly one state", on)
	}
	return on[0]
}

func (f families) names() string {
	var n []string
	for k := range f {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, " ")
}

// eventually scrapes url until cond holds on a scrape, and returns that
// scrape.
func eventually(t *testing.T, url, what string, cond func(families) bool) families {
	t.Helper()
	var f families
	waittest.Eventually(t, eventTimeout, func() bool { f = scrape(t, url); return cond(f) }, what)
	return f
}
