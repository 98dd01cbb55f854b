package modules_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/fx/fxtest"

	"github.com/drainfx/drainfx/modules"
)

// An app that logs with log/slog gets drainfx's lines — the plan, the
// report as a group, the summary — and fx's events in its own handler,
// with no zap logger of its own.
func TestSlog(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer // slog's JSON handler serialises its writes; read once the app has stopped
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app := fxtest.New(t, modules.Web(testConfig()), modules.Slog(l))
	app.RequireStart().RequireStop()

	byMsg := map[string]map[string]any{}
	for line := range strings.Lines(buf.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line of the app's handler: %q: %v", line, err)
		}
		byMsg[rec["msg"].(string)] = rec
	}
	plan, ok := byMsg["shutdown plan"]["plan"].(map[string]any)
	if !ok || plan["gracePeriod"] == nil {
		t.Errorf("no plan group in %v", byMsg["shutdown plan"])
	}
	report, ok := byMsg["shutdown report"]["report"].(map[string]any)
	if !ok || report["exitCode"] != float64(0) || byMsg["shutdown report"]["component"] != "lifecycle" {
		t.Errorf("shutdown report: %v", byMsg["shutdown report"])
	}
	var summary bool
	for msg := range byMsg {
		summary = summary || strings.HasPrefix(msg, "shutdown clean")
	}
	if !summary {
		t.Errorf("no summary line in:\n%s", buf.String())
	}
	if byMsg["started"] == nil || byMsg["provided"] == nil { // fx's events, through fxevent.SlogLogger
		t.Errorf("no fx events in:\n%s", buf.String())
	}
}
