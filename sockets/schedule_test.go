package sockets

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// A socket's schedule sends count times, in order, and then stops.
func TestScheduleCountAndOrder(t *testing.T) {
	r := newTestRegistry(t, Config{MinInterval: time.Millisecond})
	_, peer, s := connectPair(t, r, ListenOptions{})
	sub := subscribe(t, r, SubscribeOptions{Filter: EventFilter{Types: []string{string(EventSocketSent)}}})
	a, err := s.Schedules().Add(ScheduleSpec{Data: []byte("a"), Interval: time.Millisecond, Count: 5})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, peer, "aaaaa")
	for _, e := range nextEvents(t, sub, 5) {
		if e.Source != SourceSchedule || e.Size != 1 {
			t.Fatalf("socket.sent %+v, want 1 byte from source schedule", e)
		}
	}
	waitFor(t, guard, func() bool { info, _ := s.Schedules().Get(a.ID); return info.Done })
	if info, _ := s.Schedules().Get(a.ID); info.Sent != 5 {
		t.Fatalf("sent %d, want 5", info.Sent)
	}
	// A second one after the first is done: the peer sees its bytes only.
	if _, err := s.Schedules().Add(ScheduleSpec{Data: []byte("b"), Interval: time.Millisecond, Count: 3}); err != nil {
		t.Fatal(err)
	}
	expect(t, peer, "bbb")
	waitFor(t, guard, func() bool { return s.Info().BytesSent == 8 }) // the count follows the write

}

// A server's schedule sends to each connected socket; deleting it stops
// it: nothing more comes after Delete returns.
func TestServerScheduleAndRemoval(t *testing.T) {
	r := newTestRegistry(t, Config{MinInterval: time.Millisecond})
	srv := listen(t, r, ListenOptions{})
	p1 := dialPeer(t, srv.addr)
	p2 := dialPeer(t, srv.addr)
	s1 := acceptedSocket(t, r, srv, p1)
	s2 := acceptedSocket(t, r, srv, p2)
	sc, err := srv.Schedules().Add(ScheduleSpec{Data: []byte("tick\n"), Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, p1, "tick\ntick\n")
	expect(t, p2, "tick\ntick\n")
	if err := srv.Schedules().Delete(sc.ID); err != nil {
		t.Fatal(err)
	}
	sent1, sent2 := s1.Info().BytesSent, s2.Info().BytesSent
	// Prove the schedule is gone with a send that comes after it: the
	// peer reads what the schedule sent before Delete, then the marker.
	if _, err := s1.SendBytes(t.Context(), []byte("END")); err != nil {
		t.Fatal(err)
	}
	rest := int(sent1) - 10
	expect(t, p1, strings.Repeat("tick\n", rest/5)+"END")
	if got := s2.Info().BytesSent; got != sent2 {
		t.Fatalf("socket 2 got %d more bytes after Delete", got-sent2)
	}
	if err := srv.Schedules().Delete(sc.ID); !errors.Is(err, ErrScheduleNotFound) {
		t.Fatalf("second delete: got %v, want ErrScheduleNotFound", err)
	}
}

// Closing the registry stops every schedule, of sockets and of servers,
// and waits for them (TestMain's goleak finds one left).
func TestSchedulesStopAtShutdown(t *testing.T) {
	r := newTestRegistry(t, Config{MinInterval: time.Millisecond})
	srv, _, s := connectPair(t, r, ListenOptions{})
	for i := range 3 {
		if _, err := s.Schedules().Add(ScheduleSpec{Data: []byte(fmt.Sprint(i)), Interval: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		if _, err := srv.Schedules().Add(ScheduleSpec{Data: []byte("s"), Interval: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, guard, func() bool { return s.Info().BytesSent > 10 })
	r.Close()
	if _, err := s.Schedules().Add(ScheduleSpec{Data: []byte("x"), Interval: time.Millisecond}); !errors.Is(err, ErrSocketClosed) {
		t.Fatalf("after Close: got %v, want ErrSocketClosed", err)
	}
	if _, err := srv.Schedules().Add(ScheduleSpec{Data: []byte("x"), Interval: time.Millisecond}); !errors.Is(err, ErrServerNotFound) {
		t.Fatalf("after Close: got %v, want ErrServerNotFound (closing)", err)
	}
}

func TestScheduleBounds(t *testing.T) {
	r := newTestRegistry(t, Config{MinInterval: 50 * time.Millisecond, MaxSchedules: 1, MaxReplyBytes: 4})
	_, _, s := connectPair(t, r, ListenOptions{})
	for _, c := range []struct {
		spec ScheduleSpec
		want error
	}{
		{ScheduleSpec{Data: []byte("x"), Interval: 49 * time.Millisecond}, ErrInvalid},
		{ScheduleSpec{Data: []byte("12345"), Interval: time.Second}, ErrInvalid},
		{ScheduleSpec{Interval: time.Second}, ErrInvalid},
		{ScheduleSpec{Data: []byte("x"), Interval: time.Second, Count: -1}, ErrInvalid},
		{ScheduleSpec{Data: []byte("1234"), Interval: 50 * time.Millisecond, Count: 1}, nil},
		{ScheduleSpec{Data: []byte("x"), Interval: time.Second}, ErrLimit},
	} {
		if _, err := s.Schedules().Add(c.spec); !errors.Is(err, c.want) {
			t.Errorf("%+v: got %v, want %v", c.spec, err, c.want)
		}
	}
}

// A socket's schedule ends when the socket can send no more: after our FIN
// it stops, and says what it sent.
func TestScheduleEndsWithTheSocketsSends(t *testing.T) {
	r := newTestRegistry(t, Config{MinInterval: time.Millisecond})
	_, peer, s := connectPair(t, r, ListenOptions{Recv: RecvOptions{HalfClose: true}})
	sc, err := s.Schedules().Add(ScheduleSpec{Data: []byte("a"), Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	expect(t, peer, "a")
	if err := s.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, guard, func() bool {
		s.Schedules().mu.Lock()
		defer s.Schedules().mu.Unlock()
		for _, x := range s.Schedules().list {
			if x.id == sc.ID {
				select {
				case <-x.done:
					return true
				default:
				}
			}
		}
		return false
	})
}
