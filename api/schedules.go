package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/sockets"
)

// Schedules: the routes under /servers/{id}/schedules and
// /sockets/{id}/schedules.

// ScheduleCreate is the body of POST .../schedules.
type ScheduleCreate struct {
	// The bytes to send, written in encoding.
	Data string `json:"data" example:"PING\r\n" validate:"required"`
	// How data is written: utf8 (default), base64, hex or escaped.
	Encoding string `json:"encoding,omitempty" enums:"utf8,base64,hex,escaped" example:"utf8"`
	// Milliseconds between sends, at least --min-schedule-interval; the first send is one interval after the schedule is made.
	IntervalMS int64 `json:"interval_ms" example:"1000" minimum:"1" validate:"required"`
	// Send this many times, then stop; 0 or absent: until the schedule is deleted.
	Count int64 `json:"count,omitempty" example:"0" minimum:"0"`
} // @name ScheduleCreate

// Schedule is a schedule of sends.
type Schedule struct {
	// Schedule id, within its socket or server: use it in .../schedules/{schedule_id}.
	ID         string `json:"id" example:"sched-1"`
	Data       string `json:"data" example:"PING\r\n"`
	Encoding   string `json:"encoding,omitempty" enums:"utf8,base64,hex,escaped" example:"utf8"`
	IntervalMS int64  `json:"interval_ms" example:"1000"`
	Count      int64  `json:"count,omitempty" example:"0"`
	// Intervals at which it sent (for a server's, to every socket connected then).
	Sent int64 `json:"sent" example:"0"`
	// It sent count times and stopped.
	Done bool `json:"done" example:"false"`
} // @name Schedule

// ScheduleList is the body of GET .../schedules.
type ScheduleList struct {
	// The schedules, oldest first.
	Schedules []Schedule `json:"schedules"`
} // @name ScheduleList

func scheduleOut(s sockets.ScheduleInfo) Schedule {
	return Schedule{ID: s.ID, Data: s.DataText, Encoding: s.Encoding, IntervalMS: s.Interval.Milliseconds(), Count: s.Count, Sent: s.Sent, Done: s.Done}
}

// addSchedule adds a schedule to ss and answers with it.
func addSchedule(c echo.Context, ss *sockets.Schedules, base string) error {
	var req struct {
		Data       *string `json:"data"`
		Encoding   string  `json:"encoding"`
		IntervalMS *int64  `json:"interval_ms"`
		Count      int64   `json:"count"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Data == nil || req.IntervalMS == nil {
		return badRequest("data and interval_ms are required: the bytes to send, and the milliseconds between sends")
	}
	data, err := decodeData(*req.Data, req.Encoding)
	if err != nil {
		return err
	}
	const maxMS = int64(1<<63-1) / int64(time.Millisecond)
	ms := min(max(*req.IntervalMS, -1), maxMS)
	info, err := ss.Add(sockets.ScheduleSpec{Data: data, DataText: *req.Data, Encoding: req.Encoding,
		Interval: time.Duration(ms) * time.Millisecond, Count: req.Count})
	if err != nil {
		return err
	}
	c.Response().Header().Set(echo.HeaderLocation, base+"/schedules/"+info.ID)
	return c.JSON(http.StatusCreated, scheduleOut(info))
}

func scheduleList(list []sockets.ScheduleInfo) ScheduleList {
	out := ScheduleList{Schedules: make([]Schedule, 0, len(list))}
	for _, s := range list {
		out.Schedules = append(out.Schedules, scheduleOut(s))
	}
	return out
}

func (h *handlers) serverSchedules(c echo.Context) (*sockets.Schedules, error) {
	srv, err := h.reg.Server(c.Param("id"))
	if err != nil {
		return nil, err
	}
	return srv.Schedules(), nil
}

func (h *handlers) socketSchedules(c echo.Context) (*sockets.Schedules, error) {
	s, err := h.reg.Socket(c.Param("id"))
	if err != nil {
		return nil, err
	}
	return s.Schedules(), nil
}

// createServerSchedule sends to every socket of a server at an interval.
//
//	@Summary		Send to a server's sockets at an interval
//	@Description	Every interval_ms, sends data to each socket of the server connected at that moment (a heartbeat, a periodic report), count times or until deleted. A socket whose last send is still under way (its peer reads nothing) is passed over that time, so that it holds up no other. Each send is a socket.sent event with source schedule. Deleting the server stops its schedules.
//	@Tags			schedules
//	@ID				createServerSchedule
//	@Accept			json
//	@Produce		json
//	@Param			id			path		string			true	"Server id"	example(srv-1)
//	@Param			schedule	body		ScheduleCreate	true	"What to send, and how often"
//	@Success		201			{object}	Schedule
//	@Header			201			{string}	Location	"/servers/{id}/schedules/{schedule_id}"
//	@Failure		400			{object}	Problem	"interval_ms below --min-schedule-interval, data empty or over --max-reply-bytes, a bad encoding or count"
//	@Failure		401			{object}	Problem	"Token missing or wrong"
//	@Failure		403			{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404			{object}	Problem	"No such server"
//	@Failure		413			{object}	Problem	"Body too large"
//	@Failure		415			{object}	Problem	"Not JSON"
//	@Failure		503			{object}	Problem	"The server has --max-schedules schedules"
//	@Security		BearerAuth
//	@Router			/servers/{id}/schedules [post]
func (h *handlers) createServerSchedule(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	ss, err := h.serverSchedules(c)
	if err != nil {
		return err
	}
	return addSchedule(c, ss, "/servers/"+c.Param("id"))
}

// listServerSchedules lists a server's schedules.
//
//	@Summary		List a server's schedules
//	@Description	The server's schedules, oldest first, with how many times each sent.
//	@Tags			schedules
//	@ID				listServerSchedules
//	@Produce		json
//	@Param			id	path		string	true	"Server id"	example(srv-1)
//	@Success		200	{object}	ScheduleList
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none)"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such server"
//	@Security		BearerAuth
//	@Router			/servers/{id}/schedules [get]
func (h *handlers) listServerSchedules(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	ss, err := h.serverSchedules(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, scheduleList(ss.List()))
}

// deleteServerSchedule stops a server's schedule.
//
//	@Summary		Stop a server's schedule
//	@Description	Stops the schedule: once the answer is there it sends nothing more (a send under way is cut short).
//	@Tags			schedules
//	@ID				deleteServerSchedule
//	@Param			id			path	string	true	"Server id"	example(srv-1)
//	@Param			schedule_id	path	string	true	"Schedule id"	example(sched-1)
//	@Success		204
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none)"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such server, or no such schedule"
//	@Security		BearerAuth
//	@Router			/servers/{id}/schedules/{schedule_id} [delete]
func (h *handlers) deleteServerSchedule(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	ss, err := h.serverSchedules(c)
	if err != nil {
		return err
	}
	if err := ss.Delete(c.Param("schedule_id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// createSocketSchedule sends to a socket at an interval.
//
//	@Summary		Send to a socket at an interval
//	@Description	Every interval_ms, sends data to the socket, count times or until deleted; the socket's close stops it. Each send is a socket.sent event with source schedule.
//	@Tags			schedules
//	@ID				createSocketSchedule
//	@Accept			json
//	@Produce		json
//	@Param			id			path		string			true	"Socket id"	example(sock-1)
//	@Param			schedule	body		ScheduleCreate	true	"What to send, and how often"
//	@Success		201			{object}	Schedule
//	@Header			201			{string}	Location	"/sockets/{id}/schedules/{schedule_id}"
//	@Failure		400			{object}	Problem	"interval_ms below --min-schedule-interval, data empty or over --max-reply-bytes, a bad encoding or count"
//	@Failure		401			{object}	Problem	"Token missing or wrong"
//	@Failure		403			{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404			{object}	Problem	"No such socket"
//	@Failure		409			{object}	Problem	"The socket is closed"
//	@Failure		413			{object}	Problem	"Body too large"
//	@Failure		415			{object}	Problem	"Not JSON"
//	@Failure		503			{object}	Problem	"The socket has --max-schedules schedules"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/schedules [post]
func (h *handlers) createSocketSchedule(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	ss, err := h.socketSchedules(c)
	if err != nil {
		return err
	}
	return addSchedule(c, ss, "/sockets/"+c.Param("id"))
}

// listSocketSchedules lists a socket's schedules.
//
//	@Summary		List a socket's schedules
//	@Description	The socket's schedules, oldest first, with how many times each sent.
//	@Tags			schedules
//	@ID				listSocketSchedules
//	@Produce		json
//	@Param			id	path		string	true	"Socket id"	example(sock-1)
//	@Success		200	{object}	ScheduleList
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none)"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such socket"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/schedules [get]
func (h *handlers) listSocketSchedules(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	ss, err := h.socketSchedules(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, scheduleList(ss.List()))
}

// deleteSocketSchedule stops a socket's schedule.
//
//	@Summary		Stop a socket's schedule
//	@Description	Stops the schedule: once the answer is there it sends nothing more (a send under way is cut short).
//	@Tags			schedules
//	@ID				deleteSocketSchedule
//	@Param			id			path	string	true	"Socket id"	example(sock-1)
//	@Param			schedule_id	path	string	true	"Schedule id"	example(sched-1)
//	@Success		204
//	@Failure		400	{object}	Problem	"A query parameter (this operation takes none)"
//	@Failure		401	{object}	Problem	"Token missing or wrong"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard), or a call from a page of another site"
//	@Failure		404	{object}	Problem	"No such socket, or no such schedule"
//	@Security		BearerAuth
//	@Router			/sockets/{id}/schedules/{schedule_id} [delete]
func (h *handlers) deleteSocketSchedule(c echo.Context) error {
	if _, err := query(c); err != nil {
		return err
	}
	ss, err := h.socketSchedules(c)
	if err != nil {
		return err
	}
	if err := ss.Delete(c.Param("schedule_id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
