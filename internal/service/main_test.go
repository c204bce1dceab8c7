package service

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/testnet"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// guard bounds every wait in these tests. It is a failure guard only: no
// test asserts that anything is faster than it.
const guard = 20 * time.Second

// running is a Service serving on 127.0.0.1 and an ephemeral port.
type running struct {
	*Service
	addr   string
	served chan error // Serve's result
}

// start runs a service with c, serving the handler handler makes for it.
// The test's cleanup shuts it down (if the test has not) and waits for
// Serve to return.
func start(t testing.TB, c Config, handler func(*Service) http.Handler) *running {
	t.Helper()
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Service: New(c), addr: ln.Addr().String(), served: make(chan error, 1)}
	h := handler(r.Service)
	go func() { r.served <- r.Serve(ln, h) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		r.Shutdown(ctx)
		if err := <-r.served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: got %v, want http.ErrServerClosed", err)
		}
	})
	return r
}

// rawConn opens a plain TCP connection to the service, closed with the test.
func (r *running) rawConn(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", r.addr, guard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed reads c until the other end closes it (EOF or reset), failing
// the test if it is still open after guard. It returns what was read.
func waitClosed(t testing.TB, c net.Conn) []byte {
	t.Helper()
	return testnet.WaitClosed(t, c, guard)
}

// shutdownInBackground runs s.Shutdown with guard as its timeout, and sends
// what it returned.
func shutdownInBackground(s *Service) <-chan error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	return shut
}
