package api

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sockman/sockman/internal/contract"
)

// TestMemberNamesMatchExactly sends, to every endpoint that takes a JSON
// body, members whose names differ from a field's only in case (or by a
// character that Unicode case folding maps to an ASCII letter: ſ is s),
// alone or beside the right one. encoding/json v1 took them as the
// field, so a send wrote other bytes than the body's data and a listen
// bound another host. Each is a 400 that names the member, and nothing is
// sent, opened or connected.
func TestMemberNamesMatchExactly(t *testing.T) {
	t.Parallel()
	a := newTestAPI(t)
	sock, peer := a.pair(t)
	target := listenPeer(t) // what a client would connect to
	port := target.Addr().(*net.TCPAddr).Port

	send := "/sockets/" + sock.ID + "/messages"
	broadcast := "/servers/" + sock.ServerID + "/messages"
	cases := []struct {
		path, body, member string
	}{
		{send, `{"data":"AAAA","Data":"BBBB"}`, `"Data"`},
		{send, `{"Data":"BBBB","data":"AAAA"}`, `"Data"`},
		{send, `{"data":"6869","encoding":"utf8","ENCODING":"hex"}`, `"ENCODING"`},
		{send, `{"DATA":"x"}`, `"DATA"`},
		{send, `{"data":"aGk=","Encoding":"base64"}`, `"Encoding"`},
		{broadcast, `{"data":"AAAA","Data":"BBBB"}`, `"Data"`},
		{broadcast, `{"data":"6869","encoding":"utf8","ENCODING":"hex"}`, `"ENCODING"`},
		{broadcast, `{"dAta":"x"}`, `"dAta"`},
		{"/servers", `{"port":0,"hoſt":"127.0.0.1"}`, `"hoſt"`},
		{"/servers", `{"Port":0}`, `"Port"`},
		{"/servers", `{"port":0,"host":"127.0.0.1","HOST":"::1"}`, `"HOST"`},
		{"/servers", `{"port":0,"Buffer_Bytes":4096}`, `"Buffer_Bytes"`},
		{"/servers", `{"port":0,"buffer_byteſ":4096}`, `"buffer_byteſ"`},
		{"/servers", `{"port":0,"OVERFLOW":"drop_oldest"}`, `"OVERFLOW"`},
		{"/clients", fmt.Sprintf(`{"Host":"127.0.0.1","port":%d}`, port), `"Host"`},
		{"/clients", fmt.Sprintf(`{"hoſt":"127.0.0.1","port":%d}`, port), `"hoſt"`},
		{"/clients", fmt.Sprintf(`{"host":"127.0.0.1","PORT":%d}`, port), `"PORT"`},
		{"/clients", fmt.Sprintf(`{"host":"127.0.0.1","port":%d,"timeout_mſ":100}`, port), `"timeout_mſ"`},
		{"/clients", fmt.Sprintf(`{"host":"127.0.0.1","port":%d,"Overflow":"block"}`, port), `"Overflow"`},
	}
	for _, tc := range cases {
		t.Run(tc.path+" "+tc.body, func(t *testing.T) {
			req := a.newRequest(http.MethodPost, tc.path, tc.body)
			req.Header.Set(contract.SkipRequestHeader, "unknown member on purpose")
			p := a.do(req).want(t, http.StatusBadRequest).problem(t)
			if !strings.Contains(p.Detail, "unknown field "+tc.member) {
				t.Errorf("got detail %q, want it to name unknown field %s", p.Detail, tc.member)
			}
		})
	}

	// Nothing was sent: the first bytes the peer gets are the next send's.
	a.call(http.MethodPost, send, `{"d\u0061ta":"ok"}`).want(t, http.StatusOK) // an escape spells the name exactly
	if got := string(readPeer(t, peer, 2)); got != "ok" {
		t.Errorf("the peer got %q first, want %q: a refused body was sent", got, "ok")
	}
	// Nothing was opened or connected.
	var servers ServerList
	a.call(http.MethodGet, "/servers", nil).want(t, http.StatusOK).decode(t, &servers)
	if len(servers.Servers) != 1 {
		t.Errorf("got %d servers, want only the fixture's: %+v", len(servers.Servers), servers.Servers)
	}
	if clients := a.sockets(t, "?kind=client"); len(clients) != 0 {
		t.Errorf("got client sockets %+v, want none", clients)
	}
}
