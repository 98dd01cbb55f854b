package modules_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/drainfx/drainfx/lifecycle"
	"github.com/drainfx/drainfx/modules"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestFromEnv(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		give map[string]string
		want func(modules.Config) string // "" when the config is as expected
	}{
		{
			name: "defaults",
			give: nil,
			want: func(c modules.Config) string {
				if c.HTTP.Addr != ":8080" || c.Probe.Addr != ":9090" || c.Lifecycle != (lifecycle.Config{}) {
					return "not the defaults"
				}
				if got := c.Lifecycle.WithDefaults().DrainQuiet; got != (lifecycle.Config{}).WithDefaults().DrainQuiet {
					return "the adaptive drain is not on by default"
				}
				return ""
			},
		},
		{
			name: "all set",
			give: map[string]string{
				"PORT": "8000", "ADMIN_PORT": "9000", "SHUTDOWN_GRACE_PERIOD": "60s",
				"SHUTDOWN_DRAIN_DELAY": "2s", "SHUTDOWN_DRAIN_QUIET": "1s", "SHUTDOWN_MAX_DRAIN_DELAY": "20s",
				"SHUTDOWN_TEARDOWN_RESERVE": "5s", "PRESTOP_TOKEN": "t", "SHUTDOWN_DRAIN_MISS_PROBABILITY": "0.01",
			},
			want: func(c modules.Config) string {
				want := lifecycle.Config{GracePeriod: time.Minute, DrainDelay: 2 * time.Second, DrainQuiet: time.Second,
					DrainMissProbability: 0.01, MaxDrainDelay: 20 * time.Second, TeardownReserve: 5 * time.Second, PrestopToken: "t"}
				if c.HTTP.Addr != ":8000" || c.Probe.Addr != ":9000" || c.Lifecycle != want {
					return "not as set"
				}
				return ""
			},
		},
		{
			name: "a grace period of a day, a tiny probability",
			give: map[string]string{"SHUTDOWN_GRACE_PERIOD": "24h", "SHUTDOWN_DRAIN_MISS_PROBABILITY": "1e-300"},
			want: func(c modules.Config) string {
				if c.Lifecycle.GracePeriod != 24*time.Hour || c.Lifecycle.DrainMissProbability != 1e-300 {
					return "not as set"
				}
				return ""
			},
		},
		{
			name: "0s drain delay means none, 0s quiet means off",
			give: map[string]string{"SHUTDOWN_DRAIN_DELAY": "0s", "SHUTDOWN_DRAIN_QUIET": "0"},
			want: func(c modules.Config) string {
				if c.Lifecycle.DrainDelay != lifecycle.None || c.Lifecycle.DrainQuiet != lifecycle.None {
					return "0s not mapped"
				}
				return ""
			},
		},
		{
			name: "public connections: a bound, or none",
			give: map[string]string{"HTTP_MAX_CONNS": "500"},
			want: func(c modules.Config) string {
				if c.HTTP.MaxConns != 500 {
					return "HTTP_MAX_CONNS not read"
				}
				if n, err := modules.FromEnv(lookup(map[string]string{"HTTP_MAX_CONNS": "-1"})); err != nil || n.HTTP.MaxConns != -1 {
					return fmt.Sprintf("HTTP_MAX_CONNS=-1: %d, %v", n.HTTP.MaxConns, err)
				}
				return ""
			},
		},
		{
			name: "port 0 twice: a free port each",
			give: map[string]string{"PORT": "0", "ADMIN_PORT": "0"},
			want: func(c modules.Config) string {
				if c.HTTP.Addr != ":0" || c.Probe.Addr != ":0" {
					return "not port 0"
				}
				return ""
			},
		},
		{
			name: "empty values keep the defaults",
			give: map[string]string{"PORT": "", "SHUTDOWN_DRAIN_DELAY": ""},
			want: func(c modules.Config) string {
				if c.HTTP.Addr != ":8080" || c.Lifecycle.DrainDelay != 0 {
					return "empty value not treated as unset"
				}
				return ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := modules.FromEnv(lookup(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if msg := tt.want(got); msg != "" {
				t.Errorf("%s: %+v", msg, got)
			}
		})
	}
}

func TestFromEnvErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		give map[string]string
		want []string
	}{
		{map[string]string{"PORT": "http"}, []string{`PORT="http"`, "port number"}},
		{map[string]string{"HTTP_MAX_CONNS": "1e3"}, []string{`HTTP_MAX_CONNS="1e3"`, "whole number"}},
		{map[string]string{"ADMIN_PORT": "70000"}, []string{`ADMIN_PORT="70000"`}},
		{map[string]string{"SHUTDOWN_DRAIN_DELAY": "abc"}, []string{`SHUTDOWN_DRAIN_DELAY="abc"`, "duration"}},
		{map[string]string{"SHUTDOWN_GRACE_PERIOD": "-1s"}, []string{`SHUTDOWN_GRACE_PERIOD="-1s"`}},
		{map[string]string{"SHUTDOWN_DRAIN_DELAY": "40s"}, []string{`SHUTDOWN_DRAIN_DELAY="40s"`, "SHUTDOWN_GRACE_PERIOD unset (30s)", "must be below GracePeriod"}},
		{map[string]string{"SHUTDOWN_DRAIN_DELAY": "2s", "SHUTDOWN_MAX_DRAIN_DELAY": "1s"}, []string{`SHUTDOWN_MAX_DRAIN_DELAY="1s"`, "below DrainDelay"}},
		// The values as written, not as stored: 1ns stays 1ns.
		{map[string]string{"SHUTDOWN_GRACE_PERIOD": "1ns"}, []string{`SHUTDOWN_GRACE_PERIOD="1ns"`, "must be below GracePeriod=1ns"}},
		{map[string]string{"SHUTDOWN_GRACE_PERIOD": "0s"}, []string{`SHUTDOWN_GRACE_PERIOD="0s"`, "more than 0"}},
		{map[string]string{"SHUTDOWN_MAX_DRAIN_DELAY": "0"}, []string{`SHUTDOWN_MAX_DRAIN_DELAY="0"`, "more than 0"}},
		{map[string]string{"SHUTDOWN_GRACE_PERIOD": "1s", "SHUTDOWN_DRAIN_DELAY": "0s", "SHUTDOWN_TEARDOWN_RESERVE": "0s"},
			[]string{`SHUTDOWN_DRAIN_DELAY="0s"`, "SHUTDOWN_MAX_DRAIN_DELAY unset (0s)", "DrainDelay=none + TeardownReserve=none + Margin=1s"}},
		{map[string]string{"SHUTDOWN_DRAIN_MISS_PROBABILITY": "1"}, []string{`SHUTDOWN_DRAIN_MISS_PROBABILITY="1"`, "probability"}},
		{map[string]string{"SHUTDOWN_DRAIN_MISS_PROBABILITY": "1%"}, []string{`SHUTDOWN_DRAIN_MISS_PROBABILITY="1%"`}},
		{map[string]string{"SHUTDOWN_DRAIN_MISS_PROBABILITY": "NaN"}, []string{`SHUTDOWN_DRAIN_MISS_PROBABILITY="NaN"`}},
		{map[string]string{"PORT": "7000", "ADMIN_PORT": "7000"}, []string{`PORT="7000"`, `ADMIN_PORT="7000"`, "share port 7000"}},
		{map[string]string{"PORT": "9090"}, []string{`PORT="9090"`, "ADMIN_PORT unset (default 9090)", "share port 9090"}},
		{map[string]string{"ADMIN_PORT": "8080"}, []string{"PORT unset (default 8080)", `ADMIN_PORT="8080"`}},
		{map[string]string{"PORT": "08080", "ADMIN_PORT": "8080"}, []string{`PORT="08080"`, `ADMIN_PORT="8080"`, "share port 8080"}},
		// 292 years, and a day and a second: a mistake, not a plan.
		{map[string]string{"SHUTDOWN_GRACE_PERIOD": "2562047h"}, []string{`SHUTDOWN_GRACE_PERIOD="2562047h"`, "above 24h0m0s"}},
		{map[string]string{"SHUTDOWN_GRACE_PERIOD": "86401s"}, []string{`SHUTDOWN_GRACE_PERIOD="86401s"`, "above 24h0m0s"}},
		// A token no header can carry, named without quoting it.
		{map[string]string{"PRESTOP_TOKEN": "s3cret\n"}, []string{"PRESTOP_TOKEN (7 bytes) has a newline at its end", "echo"}},
		{map[string]string{"PRESTOP_TOKEN": "s3cret\r\n"}, []string{"PRESTOP_TOKEN (8 bytes) has a carriage return"}},
		{map[string]string{"PRESTOP_TOKEN": " s3cret"}, []string{"PRESTOP_TOKEN (7 bytes) has a space at its start"}},
		{map[string]string{"PRESTOP_TOKEN": "s3cret\t"}, []string{"PRESTOP_TOKEN (7 bytes) has a tab at its end"}},
	}
	for _, tt := range tests {
		_, err := modules.FromEnv(lookup(tt.give))
		if err == nil {
			t.Errorf("%v: no error", tt.give)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%v: error %q quotes the token", tt.give, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %q does not contain %q", tt.give, err, w)
			}
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error spans lines: %q", tt.give, err)
		}
	}
}
