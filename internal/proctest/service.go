package proctest

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Service is a running process of a service with the route contract of
// examples/service: a public port (env PORT) and an admin port (env
// ADMIN_PORT) with the probes.
type Service struct {
	*Proc
	Port, Admin int // the public and the admin port
}

// StartService starts bin on two free ports, given as PORT and ADMIN_PORT
// ahead of env, and waits (up to 10s) until /readyz on the admin port
// answers 200.
func StartService(tb testing.TB, bin string, env ...string) Service {
	tb.Helper()
	s := Service{Port: FreePort(tb), Admin: FreePort(tb)}
	env = append([]string{fmt.Sprintf("PORT=%d", s.Port), fmt.Sprintf("ADMIN_PORT=%d", s.Admin)}, env...)
	s.Proc = Start(tb, bin, env...)
	s.WaitHTTP(tb, s.AdminURL("/readyz"), http.StatusOK, 10*time.Second)
	return s
}

// URL is the address of path on the public port.
func (s Service) URL(path string) string { return URL(s.Port, path) }

// AdminURL is the address of path on the admin port.
func (s Service) AdminURL(path string) string { return URL(s.Admin, path) }

// Do sends one request with c (nil: [http.DefaultClient]), with header
// given as pairs ("X-Prestop-Token", "s3cret", …), and reads the whole
// answer. It fails the test if the request or the read fails. The
// response's body is closed; its text is returned.
func Do(tb testing.TB, c *http.Client, method, url, body string, header ...string) (*http.Response, string) {
	tb.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: body: %v", method, url, err)
	}
	return resp, string(b)
}

// Get is [Do] of a GET without a body, with [http.DefaultClient].
func Get(tb testing.TB, url string, header ...string) (*http.Response, string) {
	tb.Helper()
	return Do(tb, nil, http.MethodGet, url, "", header...)
}
