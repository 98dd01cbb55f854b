// Command bare is the baseline of BenchmarkSIGTERMExit: a net/http server
// answering GET / with "ok" on PORT that, on SIGTERM, calls Shutdown and
// exits 0 — the textbook graceful stop, with no drain, probes or report.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	srv := &http.Server{
		Addr: "127.0.0.1:" + os.Getenv("PORT"),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte("ok"))
		}),
	}
	served := make(chan error, 1)
	go func() { served <- srv.ListenAndServe() }()
	select {
	case err := <-served:
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "bare:", err)
		os.Exit(1)
	}
}
