package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/internal/quote"
	"github.com/sockman/sockman/sockets"
)

// Connection control: the options of POST /servers and POST /clients that
// say how a connection behaves, what the answers show of them, and the
// routes that half-close, close and reset a socket.

// ConnOptions are the connection options of POST /servers (for each
// accepted socket) and POST /clients.
type ConnOptions struct {
	// A label for lists and filters (?name=): text of at most --max-name-bytes bytes, no control characters. A server's accepted sockets carry its name.
	Name string `json:"name,omitempty" example:"modem"`
	// A peer's FIN does not close the socket: it shows read_closed true and can still send (POST /sockets/{id}/shutdown sends ours). Default false: the peer's FIN closes it.
	HalfClose bool `json:"half_close,omitempty" example:"false"`
	// TCP_NODELAY: small sends go out at once instead of waiting to be joined (Nagle's algorithm off). Default true.
	NoDelay *bool `json:"no_delay,omitempty" example:"true"`
	// TCP keepalive: idle time before the first probe and between probes, a duration in whole seconds from 1s to 9h6m7s such as "15s" or "2m"; "0" turns keepalive off. Default 30s.
	KeepAlive *string `json:"keepalive,omitempty" example:"30s"`
}

// apply checks o and sets it in r.
func (o ConnOptions) apply(r *sockets.RecvOptions) error {
	r.Name, r.HalfClose, r.NoDelay = o.Name, o.HalfClose, o.NoDelay
	if o.KeepAlive != nil {
		d, err := time.ParseDuration(*o.KeepAlive)
		if *o.KeepAlive == "0" {
			d, err = 0, nil
		}
		if err != nil {
			return badRequest("keepalive %s is not a duration: give one such as \"15s\" or \"2m\", or \"0\" for off", quote.String(*o.KeepAlive))
		}
		r.KeepAlive = &d
	}
	return nil
}

// ConnInfo is what a server or a socket shows of its connection options.
type ConnInfo struct {
	// Its label, when it has one.
	Name string `json:"name,omitempty" example:"modem"`
	// A peer's FIN leaves the socket open for sends.
	HalfClose bool `json:"half_close" example:"false"`
	// TCP_NODELAY is set.
	NoDelay bool `json:"no_delay" example:"true"`
	// TCP keepalive idle time and probe interval, or "0" when off.
	KeepAlive string `json:"keepalive" example:"30s"`
}

func connInfo(name string, halfClose, noDelay bool, keepAlive time.Duration) ConnInfo {
	ka := "0"
	if keepAlive > 0 {
		ka = keepAlive.String()
	}
	return ConnInfo{Name: name, HalfClose: halfClose, NoDelay: noDelay, KeepAlive: ka}
}

// SocketConn is what a socket shows of its connection's two directions and
// of its other end.
type SocketConn struct {
	ConnInfo
	// The peer sent its FIN and the socket, with half_close, stays open for sends; what came before stays readable.
	ReadClosed bool `json:"read_closed" example:"false"`
	// POST /sockets/{id}/shutdown sent our FIN: the socket reads on, sends are 409.
	WriteClosed bool `json:"write_closed" example:"false"`
	// When the other end of the connection is a socket of this sockman too (a client connected to one of its servers), that socket's id.
	PeerSocketID string `json:"peer_socket_id,omitempty" example:"sock-2"`
}

func serverConn(s sockets.ServerInfo) ConnInfo {
	return connInfo(s.Name, s.HalfClose, s.NoDelay, s.KeepAlive)
}

func socketConn(s sockets.SocketInfo) SocketConn {
	return SocketConn{
		ConnInfo:   connInfo(s.Name, s.HalfClose, s.NoDelay, s.KeepAlive),
		ReadClosed: s.ReadClosed, WriteClosed: s.WriteClosed, PeerSocketID: s.PeerSocketID,
	}
}

// queryName returns the ?name= filter of q, checked as a name is.
func (h *handlers) queryName(q url.Values) (string, error) {
	name, _, err := queryOne(q, "name", "a name label")
	if err != nil {
		return "", err
	}
	return name, h.reg.CheckName(name)
}

// queryReset returns the ?reset= of q: false when absent.
func queryReset(q url.Values) (bool, error) {
	v, ok, err := queryOne(q, "reset", "true or false")
	if err != nil || !ok {
		return false, err
	}
	reset, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("reset=%s must be true or false", quote.String(v))
	}
	return reset, nil
}

// shutdownSocket sends our FIN.
//
//	@Summary		Half-close: send our FIN
//	@Description	Shuts the socket down for writing (TCP half-close): the peer reads the end of the stream, and the socket reads on until the peer closes. Later sends are 409 socket-closed-for-writing. The answer shows write_closed true. A send still under way is finished first. Shutting down twice changes nothing. A half_close socket whose peer's FIN came already is then closed both ways.
//	@Tags			sockets
//	@ID				shutdownSocket
//	@Produce		json
//	@Param			id	path		string	true	"Socket id"	example(sock-1)
//	@Success		200	{object}	Socket
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none), or a query string that does not parse"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such socket"
//	@Failure		409	{object}	Problem	"The socket is closed"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/shutdown [post]
func (h *handlers) shutdownSocket(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	s, err := h.reg.Socket(c.Param("id"))
	if err != nil {
		return err
	}
	if err := s.Shutdown(); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, socketOut(s.Info()))
}

// closeSocket closes a socket and keeps it.
//
//	@Summary		Close a socket, keep what it holds
//	@Description	Closes the connection (a FIN, or with reset=true an RST) but keeps the socket: what it received stays readable until DELETE /sockets/{id} or --closed-retention after the close. The answer is the closed socket; its close_reason is "closed through the API", or "reset through the API". A socket already closed stays as it is, with its first reason.
//	@Tags			sockets
//	@ID				closeSocket
//	@Produce		json
//	@Param			id		path		string	true	"Socket id"	example(sock-1)
//	@Param			reset	query		bool	false	"Abort with an RST instead of a FIN: the peer's next read fails with connection reset, and data not yet sent is thrown away"	default(false)
//	@Success		200		{object}	Socket
//	@Failure		400		{object}	Problem	"reset is not true or false, is empty or is repeated, or an unknown query parameter"
//	@Failure		401		{object}	Problem	"Token missing or wrong"
//	@Failure		403		{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404		{object}	Problem	"No such socket"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/close [post]
func (h *handlers) closeSocket(c echo.Context) error {
	q, err := query(c, "reset")
	if err != nil {
		return err
	}
	reset, err := queryReset(q)
	if err != nil {
		return err
	}
	s, err := h.reg.CloseSocket(c.Param("id"), sockets.CloseOptions{Reset: reset})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, socketOut(s.Info()))
}
