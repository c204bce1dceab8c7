package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
)

// apiPolicy is the Content-Security-Policy of every answer but Swagger UI's
// page: JSON and YAML are no documents to run or to frame.
const apiPolicy = "default-src 'none'; frame-ancestors 'none'"

// responseHeaders sets, on every answer of sockman's routes, errors
// included:
//
//   - X-Frame-Options: DENY, and frame-ancestors 'none' in the
//     Content-Security-Policy: no page may frame Swagger UI, which would act
//     with the token the browser keeps for it (clickjacking);
//   - X-Content-Type-Options: nosniff: a browser takes the Content-Type as
//     it is, and never runs an answer as a script or a page it guessed;
//   - Connection: close after a request with a Transfer-Encoding. net/http
//     decodes a chunked body and drops the Content-Length sent with it, so a
//     request that had both (a request smuggling attempt, for which RFC 9112
//     section 6.1 asks the server to close the connection after answering)
//     cannot be told apart from a chunked one: every chunked request closes
//     its connection. A client that streams a body pays one new
//     connection per such request.
func responseHeaders() echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("X-Frame-Options", "DENY")
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("Content-Security-Policy", apiPolicy)
			if len(c.Request().TransferEncoding) > 0 {
				h.Set(echo.HeaderConnection, "close")
			}
			return next(c)
		}
	}
}

var inlineScriptRE = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// pagePolicy is the Content-Security-Policy of Swagger UI's page, page
// being the page as it is served: scripts from sockman alone, and the
// page's inline script by its hash (no 'unsafe-inline' for scripts: no
// other inline code runs); images and fonts from sockman; requests to
// sockman alone; no framing. Styles may be inline: swagger-ui-bundle.js
// adds style elements of its own at run time, which no hash can name.
func pagePolicy(page []byte) string {
	var scripts strings.Builder
	for _, m := range inlineScriptRE.FindAllSubmatch(page, -1) {
		sum := sha256.Sum256(m[1])
		fmt.Fprintf(&scripts, " 'sha256-%s'", base64.StdEncoding.EncodeToString(sum[:]))
	}
	return strings.Join([]string{
		"default-src 'none'",
		"script-src 'self'" + scripts.String(),
		"style-src 'self' 'unsafe-inline'",
		"img-src 'self' data:",
		"font-src 'self' data:",
		"connect-src 'self'",
		"form-action 'self'",
		"base-uri 'none'",
		"frame-ancestors 'none'",
	}, "; ")
}

// renderPage returns what ui answers to GET /swagger/index.html.
func renderPage(ui echo.HandlerFunc) []byte {
	req, _ := http.NewRequest(http.MethodGet, "/swagger/index.html", nil) // a constant URL: cannot fail
	req.RequestURI = "/swagger/index.html"
	w := &pageWriter{header: http.Header{}}
	e := echo.New()
	_ = ui(e.NewContext(req, w))
	return w.body.Bytes()
}

// pageWriter keeps an answer in memory.
type pageWriter struct {
	header http.Header
	body   bytes.Buffer
}

func (w *pageWriter) Header() http.Header         { return w.header }
func (w *pageWriter) Write(p []byte) (int, error) { return w.body.Write(p) }
func (w *pageWriter) WriteHeader(int)             {}
