package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sockman/sockman"
	"github.com/sockman/sockman/api"
	httpservice "github.com/sockman/sockman/internal/service"
	"github.com/sockman/sockman/sockets"
)

// addr is the sockman the tests and the examples talk to: the registry,
// the API and the HTTP server wired as `sockman serve` wires them, on
// 127.0.0.1 and an ephemeral port, for the whole run.
var addr string

// guard bounds every wait in these tests. It is a failure guard only.
const guard = 20 * time.Second

func TestMain(m *testing.M) {
	stop, err := startService()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	http.DefaultClient.CloseIdleConnections()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func startService() (stop func(), err error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg := sockets.New(sockets.Config{Logger: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		reg.Close()
		return nil, err
	}
	svc := httpservice.New(httpservice.Config{ReadHeaderTimeout: guard, IdleTimeout: guard, Logger: log})
	e := api.New(reg, api.Options{MaxWait: guard, OpenAPI: sockman.OpenAPI, Logger: log, Holder: svc})
	done := make(chan error, 1)
	go func() { done <- svc.Serve(ln, e) }()
	addr = ln.Addr().String()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), guard)
		defer cancel()
		svc.Shutdown(ctx)
		<-done
		reg.Close()
	}, nil
}
