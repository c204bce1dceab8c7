package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
)

// hammerOp is one kind of request the hammering clients make, with the
// statuses it may get.
type hammerOp struct {
	weight int
	run    func(ctx context.Context, c *client, rng *rand.Rand) (answer, error, []int)
}

// hammerOps are the API requests made besides the streams' reads and
// sends: reads of the registry, bad requests, server churn, refused connects.
// With memLimited (a small --max-buffer-total), a connect may also meet the
// total reached: 503 before any dial.
func hammerOps(ids []string, refusedPort int, memLimited bool) []hammerOp {
	refusedConnect := []int{http.StatusBadGateway}
	if memLimited {
		refusedConnect = append(refusedConnect, http.StatusServiceUnavailable)
	}
	get := func(path string) func(context.Context, *client, *rand.Rand) (answer, error, []int) {
		return func(ctx context.Context, c *client, _ *rand.Rand) (answer, error, []int) {
			a, err := c.do(ctx, "hammer", http.MethodGet, path, nil, "")
			return a, err, []int{http.StatusOK}
		}
	}
	bad := []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, "/servers", `{"port":"80"}`, 400},
		{http.MethodPost, "/clients", `{"host":"127.0.0.1","port":70000}`, 400},
		{http.MethodGet, "/sockets/sock-0/messages", "", 404},
		{http.MethodGet, "/sockets?kind=nope", "", 400},
		{http.MethodPost, "/servers", `{"port":0,"extra":1}`, 400},
		{http.MethodPut, "/servers", "", 405},
		{http.MethodGet, "/nope", "", 404},
	}
	return []hammerOp{
		{30, get("/healthz")},
		{30, func(ctx context.Context, c *client, rng *rand.Rand) (answer, error, []int) {
			a, err := c.do(ctx, "hammer", http.MethodGet, "/sockets/"+ids[rng.IntN(len(ids))], nil, "")
			return a, err, []int{http.StatusOK, http.StatusNotFound} // a deleted socket is 404
		}},
		{10, get("/servers")},
		{5, get("/sockets?state=closed")},
		{1, get("/sockets")}, // every socket: the largest answer there is
		{15, func(ctx context.Context, c *client, rng *rand.Rand) (answer, error, []int) {
			b := bad[rng.IntN(len(bad))]
			var body any
			if b.body != "" {
				body = b.body
			}
			a, err := c.do(ctx, "hammer", b.method, b.path, body, "")
			return a, err, []int{b.want}
		}},
		{5, func(ctx context.Context, c *client, rng *rand.Rand) (answer, error, []int) {
			a, err := c.do(ctx, "hammer", http.MethodPost, "/servers", `{"port":0}`, "")
			if err != nil || a.status != http.StatusCreated {
				return a, err, []int{http.StatusCreated}
			}
			var id string
			if _, err := fmt.Sscanf(string(a.body), `{"id":%q`, &id); err != nil {
				return a, fmt.Errorf("no id in %s", a.body), nil
			}
			a, err = c.do(ctx, "hammer", http.MethodDelete, "/servers/"+id, nil, "")
			return a, err, []int{http.StatusNoContent}
		}},
		{4, func(ctx context.Context, c *client, rng *rand.Rand) (answer, error, []int) {
			a, err := c.do(ctx, "hammer", http.MethodPost, "/clients", fmt.Sprintf(`{"host":"127.0.0.1","port":%d}`, refusedPort), "")
			return a, err, refusedConnect
		}},
	}
}

// hammer makes random requests from ops until ctx ends, counting them and
// the answers that were not among those allowed.
func hammer(ctx context.Context, c *client, ops []hammerOp, seed uint64, done *atomic.Int64, bad *problems, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewPCG(seed, 3))
	total := 0
	for _, op := range ops {
		total += op.weight
	}
	for ctx.Err() == nil {
		n := rng.IntN(total)
		op := ops[0]
		for _, o := range ops {
			if n < o.weight {
				op = o
				break
			}
			n -= o.weight
		}
		a, err, want := op.run(ctx, c, rng)
		if ctx.Err() != nil {
			return
		}
		done.Add(1)
		switch {
		case err != nil:
			bad.add("hammer: %v", err)
		case !contains(want, a.status):
			bad.add("hammer: got %d %.200s, want one of %v", a.status, a.body, want)
		}
	}
}

func contains(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
