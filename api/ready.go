package api

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/sockman/sockman/sockets"
)

// ready answers readiness probes: unlike /healthz (the process answers), it
// says whether the service takes work.
//
//	@Summary		Readiness
//	@Description	Answers 200 while the service takes work, and 503 (shutting-down) once it has begun to shut down, so that a load balancer or an orchestrator stops sending it requests. Never needs a token.
//	@Tags			service
//	@ID				ready
//	@Produce		json
//	@Success		200	{object}	Health
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard)"
//	@Failure		503	{object}	Problem	"Shutting down"
//	@Router			/readyz [get]
func (h *handlers) ready(c echo.Context) error {
	if h.opts.Ready != nil && !h.opts.Ready() {
		return fmt.Errorf("%w: the service is shutting down and takes no new work", sockets.ErrClosed)
	}
	return c.JSON(http.StatusOK, Health{Status: "ok"})
}
