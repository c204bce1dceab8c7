package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/internal/quote"
	"github.com/sockman/sockman/sockets"
)

// listSockets lists sockets.
//
//	@Summary		List sockets
//	@Description	Every socket, accepted and client, open and closed (closed ones until deleted or their retention ends), oldest first.
//	@Tags			sockets
//	@ID				listSockets
//	@Produce		json
//	@Param			kind		query		string	false	"Only this kind"	Enums(accepted, client)
//	@Param			server_id	query		string	false	"Only sockets this server accepted"	example(srv-1)
//	@Param			state		query		string	false	"Only this state"	Enums(connected, closed)
//	@Param			name		query		string	false	"Only sockets with this name (exact; accepted sockets have their server's)"
//	@Success		200			{object}	SocketList
//	@Failure		400			{object}	Problem	"Unknown kind or state, a filter that is empty or repeated, a name too long (--max-name-bytes), or an unknown query parameter"
//	@Failure		401			{object}	Problem	"Token missing or wrong"
//	@Failure		403			{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Security		BearerAuth
//	@Router			/sockets [get]
func (h *handlers) listSockets(c echo.Context) error {
	q, err := query(c, "kind", "server_id", "state", "name")
	if err != nil {
		return err
	}
	kind, _, err := queryOne(q, "kind", "accepted or client")
	if err != nil {
		return err
	}
	serverID, _, err := queryOne(q, "server_id", "a server id such as srv-1")
	if err != nil {
		return err
	}
	state, _, err := queryOne(q, "state", "connected or closed")
	if err != nil {
		return err
	}
	name, err := h.queryName(q)
	if err != nil {
		return err
	}
	f := sockets.SocketFilter{Kind: sockets.Kind(kind), ServerID: serverID, State: state, Name: name}
	switch f.Kind {
	case "", sockets.KindAccepted, sockets.KindClient:
	default:
		return badRequest("kind=%s must be accepted or client", quote.String(string(f.Kind)))
	}
	switch f.State {
	case "", sockets.StateConnected, sockets.StateClosed:
	default:
		return badRequest("state=%s must be connected or closed", quote.String(f.State))
	}
	return c.JSON(http.StatusOK, socketList(h.reg.Sockets(f)))
}

func socketList(list []*sockets.Socket) SocketList {
	out := SocketList{Sockets: make([]Socket, 0, len(list))}
	for _, s := range list {
		out.Sockets = append(out.Sockets, socketOut(s.Info()))
	}
	return out
}

// getSocket shows one socket.
//
//	@Summary		Get a socket
//	@Description	Addresses, state, close reason and counters of one socket.
//	@Tags			sockets
//	@ID				getSocket
//	@Produce		json
//	@Param			id	path		string	true	"Socket id"	example(sock-1)
//	@Success		200	{object}	Socket
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none), or a query string that does not parse"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such socket"
//	@Security		BearerAuth
//	@Router			/sockets/{id} [get]
func (h *handlers) getSocket(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	s, err := h.reg.Socket(c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, socketOut(s.Info()))
}

// deleteSocket closes and forgets a socket.
//
//	@Summary		Close and forget a socket
//	@Description	Closes the connection if it is open (a FIN, or with reset=true an RST), then forgets the socket and what it buffered. A long poll on it returns at once. To close and still read what it holds, use POST /sockets/{id}/close.
//	@Tags			sockets
//	@ID				deleteSocket
//	@Param			id		path	string	true	"Socket id"	example(sock-1)
//	@Param			reset	query	bool	false	"Abort with an RST instead of a FIN"	default(false)
//	@Success		204
//	@Failure		400	{object}	Problem	"reset is not true or false, is empty or is repeated, or an unknown query parameter"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such socket"
//	@Security		BearerAuth
//	@Router			/sockets/{id} [delete]
func (h *handlers) deleteSocket(c echo.Context) error {
	q, err := query(c, "reset")
	if err != nil {
		return err
	}
	reset, err := queryReset(q)
	if err != nil {
		return err
	}
	if err := h.reg.ForgetSocket(c.Param("id"), sockets.CloseOptions{Reset: reset}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
