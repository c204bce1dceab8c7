package api

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sockman/sockman/internal/doccheck"
	"github.com/sockman/sockman/sockets"
)

// The endpoints table of API.md lists every route New registers, and only
// those. A HEAD route is covered by the GET row of its path.
func TestRoutesDocumented(t *testing.T) {
	reg := sockets.New(sockets.Config{})
	defer reg.Close()
	e := New(reg, Options{})

	param := regexp.MustCompile(`:([a-z_]+)`)
	registered := map[string]bool{}
	var heads []string
	for _, r := range e.Routes() {
		route := r.Method + " " + param.ReplaceAllString(r.Path, "{$1}")
		if r.Method == http.MethodHead {
			heads = append(heads, route)
			continue
		}
		registered[route] = true
	}
	if len(registered) == 0 {
		t.Fatal("New registered no route")
	}
	for _, h := range heads {
		if get := "GET" + strings.TrimPrefix(h, "HEAD"); !registered[get] {
			t.Errorf("%s has no GET route to document it", h)
		}
	}

	documented := map[string]bool{}
	for _, row := range doccheck.Table(t, doccheck.Read(t, "API.md"), "Method and path") {
		spans := doccheck.Code(row[0])
		if len(spans) == 0 {
			t.Errorf("API.md endpoints row %q: write the route as `METHOD /path`", row[0])
		}
		for _, route := range spans {
			if documented[route] {
				t.Errorf("API.md lists %s twice", route)
			}
			documented[route] = true
			if !registered[route] {
				t.Errorf("API.md lists %s, which the API does not register", route)
			}
		}
	}
	var missing []string
	for route := range registered {
		if !documented[route] {
			missing = append(missing, route)
		}
	}
	slices.Sort(missing)
	for _, route := range missing {
		t.Errorf("%s is missing from the endpoints table of API.md: add its row", route)
	}
}
