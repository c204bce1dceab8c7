package sockets

import "sync/atomic"

// waiters counts the reads parked in Socket.Read, waiting for data, and
// tells whoever watches that the count changed.
//
// The count is one atomic; the watch channel is made only when somebody
// asks for it (Registry.WaitingChanged), so a long poll that parks or
// wakes costs two atomic operations when nobody watches.
type waiters struct {
	n  atomic.Int64
	ch atomic.Pointer[chan struct{}] // closed and cleared at the next change; nil while nobody watches
}

// add changes the count by d and wakes the watchers.
func (w *waiters) add(d int64) {
	w.n.Add(d)
	if p := w.ch.Swap(nil); p != nil {
		close(*p)
	}
}

// changed returns a channel closed at the next change of the count after
// this call. A channel is removed only by the add that closes it, so a
// caller that reads the count after changed returns misses no change.
func (w *waiters) changed() <-chan struct{} {
	for {
		if p := w.ch.Load(); p != nil {
			return *p
		}
		c := make(chan struct{})
		if w.ch.CompareAndSwap(nil, &c) {
			return c
		}
	}
}

// Waiting returns how many reads (long polls, Socket.Read with a wait) are
// parked right now: they have taken their selection, found nothing, and
// wait for a message, the socket's close, their deadline or their context.
// A message pushed to a socket after its read counts here wakes that read.
func (r *Registry) Waiting() int { return int(r.waiting.n.Load()) }

// WaitingChanged returns a channel that is closed the next time Waiting
// changes. Read Waiting after taking the channel: no change is missed.
// It does not block.
func (r *Registry) WaitingChanged() <-chan struct{} { return r.waiting.changed() }
