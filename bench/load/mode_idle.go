package main

// -mode idle-conns: thousands of API connections that send nothing, each
// opened again as soon as sockman closes it, as anyone who reaches the API
// port can do without a token. sockman runs as a process of its own (the
// real `sockman serve`, built from this tree), so that its descriptors and
// memory are its own. During the flood, authorized requests and /healthz on
// fresh connections must be answered right (at most one in ten may have its
// connection cut before it was read: see --max-api-conns); the descriptors sockman holds must
// stay within --max-api-conns; once the flood stops, descriptors must come
// back to where they started, RSS near it, and SIGTERM must stop sockman cleanly.
//
//	go run ./bench/load -mode idle-conns -idle-conns 3000 -idle-for 20s -idle-cap 256

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sockman/sockman/internal/testnet"
)

type idleConfig struct {
	conns    int
	hold     time.Duration
	cap      int
	every    time.Duration
	rssBound int64
}

// idleFlags registers the flags of -mode idle-conns.
func idleFlags() *idleConfig {
	c := &idleConfig{}
	flag.IntVar(&c.conns, "idle-conns", 3000, "idle-conns: API connections held open sending nothing, each reopened when sockman closes it")
	flag.DurationVar(&c.hold, "idle-for", 20*time.Second, "idle-conns: how long the flood lasts")
	flag.IntVar(&c.cap, "idle-cap", 256, "idle-conns: sockman's --max-api-conns")
	flag.DurationVar(&c.every, "idle-every", 500*time.Millisecond, "idle-conns: an authorized request and a /healthz are sent this often during the flood")
	flag.Int64Var(&c.rssBound, "idle-rss-bound", 64<<20, "idle-conns: the most sockman's RSS may grow over its start, in bytes")
	return c
}

// procStats is what /proc says of a process.
type procStats struct{ files, rss int64 }

func readProc(pid int) (procStats, error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return procStats{}, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procStats{}, err
	}
	var rss int64
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			rss = kb << 10
		}
	}
	return procStats{files: int64(len(entries)), rss: rss}, nil
}

func runIdleConns(c *idleConfig) int {
	if c.conns < 1 || c.cap < 2 || c.hold <= 0 {
		fmt.Fprintln(os.Stderr, "load: -idle-conns must be at least 1, -idle-cap at least 2, -idle-for positive")
		return 2
	}
	raiseFiles(uint64(c.conns + 4096))
	dir, err := os.MkdirTemp("", "sockman-idle-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	var raw [16]byte
	rand.Read(raw[:])
	token := hex.EncodeToString(raw[:])
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 1
	}
	var tooMany, fullWarnings atomic.Int64
	// A total of 32 MiB, as the memory modes: memory is given back once
	// the heap holds 8 MiB more than the sockets need, so that "after" can
	// be compared with "before".
	p, err := startProc(func(line string) {
		if strings.Contains(line, "too many open files") {
			tooMany.Add(1)
		}
		if strings.Contains(line, "the API holds --max-api-conns") {
			fullWarnings.Add(1)
		}
	}, "--token-file", tokenFile, "--max-api-conns", strconv.Itoa(c.cap), "--read-header-timeout", "10s",
		"--max-buffer-total", strconv.Itoa(memDefaultTotal))
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: %v\n", err)
		return 1
	}
	defer p.stop()
	pid, addr := p.pid, p.addr
	before, err := readProc(pid)
	if err != nil {
		fmt.Fprintf(os.Stderr, "load: reading /proc/%d: %v\n", pid, err)
		return 1
	}
	fmt.Printf("load: idle-conns: sockman pid %d on %s with --max-api-conns %d; before: %d descriptors, RSS %.1f MiB\n",
		pid, addr, c.cap, before.files, mibs(before.rss))

	var peakFiles, peakRSS atomic.Int64
	sampleCtx, stopSampling := context.WithCancel(context.Background())
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if s, err := readProc(pid); err == nil {
				peakFiles.Store(max(peakFiles.Load(), s.files))
				peakRSS.Store(max(peakRSS.Load(), s.rss))
			}
			select {
			case <-sampleCtx.Done():
				return
			case <-tick.C:
			}
		}
	}()

	// The flood, and authorized requests through it.
	start := time.Now()
	flood := testnet.StartIdleFlood(addr, c.conns)
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	call := func(method, path, body string) (int, time.Duration, error) {
		req, err := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		if err != nil {
			return 0, 0, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		t0 := time.Now()
		res, err := hc.Do(req)
		if err != nil {
			return 0, time.Since(t0), err
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode, time.Since(t0), nil
	}
	var ok, failed int
	var slowest time.Duration
	var failures, cutNotes []string
	for time.Since(start) < c.hold {
		for _, r := range []struct {
			method, path string
			want         int
		}{{"GET", "/healthz", 200}, {"GET", "/servers", 200}} {
			status, took, err := call(r.method, r.path, "")
			slowest = max(slowest, took)
			switch {
			case err != nil:
				// The connection was cut: at the cap, one that has sent
				// nothing for 50 ms may be closed to make room, and on a
				// loaded machine this client can be that slow.
				failed++
				if len(cutNotes) < 5 {
					cutNotes = append(cutNotes, fmt.Sprintf("%s %s: %v after %v", r.method, r.path, err, took.Round(time.Millisecond)))
				}
				continue
			case status != r.want:
				failures = append(failures, fmt.Sprintf("%s %s: got %d, want %d", r.method, r.path, status, r.want))
				continue
			}
			ok++
		}
		time.Sleep(c.every)
	}
	flood.Stop()
	floodTook := time.Since(start)

	// Back to the baseline.
	var after procStats
	settled := time.Now().Add(30 * time.Second)
	for {
		after, err = readProc(pid)
		if err != nil || after.files <= before.files || time.Now().After(settled) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopSampling()
	<-sampled
	rssAfter := p.waitBack(before.rss)
	waitErr := p.stop()

	fmt.Printf("load: idle-conns: %d connections held for %v: %d opened, %d closed by sockman to make room (%d warnings logged), %d too-many-open-files lines\n",
		c.conns, floodTook.Round(time.Millisecond), flood.Dials.Load(), flood.Closed.Load(), fullWarnings.Load(), tooMany.Load())
	fmt.Printf("load: idle-conns: authorized requests and /healthz during the flood: %d answered, %d cut before they were read, slowest %v\n", ok, failed, slowest.Round(time.Millisecond))
	fmt.Printf("load: idle-conns: descriptors before %d, peak %d, after %d (cap %d); RSS before %.1f MiB, peak %.1f MiB, after %.1f MiB\n",
		before.files, peakFiles.Load(), after.files, c.cap, mibs(before.rss), mibs(peakRSS.Load()), mibs(rssAfter))

	bad := false
	fail := func(format string, args ...any) {
		bad = true
		fmt.Printf("load: idle-conns: FAIL: "+format+"\n", args...)
	}
	for _, f := range failures {
		fail("%s", f)
	}
	for _, n := range cutNotes {
		fmt.Printf("load: idle-conns: cut: %s\n", n)
	}
	// Every answer must be right; a request whose connection was cut
	// before it was read is the price of the cap, and at most one in ten.
	if ok == 0 || failed*10 > ok+failed {
		fail("%d of %d authorized requests were cut, want at most one in ten", failed, ok+failed)
	}
	if tooMany.Load() > 0 {
		fail("sockman ran out of descriptors")
	}
	if limit := before.files + int64(c.cap) + 2; peakFiles.Load() > limit {
		fail("sockman held %d descriptors at the peak, want at most %d (before, the cap, 2 in flight)", peakFiles.Load(), limit)
	}
	if after.files > before.files {
		fail("sockman holds %d descriptors after the flood, want %d as before", after.files, before.files)
	}
	if grew := peakRSS.Load() - before.rss; grew > c.rssBound {
		fail("sockman's RSS grew by %.1f MiB, over the bound of %.1f MiB", mibs(grew), mibs(c.rssBound))
	}
	if rssAfter > before.rss+memBackMargin {
		fail("sockman's RSS is %.1f MiB after the flood, want it back within %.1f MiB of the %.1f MiB before", mibs(rssAfter), mibs(memBackMargin), mibs(before.rss))
	}
	if waitErr != nil {
		fail("sockman exited with %v after SIGTERM; log tail:\n%s", waitErr, p.stderrTail())
	}
	if bad {
		return 1
	}
	fmt.Println("load: idle-conns: ok")
	return 0
}

func mibs(b int64) float64 { return float64(b) / (1 << 20) }
