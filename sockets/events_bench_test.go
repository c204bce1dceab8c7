//go:build unix

package sockets

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkIngestEvents is BenchmarkIngest with and without the event bus:
// "bus=removed" has none at all (the engine before it), "bus=idle" publishes
// into the history with nobody subscribed, "subscribers=10" has ten
// subscribers that take every event (no data), as ten event streams would,
// and "data=1" one subscriber that takes the bytes too. Compare the medians
// of -count 5 in one run:
//
//	go test -run '^$' -bench IngestEvents -count 5 ./sockets/
func BenchmarkIngestEvents(b *testing.B) {
	cases := []struct {
		name string
		bus  bool
		subs int
		data bool
	}{
		{"bus=removed", false, 0, false},
		{"bus=idle", true, 0, false},
		{"subscribers=10", true, 10, false},
		{"data=1", true, 1, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			r := benchRegistry(b, Config{})
			if !c.bus {
				r.events = nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{}, c.subs)
			for range c.subs {
				sub, err := r.Subscribe(SubscribeOptions{Data: c.data})
				if err != nil {
					b.Fatal(err)
				}
				go func() {
					defer func() { done <- struct{}{} }()
					var buf []Event
					for {
						var err error
						if buf, err = sub.Next(ctx, buf[:0], 0); err != nil {
							return
						}
					}
				}()
				b.Cleanup(sub.Close)
			}
			peer, s := benchPair(b, r, 16<<20)
			streamAndRead(b, peer, s, bytes.Repeat([]byte("0123456789abcdef"), 16<<10), false)
			cancel()
			for range c.subs {
				<-done
			}
		})
	}
}
