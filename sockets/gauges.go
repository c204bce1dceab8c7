package sockets

import "sync/atomic"

// gauges are the engine's counts of what is under way, for whoever needs
// to know that a long poll or a send is in the engine (tests, the load
// run) without looking at goroutines' stacks.
type gauges struct {
	waiting gauge // reads parked in Socket.Read, waiting for data
	sending gauge // sends holding a socket's write lock
}

// gauge is a count that tells whoever watches that it changed.
//
// The count is one atomic; the watch channel is made only when somebody
// asks for it (Registry.WaitingChanged), so a change costs two atomic
// operations when nobody watches.
type gauge struct {
	n  atomic.Int64
	ch atomic.Pointer[chan struct{}] // closed and cleared at the next change; nil while nobody watches
}

// add changes the count by d and wakes the watchers.
func (w *gauge) add(d int64) {
	w.n.Add(d)
	if p := w.ch.Swap(nil); p != nil {
		close(*p)
	}
}

// changed returns a channel closed at the next change of the count after
// this call. A channel is removed only by the add that closes it, so a
// caller that reads the count after changed returns misses no change.
func (w *gauge) changed() <-chan struct{} {
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
func (r *Registry) Waiting() int { return int(r.gauges.waiting.n.Load()) }

// WaitingChanged returns a channel that is closed the next time Waiting
// changes. Read Waiting after taking the channel: no change is missed.
// It does not block.
func (r *Registry) WaitingChanged() <-chan struct{} { return r.gauges.waiting.changed() }

// Sending returns how many sends (Send, SendBytes, each socket's part of a
// Broadcast) are under way right now: they hold their socket's write lock,
// and are writing to the peer or waiting for it to take data.
func (r *Registry) Sending() int { return int(r.gauges.sending.n.Load()) }

// SendingChanged returns a channel that is closed the next time Sending
// changes. Read Sending after taking the channel: no change is missed. It
// does not block.
func (r *Registry) SendingChanged() <-chan struct{} { return r.gauges.sending.changed() }
