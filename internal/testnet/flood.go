package testnet

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// IdleFlood keeps connections to an address open that send nothing, as
// anyone who reaches a port can, without a token: each one the server
// closes is opened again at once. The descriptor-cap test of cmd/sockman
// and the load tool's idle-conns mode use it.
type IdleFlood struct {
	Dials  atomic.Int64 // connections opened
	Closed atomic.Int64 // connections the server closed

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// StartIdleFlood starts n goroutines, each holding one such connection to
// addr. Stop ends them.
func StartIdleFlood(addr string, n int) *IdleFlood {
	ctx, cancel := context.WithCancel(context.Background())
	f := &IdleFlood{cancel: cancel}
	d := net.Dialer{Timeout: 5 * time.Second}
	for range n {
		f.wg.Go(func() {
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					select { // a full backlog: try again a little later
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				f.Dials.Add(1)
				stop := context.AfterFunc(ctx, func() { c.Close() })
				io.Copy(io.Discard, c) // until the server closes it, or the flood stops
				if stop() {
					f.Closed.Add(1)
				}
				c.Close()
			}
		})
	}
	return f
}

// Stop closes every connection and waits for the flood's goroutines.
func (f *IdleFlood) Stop() {
	f.cancel()
	f.wg.Wait()
}
