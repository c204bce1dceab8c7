package sockets

import "errors"

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
	// ErrClosed: the registry is shutting down.
	ErrClosed = errors.New("registry is closed")
)
