package sockets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sockman/sockman/internal/testnet"
)

func TestManyPeersEachLandInTheirOwnSocket(t *testing.T) {
	const peers = 200
	testnet.RaiseOpenFiles(t, 4*peers+256)
	r := newTestRegistry(t, Config{})
	srv := listen(t, r, ListenOptions{})

	conns := make([]net.Conn, peers)
	payloads := make([][]byte, peers)
	errs := make([]error, peers)
	var wg sync.WaitGroup
	for i := range peers {
		// Each payload says whose it is, at a length of its own.
		payloads[i] = bytes.Repeat(fmt.Appendf(nil, "<peer %03d>", i), 50+i*7)
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", srv.addr, guard)
			if err != nil {
				errs[i] = err
				return
			}
			conns[i] = c
			_, errs[i] = c.Write(payloads[i])
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("peer %d connect and write: got %v, want nil", i, err)
		}
	}
	waitFor(t, guard, func() bool { return len(r.Sockets(SocketFilter{ServerID: srv.Info().ID})) == peers })
	byRemote := map[string]*Socket{}
	for _, s := range r.Sockets(SocketFilter{ServerID: srv.Info().ID}) {
		byRemote[s.Info().RemoteAddress] = s
	}
	for i, c := range conns {
		s := byRemote[c.LocalAddr().String()]
		if s == nil {
			t.Fatalf("peer %d (%s): got no socket, want one", i, c.LocalAddr())
		}
		if got, _ := drain(t, s, int64(len(payloads[i]))); !bytes.Equal(got, payloads[i]) {
			t.Fatalf("peer %d: got %d bytes starting %.12q, want its own %d bytes starting %.12q", i, len(got), got, len(payloads[i]), payloads[i])
		}
	}
	if got := srv.Info().Accepted; got != peers {
		t.Fatalf("accepted: got %d, want %d", got, peers)
	}

	msg := []byte("hello, all 200 of you")
	n, sent, err := r.Broadcast(context.Background(), srv.Info().ID, msg)
	if err != nil || n != peers || sent != int64(peers*len(msg)) {
		t.Fatalf("Broadcast: got %d sockets, %d bytes, %v; want %d, %d, nil", n, sent, err, peers, peers*len(msg))
	}
	for i, c := range conns {
		buf := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(guard))
		if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf, msg) {
			t.Fatalf("peer %d broadcast: got %q, %v; want %q, nil", i, buf, err, msg)
		}
	}
}

// chunkedRandom yields total pseudo-random bytes in chunks of random size
// (1 B to 256 KiB), so that writes and reads of every size happen.
type chunkedRandom struct {
	rng    *rand.Rand
	src    *rand.ChaCha8
	remain int
}

func newChunkedRandom(seed byte, total int) *chunkedRandom {
	src := rand.NewChaCha8([32]byte{seed})
	return &chunkedRandom{rng: rand.New(rand.NewPCG(uint64(seed), 1)), src: src, remain: total}
}

func (c *chunkedRandom) Read(p []byte) (int, error) {
	if c.remain == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.remain, 1+c.rng.IntN(256<<10))
	c.src.Read(p[:n])
	c.remain -= n
	return n, nil
}

func TestIntegrity16MiBBothWays(t *testing.T) {
	const total = 16 << 20
	r := newTestRegistry(t, Config{})
	_, peer, s := connectPair(t, r, ListenOptions{})

	var (
		wg                   sync.WaitGroup
		inSum, outSum        [32]byte // peer -> sockman, sockman -> peer, as sent
		peerGot              [32]byte // sockman -> peer, as the peer read it
		peerErr, sendErr     error
		sentByPeer, sentByUs int64
	)
	wg.Go(func() { // the peer writes in random chunks
		src := newChunkedRandom(1, total)
		h := sha256.New()
		buf := make([]byte, 256<<10)
		for {
			n, err := src.Read(buf)
			if err == io.EOF {
				break
			}
			h.Write(buf[:n])
			w, werr := peer.Write(buf[:n])
			sentByPeer += int64(w)
			if werr != nil {
				peerErr = werr
				return
			}
		}
		copy(inSum[:], h.Sum(nil))
	})
	wg.Go(func() { // sockman sends in random chunks, hashing what it offers
		h := sha256.New()
		sentByUs, sendErr = s.Send(context.Background(), io.TeeReader(newChunkedRandom(2, total), h))
		copy(outSum[:], h.Sum(nil))
	})
	readDone := make(chan error, 1)
	go func() { // the peer reads everything sockman sent
		h := sha256.New()
		peer.SetReadDeadline(time.Now().Add(6 * guard))
		_, err := io.CopyN(h, peer, total)
		copy(peerGot[:], h.Sum(nil))
		readDone <- err
	}()

	got, seqs := drain(t, s, total) // sockman reads with a cursor
	wg.Wait()
	if err := <-readDone; err != nil {
		t.Fatalf("peer read: got %v, want nil", err)
	}
	if peerErr != nil || sentByPeer != total {
		t.Fatalf("peer write: got %d bytes, %v; want %d, nil", sentByPeer, peerErr, total)
	}
	if sendErr != nil || sentByUs != total {
		t.Fatalf("Send: got %d bytes, %v; want %d, nil", sentByUs, sendErr, total)
	}
	if len(got) != total || sha256.Sum256(got) != inSum {
		t.Fatalf("peer -> socket: got %d bytes with SHA-256 %x, want %d with %x", len(got), sha256.Sum256(got), total, inSum)
	}
	if peerGot != outSum {
		t.Fatalf("socket -> peer: got SHA-256 %x, want %x", peerGot, outSum)
	}
	checkContiguous(t, seqs)
	if info := s.Info(); info.BytesReceived != total || info.BytesSent != total || info.DroppedBytes != 0 {
		t.Fatalf("bytes_received, bytes_sent, dropped: got %d, %d, %d; want %d, %d, 0", info.BytesReceived, info.BytesSent, info.DroppedBytes, total, total)
	}
}
