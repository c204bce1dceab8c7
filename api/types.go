package api

import (
	"fmt"
	"time"

	"github.com/sockman/sockman/sockets"
)

// Request and response bodies. They are separate from the engine's types so
// that the wire format is chosen here, once.

// ServerCreate is the body of POST /servers.
type ServerCreate struct {
	// Address to bind: an IP, or a name that resolves to one (its first address). Default 127.0.0.1. An IPv4 address binds IPv4 only and an IPv6 address IPv6 only: 0.0.0.0 takes IPv4 peers, :: IPv6 peers.
	Host string `json:"host,omitempty" example:"127.0.0.1"`
	// Port to bind; 0 asks for an ephemeral port (the bound one is in the answer).
	Port *int `json:"port" example:"0" minimum:"0" maximum:"65535" validate:"required"`
	// Buffer of each accepted socket, in bytes; 0 or absent: --buffer-bytes.
	BufferBytes int `json:"buffer_bytes,omitempty" example:"4194304" minimum:"0"`
	// What a socket does when its buffer is full: block stops reading (TCP slows the peer), drop_oldest drops and counts.
	Overflow string `json:"overflow,omitempty" enums:"block,drop_oldest" example:"block"`
	// How each accepted socket cuts what it receives into messages; absent: raw.
	Framing *Framing `json:"framing,omitempty"`
	// Sent to every accepted connection at once: a banner, a prompt.
	Greeting *Greeting `json:"greeting,omitempty"`
	// Which messages its sockets store for reading: all (default), unmatched (a message a reply rule answered is not stored), none (nothing is stored: counters and events only, so a mock nobody reads never fills its buffer).
	Retain string `json:"retain,omitempty" enums:"all,unmatched,none" example:"all"`
	ConnOptions
} // @name ServerCreate

// Greeting is the bytes a server sends to every connection it accepts.
type Greeting struct {
	// The bytes, written in encoding; at most --max-reply-bytes.
	Data string `json:"data" example:"220 mock ready\r\n" validate:"required"`
	// How data is written: utf8 (default), base64, hex or escaped.
	Encoding string `json:"encoding,omitempty" enums:"utf8,base64,hex,escaped" example:"escaped"`
} // @name Greeting

// Server is a listening server.
type Server struct {
	// Server id: use it in /servers/{id} and as server_id in GET /sockets.
	ID string `json:"id" example:"srv-1"`
	// The bound host:port.
	Address string `json:"address" example:"127.0.0.1:9988"`
	// listening, or failed when the accept loop died (see error).
	State string `json:"state" enums:"listening,failed" example:"listening"`
	// Why the accept loop died; only when state is failed.
	Error string `json:"error,omitempty" example:"accept tcp 127.0.0.1:9988: accept4: too many open files"`
	// When it started listening (RFC 3339, UTC).
	CreatedAt time.Time `json:"created_at" format:"date-time" example:"2026-11-29T08:00:00.123456789Z"`
	// Ids of the sockets it accepted that are still known.
	Sockets []string `json:"sockets" example:"sock-1,sock-2"`
	// Connections accepted in all.
	Accepted int64 `json:"accepted" example:"2"`
	// Connections closed at once because a limit (--max-sockets, --max-buffer-total) was reached.
	Rejected int64 `json:"rejected" example:"0"`
	// Receive buffer of each socket it accepts, in bytes.
	BufferBytes int `json:"buffer_bytes" example:"4194304"`
	// What its sockets do when their buffer is full.
	Overflow string `json:"overflow" enums:"block,drop_oldest" example:"block"`
	// How its sockets cut what they receive into messages.
	Framing Framing `json:"framing"`
	// Which messages its sockets store; absent: all.
	Retain string `json:"retain,omitempty" enums:"unmatched,none" example:"none"`
	// Bytes sent to every accepted connection at once, as the request wrote them; absent: none.
	Greeting *Greeting `json:"greeting,omitempty"`
	ConnInfo
} // @name Server

// ServerList is the body of GET /servers.
type ServerList struct {
	// Every server, oldest first.
	Servers []Server `json:"servers"`
} // @name ServerList

// ClientCreate is the body of POST /clients.
type ClientCreate struct {
	// Host to connect to: an IP or a name.
	Host string `json:"host" example:"127.0.0.1" validate:"required"`
	// Port to connect to.
	Port *int `json:"port" example:"9988" minimum:"1" maximum:"65535" validate:"required"`
	// Connect timeout in milliseconds; 0 or absent: --connect-timeout (5 s by default).
	TimeoutMS int `json:"timeout_ms,omitempty" example:"5000" minimum:"0"`
	// Receive buffer in bytes; 0 or absent: --buffer-bytes.
	BufferBytes int `json:"buffer_bytes,omitempty" example:"4194304" minimum:"0"`
	// What the socket does when its buffer is full.
	Overflow string `json:"overflow,omitempty" enums:"block,drop_oldest" example:"block"`
	// How the socket cuts what it receives into messages; absent: raw.
	Framing *Framing `json:"framing,omitempty"`
	// Which messages the socket stores for reading: all (default), unmatched, none (see POST /servers).
	Retain string `json:"retain,omitempty" enums:"all,unmatched,none" example:"all"`
	ConnOptions
} // @name ClientCreate

// Socket is one TCP connection.
type Socket struct {
	// Socket id: use it in /sockets/{id}.
	ID string `json:"id" example:"sock-1"`
	// accepted: a server accepted it (server_id is set); client: sockman connected it.
	Kind string `json:"kind" enums:"accepted,client" example:"accepted"`
	// The server that accepted it; only for kind accepted.
	ServerID string `json:"server_id,omitempty" example:"srv-1"`
	// Our end of the connection, host:port.
	LocalAddress string `json:"local_address" example:"127.0.0.1:9988"`
	// The peer's end of the connection, host:port.
	RemoteAddress string `json:"remote_address" example:"127.0.0.1:53412"`
	// connected, or closed (see close_reason); what it received stays readable after the close.
	State string `json:"state" enums:"connected,closed" example:"connected"`
	// Why it closed: peer closed, reset by peer, closed through the API, reset through the API, ...
	CloseReason string `json:"close_reason,omitempty" example:"peer closed"`
	// When it connected (RFC 3339, UTC).
	CreatedAt time.Time `json:"created_at" format:"date-time" example:"2026-11-29T08:00:00.123456789Z"`
	// When it closed; only once state is closed.
	ClosedAt *time.Time `json:"closed_at,omitempty" format:"date-time" example:"2026-11-29T08:05:00.5Z"`
	// Bytes received from the peer in all.
	BytesReceived int64 `json:"bytes_received" example:"11"`
	// Bytes sent to the peer in all.
	BytesSent int64 `json:"bytes_sent" example:"0"`
	// Bytes received and not yet acknowledged.
	BufferedBytes int64 `json:"buffered_bytes" example:"11"`
	// Messages received and not yet acknowledged.
	BufferedMessages int64 `json:"buffered_messages" example:"1"`
	// Bytes dropped by overflow drop_oldest.
	DroppedBytes int64 `json:"dropped_bytes" example:"0"`
	// Its receive buffer, in bytes: the most it holds unacknowledged.
	BufferBytes int `json:"buffer_bytes" example:"4194304"`
	// What it does when its buffer is full: block stops reading (TCP slows the peer), drop_oldest drops and counts.
	Overflow string `json:"overflow" enums:"block,drop_oldest" example:"block"`
	// How it cuts what it receives into messages; sends are framed the same way unless ?frame=false.
	Framing Framing `json:"framing"`
	// Which messages it stores; absent: all.
	Retain string `json:"retain,omitempty" enums:"unmatched,none" example:"none"`
	SocketConn
} // @name Socket

// SocketList is the body of GET /sockets and GET /clients.
type SocketList struct {
	// The sockets, oldest first.
	Sockets []Socket `json:"sockets"`
} // @name SocketList

// SendRequest is the JSON body of POST /sockets/{id}/messages.
type SendRequest struct {
	// The bytes to send, written in the given encoding.
	Data string `json:"data" example:"hello\n" validate:"required"`
	// How data is written: utf8 (as is, default), base64, hex (pairs of digits; spaces, :, -, , or 0x between bytes) or escaped (text with \r \n \t \0 \\ \xNN).
	Encoding string `json:"encoding,omitempty" enums:"utf8,base64,hex,escaped" example:"utf8"`
} // @name SendRequest

// SendResult says how many bytes were written to the connection.
type SendResult struct {
	// Bytes written to the connection.
	Bytes int64 `json:"bytes" example:"6"`
} // @name SendResult

// BroadcastResult says how many sockets took the whole message, and the
// bytes written to all of them together.
type BroadcastResult struct {
	// Sockets that took the whole message.
	Sockets int `json:"sockets" example:"2"`
	// Bytes written to all the sockets together.
	Bytes int64 `json:"bytes" example:"12"`
} // @name BroadcastResult

// Message is one chunk received from the peer.
type Message struct {
	// Per socket, from 1, one more per message; a gap means messages were dropped.
	Seq        uint64    `json:"seq" example:"1"`
	ReceivedAt time.Time `json:"received_at" format:"date-time" example:"2026-11-29T08:00:01.5Z"`
	// Bytes in the message (before encoding).
	Size int `json:"size" example:"6"`
	// How data is written.
	Encoding string `json:"encoding" enums:"utf8,base64,hex" example:"utf8"`
	// The bytes received, written in encoding.
	Data string `json:"data" example:"hello\n"`
	// Only on a framed socket's last message: the frame was over max_frame, or the peer closed before it ended. It holds the bytes as they came (delimiter or header not removed); the socket's close_reason says which.
	Partial bool `json:"partial,omitempty" example:"false"`
} // @name Message

// Bytes returns the message's data decoded from its encoding. Unlike a send
// body, a message always names its encoding: an empty one is an error.
func (m Message) Bytes() ([]byte, error) {
	if m.Encoding == "" {
		return nil, fmt.Errorf("message %d names no encoding", m.Seq)
	}
	return decodeData(m.Data, m.Encoding)
}

// MessageList is the JSON answer of GET /sockets/{id}/messages.
type MessageList struct {
	// The socket read.
	SocketID string `json:"socket_id" example:"sock-1"`
	// The socket's state when the answer was made. closed with no messages means the stream ended and everything it held was read.
	State string `json:"state" enums:"connected,closed" example:"connected"`
	// Messages with seq > after, oldest first, within limit and max_bytes.
	Messages []Message `json:"messages"`
	// Seq of the last message returned (or the after given when none): pass it as after next time.
	Cursor uint64 `json:"cursor" example:"1"`
} // @name MessageList

// Health is the answer of GET /healthz.
type Health struct {
	// Always ok.
	Status string `json:"status" enums:"ok" example:"ok"`
} // @name Health

func serverOut(s sockets.ServerInfo) Server {
	out := Server{
		ID: s.ID, Address: s.Address, State: s.State, Error: s.Error, CreatedAt: s.CreatedAt,
		Sockets: s.Sockets, Accepted: s.Accepted, Rejected: s.Rejected,
		BufferBytes: s.BufferBytes, Overflow: string(s.Overflow), Framing: framingOut(s.Framing),
		ConnInfo: serverConn(s), Retain: retainOut(s.Retain),
	}
	if s.Greeting != nil {
		out.Greeting = &Greeting{Data: s.GreetingText, Encoding: s.GreetingEncoding}
	}
	return out
}

// retainOut shows a retain mode: the default, all, is left out.
func retainOut(r sockets.Retain) string {
	if r == sockets.RetainAll {
		return ""
	}
	return string(r)
}

func socketOut(s sockets.SocketInfo) Socket {
	out := Socket{
		ID: s.ID, Kind: string(s.Kind), ServerID: s.ServerID,
		LocalAddress: s.LocalAddress, RemoteAddress: s.RemoteAddress,
		State: s.State, CloseReason: s.CloseReason, CreatedAt: s.CreatedAt,
		BytesReceived: s.BytesReceived, BytesSent: s.BytesSent,
		BufferedBytes: s.BufferedBytes, BufferedMessages: s.BufferedMessages,
		DroppedBytes: s.DroppedBytes, BufferBytes: s.BufferBytes, Overflow: string(s.Overflow),
		Framing:    framingOut(s.Framing),
		SocketConn: socketConn(s),
		Retain:     retainOut(s.Retain),
	}
	if !s.ClosedAt.IsZero() {
		t := s.ClosedAt
		out.ClosedAt = &t
	}
	return out
}
