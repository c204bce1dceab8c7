package api

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/internal/quote"
	"github.com/sockman/sockman/sockets"
)

// createServer listens on a TCP address.
//
//	@Summary		Listen on a TCP port
//	@Description	Binds host:port (port 0: an ephemeral port) and starts accepting. Every accepted connection becomes a socket of kind accepted at once. The answer has the real bound address. Address in use is 409 at once.
//	@Description	With framing, each message of its sockets is one whole frame (a line, up to a delimiter, a fixed size, or a length-prefixed frame) however TCP cut the stream: for example {"port":0,"framing":{"type":"lines"}} for a line protocol, or {"port":0,"framing":{"type":"length_prefix","header_bytes":2}} for a 2-byte big-endian length header. A frame over max_frame, or one the peer's close cuts short, is stored with "partial":true and the socket closes with a reason that says so. Sends to its sockets are framed the same way unless ?frame=false.
//	@Tags			servers
//	@ID				createServer
//	@Accept			json
//	@Produce		json
//	@Param			server	body		ServerCreate	true	"What to listen on"
//	@Success		201		{object}	Server
//	@Header			201		{string}	Location	"/servers/{id}"
//	@Failure		400		{object}	Problem	"Malformed body, bad host, port, buffer or framing (a delimiter's encoding says at which byte it went wrong); a query parameter (this operation takes none)"
//	@Failure		401		{object}	Problem	"Token missing or wrong"
//	@Failure		403		{object}	Problem	"Denied by the listen policy; Host not allowed (DNS rebinding guard); a call from a page of another site"
//	@Failure		409		{object}	Problem	"Address already in use"
//	@Failure		413		{object}	Problem	"Body too large"
//	@Failure		415		{object}	Problem	"Not JSON, or compressed (a Content-Encoding other than identity)"
//	@Failure		503		{object}	Problem	"--max-servers reached, or the service is shutting down"
//	@Security		BearerAuth
//	@Router			/servers [post]
func (h *handlers) createServer(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	var req ServerCreate
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Port == nil {
		return badRequest("port is required (0 asks for an ephemeral port)")
	}
	framing, err := req.Framing.engine()
	if err != nil {
		return err
	}
	recv := sockets.RecvOptions{BufferBytes: req.BufferBytes, Overflow: req.Overflow, Framing: framing, Retain: req.Retain}
	if err := req.apply(&recv); err != nil {
		return err
	}
	lo := sockets.ListenOptions{Host: req.Host, Port: *req.Port, Recv: recv}
	if g := req.Greeting; g != nil {
		if lo.Greeting, err = decodeField("greeting data", g.Data, g.Encoding); err != nil {
			return err
		}
		lo.GreetingText, lo.GreetingEncoding = g.Data, g.Encoding
	}
	srv, err := h.reg.Listen(c.Request().Context(), lo)
	if err != nil {
		return err
	}
	info := srv.Info()
	c.Response().Header().Set(echo.HeaderLocation, "/servers/"+info.ID)
	return c.JSON(http.StatusCreated, serverOut(info))
}

// listServers lists every server.
//
//	@Summary		List servers
//	@Description	Every listening (or failed) server, oldest first.
//	@Tags			servers
//	@ID				listServers
//	@Produce		json
//	@Param			name	query		string	false	"Only servers with this name (exact)"
//	@Success		200		{object}	ServerList
//	@Failure		400		{object}	Problem	"A name that is empty, repeated or too long (--max-name-bytes), an unknown query parameter, or a query string that does not parse"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Security		BearerAuth
//	@Router			/servers [get]
func (h *handlers) listServers(c echo.Context) error {
	q, err := query(c, "name")
	if err != nil {
		return err
	}
	name, err := h.queryName(q)
	if err != nil {
		return err
	}
	list := h.reg.Servers()
	out := ServerList{Servers: make([]Server, 0, len(list))}
	for _, s := range list {
		if info := s.Info(); name == "" || info.Name == name {
			out.Servers = append(out.Servers, serverOut(info))
		}
	}
	return c.JSON(http.StatusOK, out)
}

// getServer shows one server.
//
//	@Summary		Get a server
//	@Description	The server with its bound address, state and the ids of the sockets it accepted.
//	@Tags			servers
//	@ID				getServer
//	@Produce		json
//	@Param			id	path		string	true	"Server id"	example(srv-1)
//	@Success		200	{object}	Server
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none), or a query string that does not parse"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such server"
//	@Security		BearerAuth
//	@Router			/servers/{id} [get]
func (h *handlers) getServer(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	srv, err := h.reg.Server(c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, serverOut(srv.Info()))
}

// deleteServer stops listening.
//
//	@Summary		Stop listening
//	@Description	Closes the listener and forgets the server. Its accepted sockets stay open unless close_sockets=true (then they close and stay readable until deleted).
//	@Tags			servers
//	@ID				deleteServer
//	@Param			id				path	string	true	"Server id"	example(srv-1)
//	@Param			close_sockets	query	bool	false	"Close the sockets it accepted too"	default(false)
//	@Success		204
//	@Failure		400	{object}	Problem	"close_sockets is not true or false, is empty or is repeated, or an unknown query parameter"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such server"
//	@Security		BearerAuth
//	@Router			/servers/{id} [delete]
func (h *handlers) deleteServer(c echo.Context) error {
	q, err := query(c, "close_sockets")
	if err != nil {
		return err
	}
	closeSockets := false
	if v, ok, err := queryOne(q, "close_sockets", "true or false"); err != nil {
		return err
	} else if ok {
		if closeSockets, err = strconv.ParseBool(v); err != nil {
			return badRequest("close_sockets=%s must be true or false", quote.String(v))
		}
	}
	if err := h.reg.DeleteServer(c.Param("id"), closeSockets); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// broadcast sends one message to every connected socket of a server.
//
//	@Summary		Send to every socket of a server
//	@Description	Sends the same bytes to every connected socket the server accepted, all at once. The body is JSON {"data","encoding"} or raw bytes (application/octet-stream, text/plain). The answer counts the sockets that took the whole message and the bytes written to all of them.
//	@Tags			servers
//	@ID				broadcast
//	@Accept			json
//	@Accept			octet-stream
//	@Accept			plain
//	@Produce		json
//	@Param			id		path		string		true	"Server id"	example(srv-1)
//	@Param			frame	query		boolean		false	"When the server's sockets are framed, frame the message as their framing says (default true); false sends the bytes as they are"	default(true)
//	@Param			message	body		SendRequest	true	"What to send"
//	@Success		200		{object}	BroadcastResult
//	@Failure		400		{object}	Problem	"Malformed body or encoding (the detail says at which byte); a fixed-size frame of another size; an unknown query parameter, or frame not true or false"
//	@Failure		401		{object}	Problem	"Token missing or wrong"
//	@Failure		403		{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404		{object}	Problem	"No such server"
//	@Failure		413		{object}	Problem	"Body too large"
//	@Failure		415		{object}	Problem	"Unsupported Content-Type, or a compressed body (a Content-Encoding other than identity)"
//	@Failure		503		{object}	Problem	"The service began shutting down while the broadcast was in flight (the detail says how far it got)"
//	@Security		BearerAuth
//	@Router			/servers/{id}/messages [post]
func (h *handlers) broadcast(c echo.Context) error {
	frame, err := queryFrame(c)
	if err != nil {
		return err
	}
	data, err := readPayload(c)
	if err != nil {
		return err
	}
	if frame {
		srv, err := h.reg.Server(c.Param("id"))
		if err != nil {
			return err
		}
		if data, err = srv.FrameOf(data); err != nil {
			return err
		}
	}
	n, bytes, err := h.reg.Broadcast(c.Request().Context(), c.Param("id"), data)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, BroadcastResult{Sockets: n, Bytes: bytes})
}
