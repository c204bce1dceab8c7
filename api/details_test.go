package api

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sockman/sockman/sockets"
)

// TestDetailRendersEngineErrorsWithFlagsAndRoutes checks that the API, not
// the engine, chooses the words: each structured engine error becomes a
// detail that names the flag to change or the route to call.
func TestDetailRendersEngineErrorsWithFlagsAndRoutes(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want []string
	}{
		{&sockets.LimitError{Limit: sockets.LimitSockets, Value: 5}, []string{"5 sockets are open", "--max-sockets", "DELETE /sockets/{id}"}},
		{&sockets.LimitError{Limit: sockets.LimitServers, Value: 2}, []string{"2 servers are listening", "--max-servers", "DELETE /servers/{id}"}},
		{&sockets.LimitError{Limit: sockets.LimitBufferTotal, Value: 1024}, []string{"1024 bytes", "--max-buffer-total"}},
		{&sockets.LimitError{Limit: sockets.LimitFiles, Cause: errors.New("too many open files")}, []string{"too many open files", "ulimit -n"}},
		{&sockets.NotFoundError{Server: true, ID: "srv-9"}, []string{`"srv-9"`, "GET /servers"}},
		{&sockets.NotFoundError{ID: "sock-9", Retention: time.Minute}, []string{`"sock-9"`, "forgotten 1m0s", "GET /sockets"}},
		{&sockets.NotFoundError{ID: "sock-9"}, []string{`"sock-9"`, "GET /sockets"}},
		{&sockets.RangeError{Arg: sockets.ArgBufferBytes, Value: 9, Min: 1, Max: 8, Bound: "MaxBufferBytes"}, []string{"buffer_bytes 9 is out of range 1 to 8", "--max-buffer-bytes"}},
		{&sockets.RangeError{Arg: sockets.ArgTimeout, Value: int64(time.Hour), Min: int64(time.Millisecond), Max: int64(2 * time.Minute), Bound: "MaxDialTimeout"},
			[]string{"timeout_ms 3600000 is out of range 1 to 120000", "--max-connect-timeout is 2m0s"}},
		{&sockets.RangeError{Arg: sockets.ArgPort, Value: 70000, Min: 1, Max: 65535}, []string{"port 70000 is out of range 1 to 65535"}},
		{&sockets.DialTimeoutError{Addr: "127.0.0.1:9", Timeout: time.Second}, []string{"127.0.0.1:9 did not answer within 1s", "raise timeout_ms"}},
	} {
		got := detail(tc.err)
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("detail(%#v): got %q, want it to contain %q", tc.err, got, w)
			}
		}
	}
}
