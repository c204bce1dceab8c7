package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"
)

// example is the body that one response of one operation shows, as JSON;
// with status "request", the JSON request body that Swagger UI's "Try it
// out" starts from, where the one it would make up from the schema's
// property examples would not run (a framing with the fields of every
// type).
type example struct {
	op     string // operationId
	status string // response key, or "request"
	body   string // JSON
}

// setExamples puts each example of ex on its response (its JSON or
// problem+json media type), and fails when an example names an operation or
// a response the document does not have, or when a JSON or problem+json
// response is left without one: every response a user reads shows a body
// the service really sends.
func setExamples(doc *openapi3.T, ex []example) error {
	byID := map[string]*openapi3.Operation{}
	for _, path := range doc.Paths.InMatchingOrder() {
		for _, op := range doc.Paths.Value(path).Operations() {
			if op.OperationID != "" {
				byID[op.OperationID] = op
			}
		}
	}
	set := map[*openapi3.MediaType]bool{}
	for _, e := range ex {
		op := byID[e.op]
		if op == nil {
			return fmt.Errorf("example for operation %q, which the document does not have", e.op)
		}
		if e.status == "request" {
			if err := setRequestExample(op, e); err != nil {
				return err
			}
			continue
		}
		ref := op.Responses.Value(e.status)
		if ref == nil || ref.Value == nil {
			return fmt.Errorf("example for response %s of %s, which the document does not have", e.status, e.op)
		}
		mt := findMediaType(ref.Value.Content, mimeProblemJSON)
		if mt == nil {
			mt = findMediaType(ref.Value.Content, mimeJSON)
		}
		if mt == nil {
			return fmt.Errorf("example for response %s of %s, which has no JSON body", e.status, e.op)
		}
		if set[mt] {
			return fmt.Errorf("two examples for response %s of %s", e.status, e.op)
		}
		var v any
		if err := json.Unmarshal([]byte(e.body), &v); err != nil {
			return fmt.Errorf("example for response %s of %s: %w", e.status, e.op, err)
		}
		mt.Example = v
		set[mt] = true
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		op := byID[id]
		for _, status := range slices.Sorted(maps.Keys(op.Responses.Map())) {
			ref := op.Responses.Value(status)
			if ref.Value == nil {
				continue
			}
			for _, mime := range []string{mimeProblemJSON, mimeJSON} {
				if mt := findMediaType(ref.Value.Content, mime); mt != nil && !set[mt] {
					return fmt.Errorf("response %s of %s has no example: add one to sockmanExamples", status, id)
				}
			}
		}
	}
	return nil
}

// setRequestExample puts e on op's JSON request body.
func setRequestExample(op *openapi3.Operation, e example) error {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return fmt.Errorf("request example for %s, which takes no body", e.op)
	}
	mt := findMediaType(op.RequestBody.Value.Content, mimeJSON)
	if mt == nil {
		return fmt.Errorf("request example for %s, whose body is not JSON", e.op)
	}
	var v any
	if err := json.Unmarshal([]byte(e.body), &v); err != nil {
		return fmt.Errorf("request example for %s: %w", e.op, err)
	}
	mt.Example = v
	return nil
}

// sockmanExamples are the examples of openapi.yaml. Each is an answer of the
// service, copied from a real run; api's TestProblemExamples provokes every
// problem here and compares it with the live answer, and TestSuccessExamples
// checks that every success body is what the service's types encode.
var sockmanExamples = []example{
	// Request bodies (api's TestRequestExamplesRun sends them).
	{"createServer", "request", `{"port":0,"framing":{"type":"lines"}}`},
	{"createClient", "request", `{"host":"127.0.0.1","port":9988,"framing":{"type":"length_prefix","header_bytes":2}}`},
	// health
	{"health", "200", `{"status":"ok"}`},
	{"health", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	// ready
	{"ready", "200", `{"status":"ok"}`},
	{"ready", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"ready", "503", `{"type":"urn:sockman:problem:shutting-down","title":"Service Unavailable","status":503,"detail":"registry is closed: the service is shutting down and takes no new work","request_id":"5f2a9c01d3e4-17"}`},
	// metrics
	{"metrics", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"metrics", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	// getOpenAPI
	{"getOpenAPI", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	// swaggerUI
	{"swaggerUI", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	// listServers
	{"listServers", "200", `{"servers":[{"id":"srv-1","address":"127.0.0.1:9988","state":"listening","created_at":"2026-11-29T08:00:00.123456789Z","sockets":["sock-1"],"accepted":1,"rejected":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"half_close":false,"no_delay":true,"keepalive":"30s"}]}`},
	{"listServers", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes name"}`},
	{"listServers", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"listServers", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	// createServer
	{"createServer", "201", `{"id":"srv-1","address":"127.0.0.1:38421","state":"listening","created_at":"2026-11-29T08:00:00.123456789Z","sockets":[],"accepted":0,"rejected":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"lines","max_frame":1048576},"half_close":false,"no_delay":true,"keepalive":"30s"}`},
	{"createServer", "400", `{"type":"urn:sockman:problem:invalid-argument","title":"Bad Request","status":400,"detail":"invalid argument: 192.0.2.1:0 is not an address of this machine; use a local address such as 127.0.0.1"}`},
	{"createServer", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"createServer", "403", `{"type":"urn:sockman:problem:forbidden-by-policy","title":"Forbidden","status":403,"detail":"forbidden by policy: 127.0.0.1:0 matches no --allow-listen rule (rules: 127.0.0.2)"}`},
	{"createServer", "409", `{"type":"urn:sockman:problem:address-in-use","title":"Conflict","status":409,"detail":"address already in use: 127.0.0.1:9988 is already bound by another listener; choose another port or port 0 for an ephemeral one"}`},
	{"createServer", "413", `{"type":"urn:sockman:problem:body-too-large","title":"Request Entity Too Large","status":413,"detail":"request body too large: the body is over the 16777216 byte limit (--max-body)"}`},
	{"createServer", "415", `{"type":"urn:sockman:problem:unsupported-media-type","title":"Unsupported Media Type","status":415,"detail":"unsupported media type: Content-Type \"application/x-www-form-urlencoded\" is not accepted here; send application/json"}`},
	{"createServer", "503", `{"type":"urn:sockman:problem:limit-reached","title":"Service Unavailable","status":503,"detail":"limit reached: 64 servers are listening, the most --max-servers allows; delete some (DELETE /servers/{id})"}`},
	// getServer
	{"getServer", "200", `{"id":"srv-1","address":"127.0.0.1:9988","state":"listening","created_at":"2026-11-29T08:00:00.123456789Z","sockets":["sock-1"],"accepted":1,"rejected":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"half_close":false,"no_delay":true,"keepalive":"30s"}`},
	{"getServer", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"getServer", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"getServer", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"getServer", "404", `{"type":"urn:sockman:problem:server-not-found","title":"Not Found","status":404,"detail":"server not found: no server has id \"srv-9\"; list them with GET /servers"}`},
	// deleteServer
	{"deleteServer", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: close_sockets=\"maybe\" must be true or false"}`},
	{"deleteServer", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"deleteServer", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"deleteServer", "404", `{"type":"urn:sockman:problem:server-not-found","title":"Not Found","status":404,"detail":"server not found: no server has id \"srv-9\"; list them with GET /servers"}`},
	// broadcast
	{"broadcast", "200", `{"sockets":2,"bytes":12}`},
	{"broadcast", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: data is not valid base64 (standard alphabet, with padding): illegal base64 data at input byte 8"}`},
	{"broadcast", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"broadcast", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"broadcast", "404", `{"type":"urn:sockman:problem:server-not-found","title":"Not Found","status":404,"detail":"server not found: no server has id \"srv-9\"; list them with GET /servers"}`},
	{"broadcast", "413", `{"type":"urn:sockman:problem:body-too-large","title":"Request Entity Too Large","status":413,"detail":"request body too large: the body is over the 16777216 byte limit (--max-body)"}`},
	{"broadcast", "415", `{"type":"urn:sockman:problem:unsupported-media-type","title":"Unsupported Media Type","status":415,"detail":"unsupported media type: Content-Type \"application/xml\" is not accepted here; send application/json or application/octet-stream or text/plain"}`},
	{"broadcast", "503", `{"type":"urn:sockman:problem:cancelled","title":"Service Unavailable","status":503,"detail":"the broadcast was cancelled: 1 sockets took it whole, 6 bytes were sent in all: context canceled"}`},
	// listClients
	{"listClients", "200", `{"sockets":[{"id":"sock-2","kind":"client","local_address":"127.0.0.1:41234","remote_address":"127.0.0.1:9988","state":"connected","created_at":"2026-11-29T08:01:00.5Z","bytes_received":0,"bytes_sent":0,"buffered_bytes":0,"buffered_messages":0,"dropped_bytes":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"half_close":false,"no_delay":true,"keepalive":"30s","read_closed":false,"write_closed":false}]}`},
	{"listClients", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes name"}`},
	{"listClients", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"listClients", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	// createClient
	{"createClient", "201", `{"id":"sock-2","kind":"client","local_address":"127.0.0.1:41234","remote_address":"127.0.0.1:9988","state":"connected","created_at":"2026-11-29T08:01:00.5Z","bytes_received":0,"bytes_sent":0,"buffered_bytes":0,"buffered_messages":0,"dropped_bytes":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"half_close":false,"no_delay":true,"keepalive":"30s","read_closed":false,"write_closed":false}`},
	{"createClient", "400", `{"type":"urn:sockman:problem:invalid-argument","title":"Bad Request","status":400,"detail":"invalid argument: host \"127.0.0.1:9988\" is neither an IP address nor a host name (give the port in the port field, and IPv6 without a zone or in brackets)"}`},
	{"createClient", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"createClient", "403", `{"type":"urn:sockman:problem:forbidden-by-policy","title":"Forbidden","status":403,"detail":"forbidden by policy: 127.0.0.1:9988 matches no --allow-connect rule (rules: 127.0.0.2)"}`},
	{"createClient", "413", `{"type":"urn:sockman:problem:body-too-large","title":"Request Entity Too Large","status":413,"detail":"request body too large: the body is over the 16777216 byte limit (--max-body)"}`},
	{"createClient", "415", `{"type":"urn:sockman:problem:unsupported-media-type","title":"Unsupported Media Type","status":415,"detail":"unsupported media type: Content-Type \"application/x-www-form-urlencoded\" is not accepted here; send application/json"}`},
	{"createClient", "502", `{"type":"urn:sockman:problem:connect-failed","title":"Bad Gateway","status":502,"detail":"connect failed: 127.0.0.1:9988 refused the connection; is anything listening there?"}`},
	{"createClient", "503", `{"type":"urn:sockman:problem:limit-reached","title":"Service Unavailable","status":503,"detail":"limit reached: 4096 sockets are open, the most --max-sockets allows; close some (DELETE /sockets/{id})"}`},
	{"createClient", "504", `{"type":"urn:sockman:problem:connect-timeout","title":"Gateway Timeout","status":504,"detail":"connect timed out: 192.0.2.1:9988 did not answer within 5s; check the host and port, or raise timeout_ms"}`},
	// streamEvents
	{"streamEvents", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: types: \"nope\" is not an event type; give comma-separated names of server.listening, server.closed, socket.connected, socket.received, socket.sent, socket.dropped, socket.closed, socket.removed, events.lost, a prefix such as socket.* or server.*, or *"}`},
	{"streamEvents", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"streamEvents", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"streamEvents", "503", `{"type":"urn:sockman:problem:limit-reached","title":"Service Unavailable","status":503,"detail":"limit reached: 64 event streams are open, the most --max-subscribers allows; close one (or raise --max-subscribers)"}`},
	// listSockets
	{"listSockets", "200", `{"sockets":[{"id":"sock-1","kind":"accepted","server_id":"srv-1","local_address":"127.0.0.1:9988","remote_address":"127.0.0.1:37588","state":"connected","created_at":"2026-11-29T08:00:01.25Z","bytes_received":14,"bytes_sent":6,"buffered_bytes":14,"buffered_messages":1,"dropped_bytes":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"half_close":false,"no_delay":true,"keepalive":"30s","read_closed":false,"write_closed":false},{"id":"sock-2","kind":"client","local_address":"127.0.0.1:41234","remote_address":"127.0.0.1:9988","state":"closed","close_reason":"peer closed","created_at":"2026-11-29T08:01:00.5Z","closed_at":"2026-11-29T08:05:00.75Z","bytes_received":3,"bytes_sent":0,"buffered_bytes":3,"buffered_messages":1,"dropped_bytes":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"half_close":false,"no_delay":true,"keepalive":"30s","read_closed":false,"write_closed":false}]}`},
	{"listSockets", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: kind=\"server\" must be accepted or client"}`},
	{"listSockets", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"listSockets", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	// getSocket
	{"getSocket", "200", `{"id":"sock-1","kind":"accepted","server_id":"srv-1","local_address":"127.0.0.1:9988","remote_address":"127.0.0.1:37588","state":"connected","created_at":"2026-11-29T08:00:01.25Z","bytes_received":14,"bytes_sent":6,"buffered_bytes":14,"buffered_messages":1,"dropped_bytes":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"name":"modem","half_close":false,"no_delay":true,"keepalive":"30s","read_closed":false,"write_closed":false,"peer_socket_id":"sock-2"}`},
	{"getSocket", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"getSocket", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"getSocket", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"getSocket", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	// deleteSocket
	{"deleteSocket", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: reset=\"yes\" must be true or false"}`},
	{"deleteSocket", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"deleteSocket", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"deleteSocket", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\"; list them with GET /sockets"}`},
	// shutdownSocket
	{"shutdownSocket", "200", `{"id":"sock-1","kind":"accepted","server_id":"srv-1","local_address":"127.0.0.1:9988","remote_address":"127.0.0.1:37588","state":"connected","created_at":"2026-11-29T08:00:01.25Z","bytes_received":14,"bytes_sent":6,"buffered_bytes":0,"buffered_messages":0,"dropped_bytes":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"half_close":false,"no_delay":true,"keepalive":"30s","read_closed":false,"write_closed":true}`},
	{"shutdownSocket", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"reset\"; this endpoint takes no query parameters"}`},
	{"shutdownSocket", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"shutdownSocket", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"shutdownSocket", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	{"shutdownSocket", "409", `{"type":"urn:sockman:problem:socket-closed","title":"Conflict","status":409,"detail":"socket is closed: socket sock-1 closed (peer closed); open a new connection"}`},
	// closeSocket
	{"closeSocket", "200", `{"id":"sock-1","kind":"accepted","server_id":"srv-1","local_address":"127.0.0.1:9988","remote_address":"127.0.0.1:37588","state":"closed","close_reason":"reset through the API","created_at":"2026-11-29T08:00:01.25Z","closed_at":"2026-11-29T08:05:00.75Z","bytes_received":14,"bytes_sent":6,"buffered_bytes":14,"buffered_messages":1,"dropped_bytes":0,"buffer_bytes":4194304,"overflow":"block","framing":{"type":"raw"},"half_close":false,"no_delay":true,"keepalive":"30s","read_closed":false,"write_closed":false}`},
	{"closeSocket", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: reset=\"yes\" must be true or false"}`},
	{"closeSocket", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"closeSocket", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"closeSocket", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	// read
	{"read", "200", `{"socket_id":"sock-1","state":"connected","messages":[{"seq":1,"received_at":"2026-11-29T08:00:02.5Z","size":14,"encoding":"utf8","data":"hello from nc\n"}],"cursor":1}`},
	{"read", "400", `{"type":"urn:sockman:problem:invalid-argument","title":"Bad Request","status":400,"detail":"invalid argument: cursor after=5 is beyond the last message received (seq 1); pass the cursor of a previous read"}`},
	{"read", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"read", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"read", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	{"read", "409", `{"type":"urn:sockman:problem:socket-busy","title":"Conflict","status":409,"detail":"socket is busy: socket sock-1 has a stream attached (GET /sockets/{id}/stream), its one consumer; close that stream first, or read without after to peek"}`},
	// streamSocket
	{"streamSocket", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: ack=client needs mode=json: the client acknowledges with {\"ack\":N} frames"}`},
	{"streamSocket", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, or the subprotocol sockman.bearer.<token as base64url without padding>, with the token sockman was started with"}`},
	{"streamSocket", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"streamSocket", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	{"streamSocket", "409", `{"type":"urn:sockman:problem:socket-busy","title":"Conflict","status":409,"detail":"socket is busy: socket sock-1 has a stream attached (GET /sockets/{id}/stream), its one consumer; close that stream first, or read without after to peek"}`},
	{"streamSocket", "426", `{"type":"urn:sockman:problem:upgrade-required","title":"Upgrade Required","status":426,"detail":"upgrade required: this is a WebSocket endpoint; open it with a WebSocket client (websocat ws://HOST:PORT/sockets/sock-1/stream), which sends Connection: Upgrade and Upgrade: websocket over HTTP/1.1"}`},
	{"streamSocket", "503", `{"type":"urn:sockman:problem:limit-reached","title":"Service Unavailable","status":503,"detail":"limit reached: 64 streams are open, the most --max-streams allows; close one (or raise --max-streams)"}`},
	// send
	{"send", "200", `{"bytes":6}`},
	{"send", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: data is not valid base64 (standard alphabet, with padding): illegal base64 data at input byte 8"}`},
	{"send", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"send", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"send", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	{"send", "409", `{"type":"urn:sockman:problem:socket-closed","title":"Conflict","status":409,"detail":"socket is closed: socket sock-1 closed (peer closed); open a new connection"}`},
	{"send", "413", `{"type":"urn:sockman:problem:body-too-large","title":"Request Entity Too Large","status":413,"detail":"request body too large: the body is over the 16777216 byte limit (--max-body)"}`},
	{"send", "415", `{"type":"urn:sockman:problem:unsupported-media-type","title":"Unsupported Media Type","status":415,"detail":"unsupported media type: Content-Type \"application/xml\" is not accepted here; send application/json or application/octet-stream or text/plain"}`},
	{"send", "503", `{"type":"urn:sockman:problem:cancelled","title":"Service Unavailable","status":503,"detail":"the send was cancelled after 0 bytes were sent: context canceled"}`},
	{"send", "504", `{"type":"urn:sockman:problem:write-timeout","title":"Gateway Timeout","status":504,"detail":"write timed out: the peer of socket sock-1 took no data for 10s; 4128768 bytes were sent before the timeout"}`},
	// Mock devices: rules and schedules
	{"createServerRule", "request", `{"match":{"equals":"AT"},"reply":{"data":"OK\\r\\n","encoding":"escaped"}}`},
	{"createServerRule", "201", `{"id":"rule-1","match":{"equals":"AT"},"reply":{"data":"OK\\r\\n","encoding":"escaped"},"hits":0}`},
	{"createServerRule", "400", `{"type":"urn:sockman:problem:invalid-argument","title":"Bad Request","status":400,"detail":"invalid argument: match regex \"^(AT\\\\S*\" does not compile as RE2 (Go's regexp syntax): missing closing ) in \"^(AT\\\\S*\""}`},
	{"createServerRule", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"createServerRule", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"createServerRule", "404", `{"type":"urn:sockman:problem:server-not-found","title":"Not Found","status":404,"detail":"server not found: no server has id \"srv-9\"; list them with GET /servers"}`},
	{"createServerRule", "413", `{"type":"urn:sockman:problem:body-too-large","title":"Request Entity Too Large","status":413,"detail":"request body too large: the body is over the 16777216 byte limit (--max-body)"}`},
	{"createServerRule", "415", `{"type":"urn:sockman:problem:unsupported-media-type","title":"Unsupported Media Type","status":415,"detail":"unsupported media type: Content-Type \"application/xml\" is not accepted here; send application/json"}`},
	{"createServerRule", "503", `{"type":"urn:sockman:problem:limit-reached","title":"Service Unavailable","status":503,"detail":"limit reached: it has 1 reply rules, the most --max-rules allows; delete one (DELETE .../rules/{rule_id}) or join two into one regex"}`},
	{"listServerRules", "200", `{"rules":[{"id":"rule-1","match":{"equals":"AT"},"reply":{"data":"OK\\r\\n","encoding":"escaped"},"hits":3},{"id":"rule-2","match":{"prefix":""},"reply":{"data":"ERROR\\r\\n","encoding":"escaped"},"hits":1}]}`},
	{"listServerRules", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"listServerRules", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"listServerRules", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"listServerRules", "404", `{"type":"urn:sockman:problem:server-not-found","title":"Not Found","status":404,"detail":"server not found: no server has id \"srv-9\"; list them with GET /servers"}`},
	{"deleteServerRule", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"deleteServerRule", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"deleteServerRule", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"deleteServerRule", "404", `{"type":"urn:sockman:problem:rule-not-found","title":"Not Found","status":404,"detail":"rule not found: server srv-1 has no rule with id \"rule-9\"; list them with GET /servers/{id}/rules"}`},
	{"createServerSchedule", "request", `{"data":"PING\\r\\n","encoding":"escaped","interval_ms":1000,"count":3}`},
	{"createServerSchedule", "201", `{"id":"sched-1","data":"PING\\r\\n","encoding":"escaped","interval_ms":1000,"count":3,"sent":0,"done":false}`},
	{"createServerSchedule", "400", `{"type":"urn:sockman:problem:invalid-argument","title":"Bad Request","status":400,"detail":"invalid argument: interval_ms 1 is out of range 10 to 86400000 (--min-schedule-interval is 10ms); send less often"}`},
	{"createServerSchedule", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"createServerSchedule", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"createServerSchedule", "404", `{"type":"urn:sockman:problem:server-not-found","title":"Not Found","status":404,"detail":"server not found: no server has id \"srv-9\"; list them with GET /servers"}`},
	{"createServerSchedule", "413", `{"type":"urn:sockman:problem:body-too-large","title":"Request Entity Too Large","status":413,"detail":"request body too large: the body is over the 16777216 byte limit (--max-body)"}`},
	{"createServerSchedule", "415", `{"type":"urn:sockman:problem:unsupported-media-type","title":"Unsupported Media Type","status":415,"detail":"unsupported media type: Content-Type \"application/xml\" is not accepted here; send application/json"}`},
	{"createServerSchedule", "503", `{"type":"urn:sockman:problem:limit-reached","title":"Service Unavailable","status":503,"detail":"limit reached: it has 1 schedules, the most --max-schedules allows; delete one (DELETE .../schedules/{schedule_id})"}`},
	{"listServerSchedules", "200", `{"schedules":[{"id":"sched-1","data":"PING\\r\\n","encoding":"escaped","interval_ms":1000,"count":3,"sent":3,"done":true}]}`},
	{"listServerSchedules", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"listServerSchedules", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"listServerSchedules", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"listServerSchedules", "404", `{"type":"urn:sockman:problem:server-not-found","title":"Not Found","status":404,"detail":"server not found: no server has id \"srv-9\"; list them with GET /servers"}`},
	{"deleteServerSchedule", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"deleteServerSchedule", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"deleteServerSchedule", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"deleteServerSchedule", "404", `{"type":"urn:sockman:problem:schedule-not-found","title":"Not Found","status":404,"detail":"schedule not found: server srv-1 has no schedule with id \"sched-9\"; list them with GET /servers/{id}/schedules"}`},
	{"createSocketRule", "request", `{"match":{"equals":"AT"},"reply":{"data":"OK\\r\\n","encoding":"escaped"}}`},
	{"createSocketRule", "201", `{"id":"rule-1","match":{"equals":"AT"},"reply":{"data":"OK\\r\\n","encoding":"escaped"},"hits":0}`},
	{"createSocketRule", "400", `{"type":"urn:sockman:problem:invalid-argument","title":"Bad Request","status":400,"detail":"invalid argument: reply names group 2, which the regex does not have; its groups are $0 to $1"}`},
	{"createSocketRule", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"createSocketRule", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"createSocketRule", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	{"createSocketRule", "413", `{"type":"urn:sockman:problem:body-too-large","title":"Request Entity Too Large","status":413,"detail":"request body too large: the body is over the 16777216 byte limit (--max-body)"}`},
	{"createSocketRule", "415", `{"type":"urn:sockman:problem:unsupported-media-type","title":"Unsupported Media Type","status":415,"detail":"unsupported media type: Content-Type \"application/xml\" is not accepted here; send application/json"}`},
	{"createSocketRule", "503", `{"type":"urn:sockman:problem:limit-reached","title":"Service Unavailable","status":503,"detail":"limit reached: it has 1 reply rules, the most --max-rules allows; delete one (DELETE .../rules/{rule_id}) or join two into one regex"}`},
	{"listSocketRules", "200", `{"rules":[{"id":"rule-1","match":{"equals":"AT"},"reply":{"data":"OK\\r\\n","encoding":"escaped"},"hits":3},{"id":"rule-2","match":{"prefix":""},"reply":{"data":"ERROR\\r\\n","encoding":"escaped"},"hits":1}]}`},
	{"listSocketRules", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"listSocketRules", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"listSocketRules", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"listSocketRules", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	{"deleteSocketRule", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"deleteSocketRule", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"deleteSocketRule", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"deleteSocketRule", "404", `{"type":"urn:sockman:problem:rule-not-found","title":"Not Found","status":404,"detail":"rule not found: socket sock-1 has no rule with id \"rule-9\"; list them with GET /sockets/{id}/rules"}`},
	{"createSocketSchedule", "request", `{"data":"PING\\r\\n","encoding":"escaped","interval_ms":1000,"count":3}`},
	{"createSocketSchedule", "201", `{"id":"sched-1","data":"PING\\r\\n","encoding":"escaped","interval_ms":1000,"count":3,"sent":0,"done":false}`},
	{"createSocketSchedule", "400", `{"type":"urn:sockman:problem:invalid-argument","title":"Bad Request","status":400,"detail":"invalid argument: interval_ms 1 is out of range 10 to 86400000 (--min-schedule-interval is 10ms); send less often"}`},
	{"createSocketSchedule", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"createSocketSchedule", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"createSocketSchedule", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	{"createSocketSchedule", "413", `{"type":"urn:sockman:problem:body-too-large","title":"Request Entity Too Large","status":413,"detail":"request body too large: the body is over the 16777216 byte limit (--max-body)"}`},
	{"createSocketSchedule", "415", `{"type":"urn:sockman:problem:unsupported-media-type","title":"Unsupported Media Type","status":415,"detail":"unsupported media type: Content-Type \"application/xml\" is not accepted here; send application/json"}`},
	{"createSocketSchedule", "409", `{"type":"urn:sockman:problem:socket-closed","title":"Conflict","status":409,"detail":"socket is closed: socket sock-1 closed (peer closed); open a new connection"}`},
	{"createSocketSchedule", "503", `{"type":"urn:sockman:problem:limit-reached","title":"Service Unavailable","status":503,"detail":"limit reached: it has 1 schedules, the most --max-schedules allows; delete one (DELETE .../schedules/{schedule_id})"}`},
	{"listSocketSchedules", "200", `{"schedules":[{"id":"sched-1","data":"PING\\r\\n","encoding":"escaped","interval_ms":1000,"count":3,"sent":3,"done":true}]}`},
	{"listSocketSchedules", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"listSocketSchedules", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"listSocketSchedules", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"listSocketSchedules", "404", `{"type":"urn:sockman:problem:socket-not-found","title":"Not Found","status":404,"detail":"socket not found: no socket has id \"sock-9\" (closed sockets are forgotten 10m0s after they close, or when deleted); list them with GET /sockets"}`},
	{"deleteSocketSchedule", "400", `{"type":"urn:sockman:problem:bad-request","title":"Bad Request","status":400,"detail":"bad request: unknown query parameter \"verbose\"; this endpoint takes no query parameters"}`},
	{"deleteSocketSchedule", "401", `{"type":"urn:sockman:problem:unauthorized","title":"Unauthorized","status":401,"detail":"unauthorized: send the header Authorization: Bearer <token>, with the token sockman was started with (in Swagger UI: Authorize)"}`},
	{"deleteSocketSchedule", "403", `{"type":"urn:sockman:problem:forbidden","title":"Forbidden","status":403,"detail":"forbidden: Host \"sockman.example.com\" is not a name this API answers to (the check stops DNS rebinding); if you reach sockman by that name, start it with --allowed-hosts sockman.example.com"}`},
	{"deleteSocketSchedule", "404", `{"type":"urn:sockman:problem:schedule-not-found","title":"Not Found","status":404,"detail":"schedule not found: socket sock-1 has no schedule with id \"sched-9\"; list them with GET /sockets/{id}/schedules"}`},
}
