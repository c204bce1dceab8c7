package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"sync"
)

// The floor of the control-plane figure: a bare net/http server whose
// POST /servers does nothing but open a plain TCP listener with an accept
// goroutine, and whose DELETE /servers/{id} does nothing but close it and
// wait for that goroutine, next to a GET /healthz like sockman's. Measured
// with the same clients in the same rounds as sockman, its create+delete
// ratio is what Go's HTTP server and one listener cost on this machine, with
// no router, middleware, validation, JSON or bookkeeping of sockman's.

const floorChildEnv = "SOCKMAN_BENCH_FLOOR_CHILD"

// floorProc is the floor server running as a child of this process.
type floorProc struct {
	cmd  *exec.Cmd
	addr string
}

func startFloor() (*floorProc, error) {
	cmd, out, err := startChild(floorChildEnv + "=1")
	if err != nil {
		return nil, err
	}
	f := &floorProc{cmd: cmd}
	if _, err := fmt.Fscanln(out, &f.addr); err != nil {
		f.stop()
		return nil, fmt.Errorf("floor server: %w", err)
	}
	return f, nil
}

func (f *floorProc) stop() { killChild(f.cmd) }

// floorListener is one listener of the floor server and its accept loop.
type floorListener struct {
	ln   net.Listener
	done chan struct{}
}

// runFloorChild is the floor server: it prints its address and serves
// until it is killed.
func runFloorChild() error {
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var (
		mu   sync.Mutex
		last int
		lns  = map[string]*floorListener{}
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	})
	mux.HandleFunc("POST /servers", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		lc := net.ListenConfig{}
		lc.SetMultipathTCP(false) // as sockman listens
		ln, err := lc.Listen(r.Context(), "tcp", "127.0.0.1:0")
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		l := &floorListener{ln: ln, done: make(chan struct{})}
		go func() {
			defer close(l.done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		mu.Lock()
		last++
		id := "srv-" + strconv.Itoa(last)
		lns[id] = l
		mu.Unlock()
		w.Header().Set("Location", "/servers/"+id)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, "{\"id\":%q,\"address\":%q}\n", id, ln.Addr())
	})
	mux.HandleFunc("DELETE /servers/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		l := lns[r.PathValue("id")]
		delete(lns, r.PathValue("id"))
		mu.Unlock()
		if l == nil {
			http.NotFound(w, r)
			return
		}
		l.ln.Close()
		<-l.done
		w.WriteHeader(http.StatusNoContent)
	})
	fmt.Println(api.Addr())
	return http.Serve(api, mux)
}
