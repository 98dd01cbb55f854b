package httpmod_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/drainfx/drainfx/httpmod"
	"github.com/drainfx/drainfx/httpmod/internal/servertest"
	"github.com/drainfx/drainfx/internal/waittest"
	"github.com/drainfx/drainfx/lifecycle"
)

// selfSigned returns a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// An app's own server with TLS above the drain's listener (ServeTLS): the
// drain follows its connections through the *tls.Conn — a request on a new
// connection during the drain is an arrival, and neither an HTTP/1 nor an
// HTTP/2 connection left open, idle, holds the stop phase to its deadline.
func TestDrainOwnTLSServer(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2], func(t *testing.T) {
			t.Parallel()
			c := newCoordinator(t, lifecycle.Config{DrainDelay: 200 * time.Millisecond, DrainQuiet: lifecycle.None,
				IgnoreSignals: true}) // stop deadline: 26s after D0
			stopAtCleanup(t, c)
			cert, pool := selfSigned(t)
			d, err := httpmod.NewDrain(c)
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: d.Handler(okMux()), ReadHeaderTimeout: time.Minute,
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
			if err := d.Manage(srv); err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- srv.ServeTLS(d.Listener(ln), "", "") }()
			c.MarkStarted()

			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: h2}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr, Timeout: waitTimeout}
			get := func() int {
				t.Helper()
				resp, err := client.Get("https://" + ln.Addr().String() + "/")
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body) // read to the end: the connection goes back to the pool
				resp.Body.Close()
				return resp.ProtoMajor
			}
			if proto := get(); proto != map[bool]int{false: 1, true: 2}[h2] {
				t.Fatalf("HTTP/%d", proto)
			}
			c.BeginDrain("test")
			tr2 := tr.Clone() // a new connection; the first one stays open, idle
			defer tr2.CloseIdleConnections()
			if resp, err := (&http.Client{Transport: tr2, Timeout: waitTimeout}).Get("https://" + ln.Addr().String() + "/"); err != nil {
				t.Fatal(err)
			} else {
				resp.Body.Close()
			}
			r := servertest.WaitReport(t, c)
			if r.ExitCode != 0 || r.Hooks[0].Err != "" {
				t.Errorf("report: cut %v, hooks %+v", r.Cut, r.Hooks)
			}
			if r.Drain.Arrivals != 1 {
				t.Errorf("arrivals after D0 = %d, want 1 (the request on a new connection)", r.Drain.Arrivals)
			}
			if err := waittest.Recv(t, served, waitTimeout, "ServeTLS"); err != http.ErrServerClosed {
				t.Errorf("ServeTLS = %v", err)
			}
		})
	}
}
