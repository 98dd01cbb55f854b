package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The two servers answer GET / alike — status, type, body — so that wrk
// compares the request paths and nothing else; each stops when its
// context ends.
func TestServersAnswerAlike(t *testing.T) {
	type answer struct {
		status      int
		contentType string
		body        string
	}
	var answers []answer
	for _, kind := range []string{"bare", "httpmod"} {
		ctx, cancel := context.WithCancel(context.Background())
		addrs := make(chan net.Addr, 1)
		done := make(chan error, 1)
		go func() { done <- serve(ctx, kind, "127.0.0.1:0", func(a net.Addr) { addrs <- a }) }()
		var addr net.Addr
		select {
		case addr = <-addrs:
		case err := <-done:
			cancel()
			t.Fatalf("%s: %v", kind, err)
		case <-time.After(10 * time.Second):
			cancel()
			t.Fatalf("%s did not come up", kind)
		}
		c := &http.Client{Transport: &http.Transport{}}
		resp, err := c.Get("http://" + addr.String() + "/")
		if err != nil {
			cancel()
			t.Fatalf("%s: %v", kind, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		c.CloseIdleConnections()
		answers = append(answers, answer{resp.StatusCode, resp.Header.Get("Content-Type"), string(body)})
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s stopped with %v", kind, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not stop", kind)
		}
	}
	want := answer{http.StatusOK, "text/plain; charset=utf-8", "ok"}
	for i, a := range answers {
		if a != want {
			t.Errorf("server %d answered %+v, want %+v", i, a, want)
		}
	}
}

func TestParseWrk(t *testing.T) {
	const ok = `Running 1s test @ http://127.0.0.1:38111/
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   323.51us  666.88us   8.13ms   92.46%
    Req/Sec    23.86k     3.11k   26.55k    90.91%
  26032 requests in 1.10s, 2.93MB read
Requests/sec:  23660.10
Transfer/sec:      2.66MB
`
	const notFound = `Running 1s test @ http://127.0.0.1:38111/nothere
  1 threads and 4 connections
    Req/Sec    24.84k     1.62k   26.88k    60.00%
  24640 requests in 1.00s, 4.14MB read
  Non-2xx or 3xx responses: 24640
Requests/sec:  24601.47
Transfer/sec:      4.13MB
`
	tests := []struct {
		name      string
		give      string
		wantRPS   float64
		wantTotal float64
		wantErr   bool
	}{
		{name: "ok", give: ok, wantRPS: 23660.10, wantTotal: 26032},
		{name: "answers not 2xx", give: notFound, wantErr: true},
		{name: "no server", give: "unable to connect to 127.0.0.1:1 Connection refused\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rps, total, err := parseWrk([]byte(tt.give))
			if (err != nil) != tt.wantErr || rps != tt.wantRPS || total != tt.wantTotal {
				t.Errorf("parseWrk = %v, %v, %v; want %v, %v, error %v", rps, total, err, tt.wantRPS, tt.wantTotal, tt.wantErr)
			}
		})
	}
}

// The interval of the median holds the median, is a point for rounds that
// all agree, and narrows as rounds are added.
func TestMedianInterval(t *testing.T) {
	if lo, hi := medianInterval([]float64{1, 1, 1, 1}); lo != 1 || hi != 1 {
		t.Errorf("rounds that agree: [%v, %v], want [1, 1]", lo, hi)
	}
	few := []float64{0.90, 0.95, 1.00, 1.05, 1.10, 0.97, 1.03, 0.99}
	many := append(append(append([]float64(nil), few...), few...), few...)
	lo, hi := medianInterval(few)
	if m := median(few); lo > m || hi < m || lo == hi {
		t.Errorf("[%v, %v] for median %v: want an interval around it", lo, hi, m)
	}
	if lo3, hi3 := medianInterval(many); hi3-lo3 > hi-lo {
		t.Errorf("three times the rounds: [%v, %v], wider than [%v, %v]", lo3, hi3, lo, hi)
	}
}
