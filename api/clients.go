package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/sockets"
)

// createClient connects to a TCP address.
//
//	@Summary		Connect to a TCP address
//	@Description	Connects to host:port and answers once connected (201) or failed: 502 refused, unreachable or name not resolved; 504 timed out. The new socket starts reading at once. framing works as on POST /servers: each message is then one whole frame, and sends are framed unless ?frame=false.
//	@Tags			clients
//	@ID				createClient
//	@Accept			json
//	@Produce		json
//	@Param			client	body		ClientCreate	true	"Where to connect"
//	@Success		201		{object}	Socket
//	@Header			201		{string}	Location	"/sockets/{id}"
//	@Failure		400		{object}	Problem	"Malformed body, bad host, port, timeout, buffer or framing; a query parameter (this operation takes none)"
//	@Failure		401		{object}	Problem	"Token missing or wrong"
//	@Failure		403		{object}	Problem	"Denied by the connect policy; Host not allowed (DNS rebinding guard); a call from a page of another site"
//	@Failure		413		{object}	Problem	"Body too large"
//	@Failure		415		{object}	Problem	"Not JSON, or compressed (a Content-Encoding other than identity)"
//	@Failure		502		{object}	Problem	"Refused, unreachable or not resolved"
//	@Failure		503		{object}	Problem	"--max-sockets or --max-buffer-total reached, or the service is shutting down (also when it began while the connect was under way)"
//	@Failure		504		{object}	Problem	"Connect timed out"
//	@Security		BearerAuth
//	@Router			/clients [post]
func (h *handlers) createClient(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	var req ClientCreate
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Port == nil {
		return badRequest("port is required")
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if req.TimeoutMS < 0 || timeout/time.Millisecond != time.Duration(req.TimeoutMS) { // negative, or so large it overflowed
		return badRequest("timeout_ms %d must be a positive number of milliseconds, such as 5000", req.TimeoutMS)
	}
	framing, err := req.Framing.engine()
	if err != nil {
		return err
	}
	recv := sockets.RecvOptions{BufferBytes: req.BufferBytes, Overflow: req.Overflow, Framing: framing, Retain: req.Retain}
	if err := req.apply(&recv); err != nil {
		return err
	}
	s, err := h.reg.Dial(c.Request().Context(), sockets.DialOptions{Host: req.Host, Port: *req.Port, Timeout: timeout, Recv: recv})
	if err != nil {
		return err
	}
	info := s.Info()
	c.Response().Header().Set(echo.HeaderLocation, "/sockets/"+info.ID)
	return c.JSON(http.StatusCreated, socketOut(info))
}

// listClients lists the client sockets.
//
//	@Summary		List client sockets
//	@Description	Every socket sockman connected (kind client), open or closed, oldest first.
//	@Tags			clients
//	@ID				listClients
//	@Produce		json
//	@Param			name	query		string	false	"Only clients with this name (exact)"
//	@Success		200		{object}	SocketList
//	@Failure		400		{object}	Problem	"A name that is empty, repeated or too long (--max-name-bytes), an unknown query parameter, or a query string that does not parse"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Security		BearerAuth
//	@Router			/clients [get]
func (h *handlers) listClients(c echo.Context) error {
	q, err := query(c, "name")
	if err != nil {
		return err
	}
	name, err := h.queryName(q)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, socketList(h.reg.Sockets(sockets.SocketFilter{Kind: sockets.KindClient, Name: name})))
}
