// Command load holds thousands of TCP sockets streaming through sockman
// while other clients hammer its API, injects faults into some of them,
// verifies every byte both ways (SHA-256), then sends SIGTERM with every
// socket live and long polls pending, and checks that nothing was lost,
// that the shutdown finished within its timeout and closed every peer, and
// that goroutines and file descriptors came back to where they started.
//
//	go run ./bench/load                               # 4000 sockets for 2 minutes
//	go run ./bench/load -sockets 500 -duration 20s    # a quick look
//
// sockman runs in this process, wired and shut down as `sockman serve`
// does it, so that its goroutines and descriptors can be counted. Peers are
// plain loopback sockets of the same process. Exit status 1 means something
// was lost, an answer was wrong, or something leaked; the report says what.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sockman/sockman/sockets"
)

type config struct {
	sockets     int
	duration    time.Duration
	workers     int
	period      time.Duration
	sendEvery   int
	interval    time.Duration
	maxChunk    int
	hammers     int
	faults      float64
	polls       int
	shutdownTO  time.Duration
	drainTO     time.Duration
	retention   time.Duration
	maxTotal    int64
	seed        uint64
	logLevel    string
	maxGorEvery time.Duration
}

func main() {
	var c config
	flag.IntVar(&c.sockets, "sockets", 4000, "sockets held open and streaming (half accepted by a sockman server, half connected by sockman)")
	flag.DurationVar(&c.duration, "duration", 2*time.Minute, "how long the sockets stream")
	flag.IntVar(&c.workers, "workers", 32, "API clients that read from and send to the sockets, each a shard of them")
	flag.DurationVar(&c.period, "period", time.Second, "each worker reads every socket of its shard this often")
	flag.IntVar(&c.sendEvery, "send-every", 4, "a worker sends to a socket every this many rounds")
	flag.DurationVar(&c.interval, "interval", 4*time.Second, "each peer writes a chunk about this often")
	flag.IntVar(&c.maxChunk, "chunk", 4096, "largest chunk a peer writes or the API sends, in bytes")
	flag.IntVar(&c.hammers, "hammers", 8, "API clients making other requests as fast as they can")
	flag.Float64Var(&c.faults, "faults", 0.05, "share of sockets into which a fault ("+faultsAllKinds+") is injected")
	flag.IntVar(&c.polls, "polls", 500, "long polls pending when SIGTERM comes")
	flag.DurationVar(&c.shutdownTO, "shutdown-timeout", 10*time.Second, "sockman's --shutdown-timeout")
	flag.DurationVar(&c.drainTO, "drain-timeout", 2*time.Minute, "how long to wait for the streams to arrive in full after the peers stop")
	flag.DurationVar(&c.retention, "closed-retention", 10*time.Minute, "sockman's --closed-retention: closed sockets are forgotten this long after they close")
	flag.Int64Var(&c.maxTotal, "max-buffer-total", 0, "sockman's --max-buffer-total in bytes (0: its default); small values keep sockets waiting for memory")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the random streams and faults")
	flag.StringVar(&c.logLevel, "log-level", "none", "sockman's log level, or none (its log goes to stderr; at error it logs the 502s the run provokes)")
	mode := flag.String("mode", "streams", "streams (the default run), or one of the hostile-input cases: tiny-messages, stalled-readers, idle-conns")
	idle := idleFlags()
	flag.Parse()
	c.maxGorEvery = time.Second
	switch f, ok := modes[*mode]; {
	case *mode == "idle-conns":
		os.Exit(runIdleConns(idle))
	case ok:
		os.Exit(f(c))
	case *mode != "streams":
		fmt.Fprintf(os.Stderr, "load: -mode %q is not streams, tiny-messages, stalled-readers or idle-conns\n", *mode)
		os.Exit(2)
	}
	os.Exit(run(c))
}

// result is what the run found.
type result struct {
	inVerified, inReported, inLost    int
	outVerified, outReported, outLost int
	bytesIn, bytesOut                 int64
	faultFree                         int // fault-free streams not verified: must be 0
	faults                            map[string]int
}

func run(c config) int {
	if c.sockets < 2 || c.workers < 1 {
		fmt.Fprintln(os.Stderr, "load: -sockets must be at least 2 and -workers at least 1")
		return 2
	}
	raiseFiles(uint64(2*c.sockets + 4096))
	log := slog.New(slog.DiscardHandler)
	if c.logLevel != "none" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
			fmt.Fprintf(os.Stderr, "load: -log-level %q: %v\n", c.logLevel, err)
			return 2
		}
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	}
	// What the runtime keeps once it has been used (the network poller's
	// descriptors, the signal goroutine) is part of the baseline.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR2)
	signal.Stop(sigs)
	goroutines0, files0 := runtime.NumGoroutine(), openFiles()
	started := time.Now()
	fmt.Printf("load: %d sockets for %v, %d API workers, %d hammering clients, %.0f%% with faults; before: %d goroutines, %d files\n",
		c.sockets, c.duration, c.workers, c.hammers, 100*c.faults, goroutines0, files0)

	svc, err := startService(sockets.Config{MaxSockets: c.sockets + 256, MaxServers: 256, ClosedRetention: c.retention, MaxBufferTotal: c.maxTotal}, time.Minute, c.shutdownTO, log)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: starting sockman: %v\n", err)
		return 1
	}
	tr := &http.Transport{MaxIdleConns: 4096, MaxIdleConnsPerHost: 4096, DisableCompression: true}
	lat := &latencies{}
	cl := &client{base: "http://" + svc.addr, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, lat: lat}
	bad := &problems{}
	ctx := context.Background()

	socks, cleanup, err := openSockets(ctx, cl, c)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: opening %d sockets: %v\n", c.sockets, err)
		svc.terminate(time.Minute)
		return 1
	}
	defer cleanup()
	fmt.Printf("load: %d sockets open after %v\n", len(socks), time.Since(started).Round(time.Millisecond))
	res := result{faults: map[string]int{}}
	rng := rand.New(rand.NewPCG(c.seed, 11))
	type planned struct {
		s  *sock
		at time.Duration
	}
	var plan []planned
	for _, s := range socks {
		if rng.Float64() < c.faults {
			s.fault = faultKinds[rng.IntN(len(faultKinds))]
			res.faults[s.fault]++
			plan = append(plan, planned{s, c.duration/10 + time.Duration(rng.Int64N(int64(c.duration*6/10)))})
		}
	}
	slices.SortFunc(plan, func(a, b planned) int { return int(a.at - b.at) })

	// Streaming, hammering and faults, for the duration.
	stopWriters, stopWorkers := make(chan struct{}), make(chan struct{})
	for _, s := range socks {
		go s.runWriter(stopWriters, c.interval, c.maxChunk)
		go s.runReader()
	}
	shards := make([]shard, c.workers)
	for i, s := range socks {
		shards[i%c.workers] = append(shards[i%c.workers], s)
	}
	var workers sync.WaitGroup
	for _, sh := range shards {
		workers.Add(1)
		go sh.work(ctx, cl, c.period, c.sendEvery, c.maxChunk, stopWorkers, bad, &workers)
	}
	hctx, stopHammer := context.WithCancel(ctx)
	var hammers sync.WaitGroup
	var hammered atomic.Int64
	ids := make([]string, len(socks))
	for i, s := range socks {
		ids[i] = s.id
	}
	refused, closeRefused := refusedPort()
	defer closeRefused()
	ops := hammerOps(ids, refused, c.maxTotal > 0)
	for i := range c.hammers {
		hammers.Add(1)
		go hammer(hctx, cl, ops, c.seed+uint64(i), &hammered, bad, &hammers)
	}
	var peakG, peakF atomic.Int64
	monitorDone := monitor(hctx, &peakG, &peakF)
	go func() {
		for _, p := range plan {
			select {
			case <-time.After(time.Until(started.Add(p.at))):
			case <-hctx.Done():
				return
			}
			p.s.applyFault(ctx, cl, bad)
		}
	}()
	time.Sleep(c.duration)

	// The peers stop writing; the workers read everything that was written.
	close(stopWriters)
	for _, s := range socks {
		<-s.writerDone
	}
	close(stopWorkers)
	workers.Wait()
	stopHammer()
	hammers.Wait()
	<-monitorDone
	deadline := time.Now().Add(c.drainTO)
	var drains sync.WaitGroup
	for _, sh := range shards {
		drains.Go(func() { sh.drain(ctx, cl, deadline, bad) })
	}
	drains.Wait()
	reasons := closeReasons(ctx, cl, socks, c.retention, bad)
	verifyIn(socks, reasons, &res)
	fmt.Printf("load: streamed for %v; %d hammering requests; drained after %v\n", c.duration, hammered.Load(), time.Since(started.Add(c.duration)).Round(time.Millisecond))

	// SIGTERM with every socket live and long polls pending.
	polls := longPolls(ctx, svc.reg, cl, socks, reasons, c.polls, bad)
	if err := svc.terminate(c.shutdownTO + time.Minute); err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 1
	}
	answered := 0
	for range polls.n {
		if st := <-polls.done; st == http.StatusOK {
			answered++
		} else {
			bad.add("long poll at the shutdown: got %d, want 200", st)
		}
	}
	closed, unclean := peersClosed(socks, 30*time.Second)
	verifyOut(socks, reasons, &res)

	cleanup()
	closeRefused()
	tr.CloseIdleConnections()
	goroutines1, files1 := settle(goroutines0, files0, 30*time.Second)

	failed := report(c, res, reportFigures{
		lat: lat, bad: bad, svc: svc, started: started, polls: polls.n, answered: answered,
		peersClosed: closed, peersUnclean: unclean, sockets: len(socks),
		g0: goroutines0, g1: goroutines1, gPeak: int(peakG.Load()), f0: files0, f1: files1, fPeak: int(peakF.Load()),
	})
	if failed {
		return 1
	}
	return 0
}

// raiseFiles raises RLIMIT_NOFILE to need (the hard limit too, if allowed).
func raiseFiles(need uint64) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil || lim.Cur >= need {
		return
	}
	lim.Cur = need
	if lim.Max < need {
		lim.Max = need
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintf(os.Stderr, "load: raising the open files limit to %d: %v (continuing)\n", need, err)
	}
}

// refusedPort returns a loopback port bound by a socket that does not
// listen, so that a connect to it is refused, and the function that
// releases it (idempotent).
func refusedPort() (int, func()) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return 1, func() {}
	}
	var once sync.Once
	release := func() { once.Do(func() { syscall.Close(fd) }) }
	if syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}) != nil {
		return 1, release
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return 1, release
	}
	return sa.(*syscall.SockaddrInet4).Port, release
}

// monitor samples the goroutine and descriptor counts every second.
func monitor(ctx context.Context, g, f *atomic.Int64) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			g.Store(max(g.Load(), int64(runtime.NumGoroutine())))
			f.Store(max(f.Load(), int64(openFiles())))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}
