// Command bench measures sockman against its baselines, in the same run:
// ingest and send throughput against one raw loopback TCP stream, idle
// memory per socket, long-poll wake-up against a one-hop relay, control
// plane rates against GET /healthz, and API latency while 1,000 sockets
// stream. It builds sockman once into a temporary directory and runs it as a
// separate process (a fresh one per benchmark and run), repeats each
// benchmark -runs times, and prints medians and ratios.
//
//	go run ./bench                    # everything, 5 runs (about 3 minutes)
//	go run ./bench -quick             # smoke run (about 15 seconds)
//	go run ./bench -bench wake,idle -runs 3 -v
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// config is what the flags say.
type config struct {
	runs         int
	quick        bool
	verbose      bool
	bin          string
	streamBytes  int64
	ingestBuffer int
	sendBody     int
	idleSockets  int
	wakeSamples  int
	wakePause    time.Duration
	controlN     int
	loadSockets  int
	loadDuration time.Duration
	loadChunk    int
	loadInterval time.Duration
	mockSamples  int
	mockSockets  int
	mockDuration time.Duration
	sockmanFlags []string
	perfDir      string
	started      int // sockman processes started, to name perf files
}

// sample is one figure of one run: sockman's and its baseline's.
type sample struct {
	key      string
	sockman  float64
	baseline float64
}

type benchmark struct {
	name string
	desc string
	run  func(c *config) ([]sample, error)
}

// debug prints details of each measurement (SOCKMAN_BENCH_DEBUG=1).
var debug = os.Getenv("SOCKMAN_BENCH_DEBUG") != ""

var benchmarks = []benchmark{
	{"ingest", "peer -> accepted socket -> GET messages as octet-stream, vs raw loopback", benchIngest},
	{"json", "peer -> accepted socket -> GET messages as JSON with base64, vs raw loopback", benchJSON},
	{"send", "POST 1 MiB octet-stream bodies -> peer that discards, vs raw loopback", benchSend},
	{"idle", "RSS per idle connected socket (10,000)", benchIdle},
	{"wake", "long-poll wake-up latency vs a one-hop relay", benchWake},
	{"control", "server create+delete pairs and GET /sockets/{id} vs GET /healthz", benchControl},
	{"load", "API p99 while 1,000 sockets stream", benchLoad},
	{"mock", "a mock with an echo rule: 64 B round trip and the rate of 1,000 sockets, vs a bare Go echo process", benchMock},
	{"socat", "a peer side by side: a stream relayed by socat, vs raw loopback (skipped without socat)", benchSocat},
}

func main() {
	if spec := os.Getenv(loadChildEnv); spec != "" {
		if err := runLoadChild(spec); err != nil {
			fatalf("load generator: %v", err)
		}
		return
	}
	if os.Getenv(floorChildEnv) != "" {
		if err := runFloorChild(); err != nil {
			fatalf("floor server: %v", err)
		}
		return
	}
	if os.Getenv(echoChildEnv) != "" {
		if err := runEchoChild(); err != nil {
			fatalf("echo server: %v", err)
		}
		return
	}
	if os.Getenv(relayChildEnv) != "" {
		if err := runRelayChild(); err != nil {
			fatalf("relay: %v", err)
		}
		return
	}
	var c config
	var which, extra string
	flag.IntVar(&c.runs, "runs", 5, "runs of each benchmark; the table shows medians")
	flag.BoolVar(&c.quick, "quick", false, "smoke run: 1 run (unless -runs is given) and small sizes")
	flag.BoolVar(&c.verbose, "v", false, "print every run's figures")
	flag.StringVar(&which, "bench", "all", "comma-separated benchmarks to run: all, "+names())
	flag.StringVar(&c.bin, "sockman", "", "use this sockman binary instead of building ./cmd/sockman")
	var compare string
	flag.StringVar(&compare, "compare", "", "also measure this other sockman binary, run for run, and print its table too (before/after comparisons)")
	flag.StringVar(&c.perfDir, "perf", "", "directory: record a CPU profile of every sockman process there with perf record -g (Debian: linux-perf)")
	flag.StringVar(&extra, "sockman-flags", "", "extra flags for every sockman serve, space-separated (e.g. --max-buffer-total=2GiB)")
	size := flag.Int64("stream-mib", 1024, "MiB streamed per throughput measurement")
	flag.IntVar(&c.ingestBuffer, "ingest-buffer", 16<<20, "buffer_bytes of the ingest socket; each read asks for half")
	flag.IntVar(&c.sendBody, "send-body", 1<<20, "bytes per POST in the send benchmark")
	flag.IntVar(&c.idleSockets, "idle-sockets", 10000, "idle sockets opened by the idle benchmark")
	flag.IntVar(&c.wakeSamples, "wake-samples", 2000, "wake-up samples per side and run")
	flag.DurationVar(&c.wakePause, "wake-pause", time.Millisecond, "pause between a poll's request and the peer's write, so the poll is parked")
	flag.IntVar(&c.controlN, "control-n", 2000, "requests (or pairs) per control-plane measurement")
	flag.IntVar(&c.loadSockets, "load-sockets", 1000, "streaming sockets in the load benchmark")
	flag.DurationVar(&c.loadDuration, "load-duration", 5*time.Second, "how long the load benchmark streams per run")
	flag.IntVar(&c.loadChunk, "load-chunk", 4<<10, "bytes each peer writes per interval in the load benchmark")
	flag.DurationVar(&c.loadInterval, "load-interval", 100*time.Millisecond, "interval between a peer's writes in the load benchmark (0: as fast as it can)")
	flag.IntVar(&c.mockSamples, "mock-samples", 5000, "round-trip samples per side and run in the mock benchmark")
	flag.IntVar(&c.mockSockets, "mock-sockets", 1000, "echoing connections per side in the mock benchmark")
	flag.DurationVar(&c.mockDuration, "mock-duration", 2*time.Second, "how long each side echoes per run in the mock benchmark")
	flag.Parse()

	runsSet := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "runs" {
			runsSet = true
		}
	})
	c.streamBytes = *size << 20
	if c.quick {
		if !runsSet {
			c.runs = 1
		}
		c.streamBytes = min(c.streamBytes, 256<<20)
		c.wakeSamples = min(c.wakeSamples, 500)
		c.controlN = min(c.controlN, 500)
		c.loadDuration = min(c.loadDuration, 2*time.Second)
		c.mockSamples = min(c.mockSamples, 1000)
		c.mockDuration = min(c.mockDuration, time.Second)
	}
	if extra != "" {
		c.sockmanFlags = strings.Fields(extra)
	}
	if c.runs < 1 {
		fatalf("-runs must be at least 1")
	}
	selected, err := selectBenchmarks(which)
	if err != nil {
		fatalf("%v", err)
	}
	raiseNoFile()

	if c.bin == "" {
		dir, err := os.MkdirTemp("", "sockman-bench-")
		if err != nil {
			fatalf("%v", err)
		}
		defer os.RemoveAll(dir)
		if c.bin, err = buildSockman(dir); err != nil {
			fatalf("%v", err)
		}
	}

	began := time.Now()
	// With -compare, every run of every benchmark measures both binaries,
	// one right after the other, so that both see the same machine.
	bins := []string{c.bin}
	if compare != "" {
		bins = append(bins, compare)
	}
	all := make([]map[string][]sample, len(bins))
	for i := range all {
		all[i] = map[string][]sample{}
	}
	for _, b := range selected {
		for run := 1; run <= c.runs; run++ {
			for i, bin := range bins {
				t := time.Now()
				c.bin = bin
				ss, err := b.run(&c)
				if err != nil {
					fatalf("%s, run %d, %s: %v", b.name, run, bin, err)
				}
				tag := ""
				if i > 0 {
					tag = " (compare)"
				}
				for _, s := range ss {
					all[i][s.key] = append(all[i][s.key], s)
					if c.verbose {
						fmt.Fprintf(os.Stderr, "%-8s run %d  %-22s sockman %10.1f  baseline %10.1f%s\n", b.name, run, s.key, s.sockman, s.baseline, tag)
					}
				}
				if c.verbose {
					fmt.Fprintf(os.Stderr, "%-8s run %d took %v%s\n", b.name, run, time.Since(t).Round(time.Millisecond), tag)
				}
			}
		}
	}
	c.bin = bins[0]
	if compare != "" {
		fmt.Printf("\nsockman under test: %s\n", bins[0])
	}
	printTable(os.Stdout, &c, all[0])
	if compare != "" {
		fmt.Printf("\ncompare: %s (measured in the same runs, right after)\n", compare)
		printTable(os.Stdout, &c, all[1])
	}
	fmt.Printf("\n%d run(s) per benchmark, %v in all; GOMAXPROCS and GOGC of sockman: the defaults\n", c.runs, time.Since(began).Round(time.Second))
}

func names() string {
	var n []string
	for _, b := range benchmarks {
		n = append(n, b.name)
	}
	return strings.Join(n, ", ")
}

func selectBenchmarks(which string) ([]benchmark, error) {
	if which == "all" || which == "" {
		return benchmarks, nil
	}
	want := strings.Split(which, ",")
	var out []benchmark
	for _, w := range want {
		i := slices.IndexFunc(benchmarks, func(b benchmark) bool { return b.name == strings.TrimSpace(w) })
		if i < 0 {
			return nil, fmt.Errorf("unknown benchmark %q; have %s", w, names())
		}
		out = append(out, benchmarks[i])
	}
	return out, nil
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard one: the idle
// benchmark holds 10,000 peers in this process.
func raiseNoFile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

// start runs a fresh sockman with the benchmark's flags and the user's,
// under perf record when -perf is given.
func (c *config) start(flags ...string) (*proc, error) {
	p, err := startSockman(c.bin, append(flags, c.sockmanFlags...)...)
	if err != nil || c.perfDir == "" {
		return p, err
	}
	c.started++
	out := filepath.Join(c.perfDir, fmt.Sprintf("sockman-%d.perf", c.started))
	p.perf = exec.Command("perf", "record", "-e", "cpu-clock", "-F", "1999", "-g", "-q", "-o", out, "-p", strconv.Itoa(p.cmd.Process.Pid))
	p.perf.Stderr = os.Stderr
	if err := p.perf.Start(); err != nil {
		p.stop()
		return nil, fmt.Errorf("perf record: %w", err)
	}
	time.Sleep(200 * time.Millisecond) // let perf attach
	return p, nil
}
