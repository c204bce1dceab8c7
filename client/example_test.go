package client_test

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"strings"

	"github.com/sockman/sockman/client"
)

// A server, a client socket connected to it, a send, and a read of what
// the server's socket received. README.md shows this example; addr is
// "127.0.0.1:8080" there.
func Example() {
	ctx := context.Background()
	c, err := client.New(addr, "", nil) // the token as second argument with --token-file
	if err != nil {
		log.Fatal(err)
	}

	srv, err := c.CreateServerWithResponse(ctx, client.ServerCreate{Port: 0})
	if err := client.OrCheck(srv, err); err != nil {
		log.Fatal(err) // a *client.Problem: its Detail says what to do
	}
	// The server's events tell when it has accepted the connection, and
	// the accepted socket's id.
	events, err := c.Events(ctx, &client.StreamEventsParams{ServerId: &srv.JSON201.Id, Types: ptr("socket.connected")})
	if err != nil {
		log.Fatal(err)
	}
	defer events.Close()
	_, port, _ := strings.Cut(srv.JSON201.Address, ":")
	p, _ := strconv.Atoi(port)
	conn, err := c.CreateClientWithResponse(ctx, client.ClientCreate{Host: "127.0.0.1", Port: p})
	if err := client.OrCheck(conn, err); err != nil {
		log.Fatal(err)
	}
	sent, err := c.SendWithTextBodyWithResponse(ctx, conn.JSON201.Id, nil, "hello\n")
	if err := client.OrCheck(sent, err); err != nil {
		log.Fatal(err)
	}

	ev, _, err := events.Next()
	if err != nil {
		log.Fatal(err)
	}
	read, err := c.ReadRaw(ctx, *ev.SocketId, &client.ReadParams{Wait: ptr("5s")})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q cursor=%d state=%s\n", read.Data, read.Cursor, read.State)

	// A problem is an error with the service's type, status and detail.
	_, err = c.ReadRaw(ctx, "sock-999999", nil)
	if p := client.AsProblem(err); p != nil {
		fmt.Println(p.Status, p.Type)
	}
	// Output:
	// "hello\n" cursor=1 state=connected
	// 404 urn:sockman:problem:socket-not-found
}

func ptr[T any](v T) *T { return &v }
