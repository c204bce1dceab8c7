package api

import (
	"context"
	"fmt"

	"github.com/sockman/sockman/sockets"
)

// Holder owns the connections that outlive the bounds of one request: the
// event streams and, later, the WebSocket streams. The service package's
// Service is the one sockman runs with: it closes them at shutdown and
// waits for them. Without one (Options.Holder nil, as in this package's
// tests) every stream is held by nobody, and ends with its request.
type Holder interface {
	// Hold registers one long-lived stream. Its context ends when the
	// service shuts down; the stream must then end (a WebSocket with close
	// code 1001) and call release once it is done with the connection.
	// ok is false once the shutdown has begun: the stream is refused.
	Hold() (ctx context.Context, release func(), ok bool)
}

// noHolder holds nothing: streams end with their request only.
type noHolder struct{}

func (noHolder) Hold() (context.Context, func(), bool) { return context.Background(), func() {}, true }

// hold registers a stream with the holder: the context it returns ends when
// the request's does or when the service shuts down. The error is a
// shutting-down problem once the shutdown has begun.
func (h *handlers) hold(req context.Context) (context.Context, func(), error) {
	held, release, ok := h.opts.Holder.Hold()
	if !ok {
		return nil, nil, fmt.Errorf("%w: no new stream is taken", sockets.ErrClosed)
	}
	ctx, cancel := context.WithCancel(req)
	stop := context.AfterFunc(held, cancel)
	return ctx, func() {
		stop()
		cancel()
		release()
	}, nil
}
