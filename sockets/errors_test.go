package sockets

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// TestErrorsCarryFactsAndNameNoCaller checks that the engine's errors say
// what happened in fields a caller can render (which limit and its value,
// which id, which argument and its range) and that their own text names no
// flag, route or request field: the engine does not know how it is called.
func TestErrorsCarryFactsAndNameNoCaller(t *testing.T) {
	r := newTestRegistry(t, Config{MaxServers: 1, MaxSockets: 1, MaxDialTimeout: time.Second, MaxBufferBytes: 1024})
	srv := listen(t, r, ListenOptions{})
	ctx := context.Background()
	_, errServers := r.Listen(ctx, ListenOptions{Host: "127.0.0.1"})
	_, errServer := r.Server("srv-9")
	_, errSocket := r.Socket("sock-9")
	errDelete := r.DeleteSocket("sock-9")
	_, errPort := r.Dial(ctx, DialOptions{Host: "127.0.0.1", Port: 70000})
	_, errTimeout := r.Dial(ctx, DialOptions{Host: "127.0.0.1", Port: portOf(t, srv.addr), Timeout: time.Hour})
	_, errBuf := r.Dial(ctx, DialOptions{Host: "127.0.0.1", Port: portOf(t, srv.addr), Recv: RecvOptions{BufferBytes: 4096}})
	// The socket limit is reached against a peer outside the registry: a
	// connection to srv would be turned away at the limit, and its client
	// socket closed, giving the slot back.
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { peer.Close() })
	if _, err := r.Dial(ctx, DialOptions{Host: "127.0.0.1", Port: portOf(t, peer.Addr().String())}); err != nil {
		t.Fatalf("first dial: got %v, want nil", err)
	}
	_, errSockets := r.Dial(ctx, DialOptions{Host: "127.0.0.1", Port: portOf(t, peer.Addr().String())})

	for _, tc := range []struct {
		name string
		err  error
		is   error
		want any // the structured error with the fields it must carry
	}{
		{"servers limit", errServers, ErrLimit, &LimitError{Limit: LimitServers, Value: 1}},
		{"sockets limit", errSockets, ErrLimit, &LimitError{Limit: LimitSockets, Value: 1}},
		{"unknown server", errServer, ErrServerNotFound, &NotFoundError{Server: true, ID: "srv-9"}},
		{"unknown socket", errSocket, ErrSocketNotFound, &NotFoundError{ID: "sock-9", Retention: r.cfg.ClosedRetention}},
		{"delete unknown socket", errDelete, ErrSocketNotFound, &NotFoundError{ID: "sock-9"}},
		{"port out of range", errPort, ErrInvalid, &RangeError{Arg: ArgPort, Value: 70000, Min: 1, Max: 65535}},
		{"timeout out of range", errTimeout, ErrInvalid, &RangeError{Arg: ArgTimeout, Value: int64(time.Hour), Min: int64(time.Millisecond), Max: int64(time.Second), Bound: "MaxDialTimeout"}},
		{"buffer out of range", errBuf, ErrInvalid, &RangeError{Arg: ArgBufferBytes, Value: 4096, Min: 1, Max: 1024, Bound: "MaxBufferBytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.is) {
				t.Fatalf("got %v, want an error matching %v", tc.err, tc.is)
			}
			switch want := tc.want.(type) {
			case *LimitError:
				got, ok := errors.AsType[*LimitError](tc.err)
				if !ok || *got != *want {
					t.Fatalf("got %#v, want %#v", tc.err, want)
				}
			case *NotFoundError:
				got, ok := errors.AsType[*NotFoundError](tc.err)
				if !ok || *got != *want {
					t.Fatalf("got %#v, want %#v", tc.err, want)
				}
			case *RangeError:
				got, ok := errors.AsType[*RangeError](tc.err)
				if !ok || *got != *want {
					t.Fatalf("got %#v, want %#v", tc.err, want)
				}
			}
			msg := tc.err.Error()
			for _, caller := range []string{"--", "GET ", "DELETE ", "POST ", "_ms", "_bytes", "{id}"} {
				if strings.Contains(msg, caller) {
					t.Errorf("error text %q names %q, a flag, route or field of a caller", msg, caller)
				}
			}
		})
	}
}

func TestDialTimeoutErrorMatchesAndNamesTheAddress(t *testing.T) {
	err := error(&DialTimeoutError{Addr: "127.0.0.1:9", Timeout: time.Second})
	if !errors.Is(err, ErrConnectTimeout) || !strings.Contains(err.Error(), "127.0.0.1:9") || strings.Contains(err.Error(), "timeout_ms") {
		t.Fatalf("got %q, want a connect timeout naming 127.0.0.1:9 and no request field", err)
	}
	lim := error(&LimitError{Limit: LimitFiles, Cause: errors.New("too many open files")})
	if !errors.Is(lim, ErrLimit) || !strings.Contains(lim.Error(), "too many open files") {
		t.Fatalf("got %q, want a limit error carrying its cause", lim)
	}
}
