package main

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"time"
)

// benchSocat measures one of the peers side by side: a stream
// relayed by socat (its default 8 KiB buffer, and -b 262144) against the
// raw loopback stream, interleaved as for sockman. It needs socat on PATH
// (apt-get install socat) and is skipped without it.
func benchSocat(c *config) ([]sample, error) {
	bin, err := exec.LookPath("socat")
	if err != nil {
		fmt.Println("socat: not installed, skipped (apt-get install -y socat)")
		return nil, nil
	}
	rs, err := newRawSession()
	if err != nil {
		return nil, err
	}
	defer rs.close()
	var out []sample
	for _, v := range []struct {
		key  string
		args []string
	}{{"socat", nil}, {"socat-256k", []string{"-b", "262144"}}} {
		ss, err := newSocatSession(bin, v.args)
		if err != nil {
			return nil, err
		}
		base, got, _, err := interleave(c.streamBytes, rs, ss, nil)
		ss.close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", v.key, err)
		}
		out = append(out, sample{v.key, got, base})
	}
	return out, nil
}

// socatSession is writer -> socat -> sink, on loopback.
type socatSession struct {
	rawSession // the writer's and the reader's ends, with socat between them
	cmd        *exec.Cmd
	sinkClosed chan struct{}
}

func newSocatSession(bin string, extra []string) (*socatSession, error) {
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	// A free port for socat to listen on (closed again at once: socat binds it).
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	args := append(extra, "TCP-LISTEN:"+strconv.Itoa(port)+",bind=127.0.0.1,reuseaddr", "TCP:"+sink.Addr().String())
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &socatSession{cmd: cmd}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if s.w, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.close()
			return nil, fmt.Errorf("socat did not listen on %s: %w", addr, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s.r, err = sink.Accept(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *socatSession) close() {
	if s.w != nil {
		s.w.Close()
	}
	if s.r != nil {
		s.r.Close()
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
}
