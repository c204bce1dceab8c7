package sockets

import (
	"errors"
	"fmt"
	"time"

	"github.com/sockman/sockman/internal/quote"
)

// Sentinel errors returned by the engine. Callers match them with errors.Is;
// each is wrapped with its cause and a message a person can act on, so
// err.Error() is fit to show to the user.
var (
	// ErrServerNotFound: no server has that id (it never existed or was deleted).
	ErrServerNotFound = errors.New("server not found")
	// ErrSocketNotFound: no socket has that id (it never existed, was deleted,
	// or its closed-socket retention ran out).
	ErrSocketNotFound = errors.New("socket not found")
	// ErrInvalid: an argument is out of range or malformed.
	ErrInvalid = errors.New("invalid argument")
	// ErrAddrInUse: the address asked for is already bound.
	ErrAddrInUse = errors.New("address already in use")
	// ErrSocketClosed: the operation needs a connected socket.
	ErrSocketClosed = errors.New("socket is closed")
	// ErrForbidden: the connect or listen policy does not allow the address.
	ErrForbidden = errors.New("forbidden by policy")
	// ErrConnectFailed: the peer refused, was unreachable, or its name did not resolve.
	ErrConnectFailed = errors.New("connect failed")
	// ErrConnectTimeout: the connect did not complete within its timeout.
	ErrConnectTimeout = errors.New("connect timed out")
	// ErrWriteTimeout: the peer did not take the data within the write timeout.
	ErrWriteTimeout = errors.New("write timed out")
	// ErrLimit: a configured limit (sockets, servers, buffer memory) is reached.
	ErrLimit = errors.New("limit reached")
	// ErrWriteClosed: the socket was shut down for writing (Socket.Shutdown).
	ErrWriteClosed = errors.New("socket is closed for writing")
	// ErrClosed: the registry is shutting down.
	ErrClosed = errors.New("registry is closed")
	// ErrSocketBusy: the socket has a consumer attached (a stream), and
	// the operation would be a second one.
	ErrSocketBusy = errors.New("socket is busy")
)

// The engine's errors carry their facts as fields: which limit, its value,
// which id, which address. Their Error text is plain and names no flag,
// route or request field: the engine does not know how it is called. The
// caller (package api) renders the words a user reads from the fields.

// Limit names a configured bound of the registry (see Config).
type Limit string

// Limits, as LimitError.Limit names them.
const (
	LimitSockets     Limit = "sockets"      // Config.MaxSockets: connected sockets and dials in progress
	LimitServers     Limit = "servers"      // Config.MaxServers: listening servers
	LimitBufferTotal Limit = "buffer total" // Config.MaxBufferTotal: bytes held by every buffer
	LimitFiles       Limit = "open files"   // the process's open files limit (RLIMIT_NOFILE)
	LimitSubscribers Limit = "subscribers"  // Config.MaxSubscribers: event subscriptions
)

// LimitError says that a configured limit is reached. It matches ErrLimit.
type LimitError struct {
	Limit Limit
	Value int64 // the limit's value; 0 for LimitFiles
	Cause error // the system error for LimitFiles; nil otherwise
}

func (e *LimitError) Error() string {
	switch e.Limit {
	case LimitSockets:
		return fmt.Sprintf("%v: %d sockets are open, the most allowed", ErrLimit, e.Value)
	case LimitServers:
		return fmt.Sprintf("%v: %d servers are listening, the most allowed", ErrLimit, e.Value)
	case LimitBufferTotal:
		return fmt.Sprintf("%v: sockets hold %d bytes, the most allowed", ErrLimit, e.Value)
	case LimitSubscribers:
		return fmt.Sprintf("%v: %d event subscriptions are open, the most allowed", ErrLimit, e.Value)
	case LimitFiles:
		return fmt.Sprintf("%v: no file descriptor is left for a new socket (%v)", ErrLimit, e.Cause)
	}
	return fmt.Sprintf("%v: %s limit %d", ErrLimit, e.Limit, e.Value)
}

func (e *LimitError) Unwrap() []error {
	if e.Cause != nil {
		return []error{ErrLimit, e.Cause}
	}
	return []error{ErrLimit}
}

// NotFoundError says that no server or socket has an id. It matches
// ErrServerNotFound or ErrSocketNotFound.
type NotFoundError struct {
	Server bool   // a server's id; else a socket's
	ID     string // the id asked for
	// Closing: the server exists but is being deleted (a connection it
	// accepted at that moment is refused).
	Closing bool
	// Retention is how long closed sockets stay known (sockets only; 0 when
	// it does not matter to the lookup).
	Retention time.Duration
}

func (e *NotFoundError) Error() string {
	what := "socket"
	if e.Server {
		what = "server"
	}
	if e.Closing {
		return fmt.Sprintf("%s %s is closing", what, e.ID)
	}
	return fmt.Sprintf("no %s has id %s", what, quote.String(e.ID))
}

func (e *NotFoundError) Unwrap() error {
	if e.Server {
		return ErrServerNotFound
	}
	return ErrSocketNotFound
}

// Arg names an argument of a listen or dial (ListenOptions, DialOptions).
type Arg string

// Args, as RangeError.Arg names them.
const (
	ArgPort        Arg = "port"
	ArgBufferBytes Arg = "buffer bytes" // ListenOptions.BufferBytes, DialOptions.BufferBytes
	ArgTimeout     Arg = "timeout"      // DialOptions.Timeout
	ArgEventID     Arg = "event id"     // SubscribeOptions.After: at most the last event's id
	ArgKeepAlive   Arg = "keepalive"    // RecvOptions.KeepAlive, in nanoseconds
	ArgName        Arg = "name bytes"   // RecvOptions.Name and filters by name: its length
)

// RangeError says that an argument is out of its range. It matches
// ErrInvalid. Min and Max are in the argument's unit (bytes, a port, or
// nanoseconds for ArgTimeout); Bound names the limit of the configuration
// that sets Max, "" when Max is fixed.
type RangeError struct {
	Arg      Arg
	Value    int64
	Min, Max int64
	Bound    string // a Config field: "MaxBufferBytes", "MaxDialTimeout"
}

func (e *RangeError) Error() string {
	if e.Arg == ArgKeepAlive {
		return fmt.Sprintf("%v: keepalive %v is out of range %v to %v in whole seconds, or 0 for off", ErrInvalid,
			time.Duration(e.Value), time.Duration(e.Min), time.Duration(e.Max))
	}
	if e.Arg == ArgTimeout {
		return fmt.Sprintf("%v: timeout %v is out of range %v to %v", ErrInvalid,
			time.Duration(e.Value), time.Duration(e.Min), time.Duration(e.Max))
	}
	return fmt.Sprintf("%v: %s %d is out of range %d to %d", ErrInvalid, e.Arg, e.Value, e.Min, e.Max)
}

func (e *RangeError) Unwrap() error { return ErrInvalid }

// DialTimeoutError says that a connect did not complete within its
// timeout. It matches ErrConnectTimeout.
type DialTimeoutError struct {
	Addr    string // host:port dialled
	Timeout time.Duration
}

func (e *DialTimeoutError) Error() string {
	return fmt.Sprintf("%v: %s did not answer within %v", ErrConnectTimeout, e.Addr, e.Timeout)
}

func (e *DialTimeoutError) Unwrap() error { return ErrConnectTimeout }

// BusyError says that a socket already has its one consumer (see
// Socket.Attach). It matches ErrSocketBusy.
type BusyError struct {
	ID string // the socket's id
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("%v: socket %s has a consumer attached, and takes one at a time", ErrSocketBusy, e.ID)
}

func (e *BusyError) Unwrap() error { return ErrSocketBusy }
