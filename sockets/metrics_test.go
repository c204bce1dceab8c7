package sockets

import (
	"bytes"
	"context"
	"testing"
	"time"
)

// Metrics counts what a socket dropped (drop_oldest), keeps a closed
// socket's totals once the sweep forgets it, counts a closed socket as
// closed while it is kept, and counts subscribers and the refusal at
// MaxSubscribers.
func TestMetricsDroppedForgottenAndSubscribers(t *testing.T) {
	const retention = time.Minute
	r := newTestRegistry(t, Config{ClosedRetention: retention, MaxSubscribers: 1})
	srv := listen(t, r, ListenOptions{Recv: RecvOptions{BufferBytes: 100, Overflow: "drop_oldest"}})
	peer := dialPeer(t, srv.addr)
	s := acceptedSocket(t, r, srv, peer)
	data := bytes.Repeat([]byte("x"), 50)
	for i := range 5 { // 250 bytes into a 100-byte buffer, one message at a time
		if _, err := peer.Write(data); err != nil {
			t.Fatal(err)
		}
		want := int64(50 * (i + 1))
		waitFor(t, guard, func() bool { return s.Info().BytesReceived == want })
	}
	info := s.Info()
	m := r.Metrics()
	if m.BytesReceived != 250 || m.BytesDropped != info.DroppedBytes || m.BytesDropped < 150 {
		t.Fatalf("Metrics: received %d, dropped %d; want 250 and the socket's %d (at least 150)", m.BytesReceived, m.BytesDropped, info.DroppedBytes)
	}
	if m.SocketsOpen[KindAccepted] != 1 || m.Servers != 1 {
		t.Fatalf("Metrics: %d accepted open, %d servers; want 1 and 1", m.SocketsOpen[KindAccepted], m.Servers)
	}

	peer.Close()
	waitFor(t, guard, func() bool { return s.Closed() })
	if m := r.Metrics(); m.SocketsOpen[KindAccepted] != 0 || m.SocketsClosed[KindAccepted] != 1 {
		t.Fatalf("after the peer closed: %d open, %d closed; want 0 and 1", m.SocketsOpen[KindAccepted], m.SocketsClosed[KindAccepted])
	}
	r.sweep(time.Now().Add(retention + time.Second))
	after := r.Metrics()
	if after.SocketsClosed[KindAccepted] != 0 || after.BytesReceived != 250 || after.BytesDropped != info.DroppedBytes || after.MessagesReceived != m.MessagesReceived {
		t.Fatalf("after the sweep: %+v; want no socket, and the totals kept (received 250, dropped %d, messages %d)", after, info.DroppedBytes, m.MessagesReceived)
	}

	sub, err := r.Subscribe(SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if _, err := r.Subscribe(SubscribeOptions{}); err == nil {
		t.Fatal("a second subscription at MaxSubscribers 1: got nil, want ErrLimit")
	}
	if m := r.Metrics(); m.Subscribers != 1 || m.Refused[LimitSubscribers] != 1 {
		t.Fatalf("subscribers %d, refused %d; want 1 and 1", m.Subscribers, m.Refused[LimitSubscribers])
	}
}

// A listen the policy denies and one past MaxServers are counted apart.
func TestMetricsCountListenDenialsAndLimits(t *testing.T) {
	pol, err := ParsePolicy("--allow-listen", []string{"127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	r := newTestRegistry(t, Config{ListenPolicy: pol, MaxServers: 1})
	if _, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.1"}); err == nil {
		t.Fatal("a listen on 127.0.0.1 with --allow-listen 127.0.0.2: got nil, want ErrForbidden")
	}
	srv, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.2"})
	if err != nil {
		t.Skipf("127.0.0.2 cannot be bound here: %v", err)
	}
	defer r.DeleteServer(srv.Info().ID, true)
	if _, err := r.Listen(context.Background(), ListenOptions{Host: "127.0.0.2"}); err == nil {
		t.Fatal("a second listen at MaxServers 1: got nil, want ErrLimit")
	}
	if m := r.Metrics(); m.Denied != 1 || m.Refused[LimitServers] != 1 || m.Refused[LimitSockets] != 0 {
		t.Fatalf("denied %d, refused servers %d, sockets %d; want 1, 1, 0", m.Denied, m.Refused[LimitServers], m.Refused[LimitSockets])
	}
}
