package sockets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sockman/sockman/internal/quote"
)

// ListenOptions describe a server to open.
type ListenOptions struct {
	Host string      // IP or name; "" means 127.0.0.1
	Port int         // 0 asks for an ephemeral port
	Recv RecvOptions // for every accepted socket
	// Greeting is sent to every accepted connection at once; at most
	// Config.MaxReplyBytes.
	Greeting []byte
	// GreetingText and GreetingEncoding keep how the request wrote it, to
	// show it back the same way.
	GreetingText, GreetingEncoding string
}

// Listen binds a listener and starts accepting. It returns once the address
// is bound: ErrAddrInUse when it is taken, ErrForbidden when the listen policy
// denies it, ErrInvalid for a bad option or an address that is not local,
// ErrLimit at Config.MaxServers, ErrClosed after Close.
func (r *Registry) Listen(ctx context.Context, o ListenOptions) (_ *Server, err error) {
	defer r.countRefusal(&err)
	recv, err := r.recvOptions(o.Recv)
	if err != nil {
		return nil, err
	}
	if err := validPort(o.Port); err != nil {
		return nil, err
	}
	if len(o.Greeting) > r.cfg.MaxReplyBytes {
		return nil, &RangeError{Arg: ArgGreetingBytes, Value: int64(len(o.Greeting)), Min: 0, Max: int64(r.cfg.MaxReplyBytes), Bound: "MaxReplyBytes"}
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	host, err = normalHost(host)
	if err != nil {
		return nil, err
	}
	ip, err := r.resolveOne(ctx, host)
	if err != nil {
		return nil, err
	}
	// Reserve a server slot, so that concurrent listens cannot pass the
	// limit; bind without the lock held.
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: the service is shutting down", ErrClosed)
	case r.listening >= r.cfg.MaxServers:
		r.mu.Unlock()
		return nil, &LimitError{Limit: LimitServers, Value: int64(r.cfg.MaxServers)}
	}
	r.listening++
	r.mu.Unlock()

	network, ip := ipNetwork(ip)
	addr := net.JoinHostPort(ip.String(), strconv.Itoa(o.Port))
	// KeepAlive -1: register sets each socket's own (applyTCP).
	lc := net.ListenConfig{Control: r.cfg.ListenPolicy.Control, KeepAlive: -1}
	// Plain TCP, as for dials. Go listens with MPTCP by default on Linux: a
	// listener would then cost a second kernel socket, and a peer whose
	// kernel speaks MPTCP would get another protocol than the one it is
	// tested with.
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(ctx, network, addr)
	if err != nil {
		r.mu.Lock()
		r.listening--
		r.mu.Unlock()
		return nil, listenError(addr, err)
	}
	srv := &Server{
		ln:      ln,
		addr:    ln.Addr().String(),
		created: time.Now().UTC(),
		recv:    recv,
		reg:     r,
		done:    make(chan struct{}),
		stop:    make(chan struct{}),
	}
	r.mu.Lock()
	if r.closed {
		r.listening--
		r.mu.Unlock()
		ln.Close()
		return nil, fmt.Errorf("%w: the service is shutting down", ErrClosed)
	}
	r.lastServer++
	srv.id = "srv-" + strconv.FormatUint(r.lastServer, 10)
	srv.initMock(o)
	r.servers[srv.id] = srv
	srv.publishListening() // under the lock: before its first socket.connected
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		srv.acceptLoop()
	}()
	return srv, nil
}

// ipNetwork returns the network that binds or connects ip in its own family,
// and ip in that family's form: "tcp4" and the IPv4 address for an IPv4 or
// IPv4-mapped ip, "tcp6" otherwise. With "tcp", Go binds 0.0.0.0 as a
// dual-stack [::] that IPv6 peers reach too, and dials :: again as 0.0.0.0
// when [::] fails; with "tcp6" it sets IPV6_V6ONLY, so that a listener on ::
// takes no IPv4 peer. The policy thus sees the address really used.
func ipNetwork(ip net.IP) (string, net.IP) {
	if v4 := ip.To4(); v4 != nil {
		return "tcp4", v4
	}
	return "tcp6", ip
}

// dialNetwork is the network a dial of host (as normalHost returns it) uses:
// an IP literal's own family (see ipNetwork), "tcp" for a name, so that
// every address it resolves to is tried, in Go's order.
func dialNetwork(host string) string {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "tcp"
	}
	network, _ := ipNetwork(net.IP(ip.AsSlice()))
	return network
}

// numericLabel matches the labels of the legacy inet_aton spellings of an
// IPv4 address: decimal, octal (leading 0) or hex (0x) numbers.
var numericLabel = regexp.MustCompile(`^(?i)(0x[0-9a-f]*|[0-9]+)$`)

// nameLabel matches one label of a host name (underscores allowed, as
// resolvers accept them in practice).
var nameLabel = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$`)

// normalHost checks that host is an IP literal or a host name and drops the
// brackets of an IPv6 literal. It refuses the legacy numeric spellings of an
// address that are not IP literals to Go ("127.1", "2130706433",
// "0x7f.0.0.1"): no DNS name looks like that, and a C resolver would read
// them as an address while Go would not, so a user would never know which
// address was meant. A name loses its final dot: "localhost." is localhost,
// answered from the hosts file like it, where the resolvers would send the
// dotted name to DNS; any other dotted name is looked up without the dot.
func normalHost(host string) (string, error) {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
		if ip, err := netip.ParseAddr(host); err != nil || !ip.Is6() {
			return "", fmt.Errorf("%w: host %s: brackets are for IPv6 addresses only", ErrInvalid, quote.String("["+host+"]"))
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return host, nil
	}
	name := strings.TrimSuffix(host, ".")
	if len(name) == 0 || len(name) > 253 {
		return "", fmt.Errorf("%w: host %s is neither an IP address nor a host name of 1 to 253 characters", ErrInvalid, quote.String(host))
	}
	numeric := true
	for _, l := range strings.Split(name, ".") {
		if !nameLabel.MatchString(l) {
			return "", fmt.Errorf("%w: host %s is neither an IP address nor a host name (give the port in the port field, and IPv6 without a zone or in brackets)", ErrInvalid, quote.String(host))
		}
		numeric = numeric && numericLabel.MatchString(l)
	}
	if numeric {
		return "", fmt.Errorf("%w: host %s is not a standard IP address; write IPv4 as four decimal numbers such as 127.0.0.1", ErrInvalid, quote.String(host))
	}
	return name, nil
}

// resolveOne turns host into one IP with the registry's resolver; an IP
// literal is used as it is.
func (r *Registry) resolveOne(ctx context.Context, host string) (net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return ip, nil
	}
	ips, err := r.cfg.Resolver.LookupIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, fmt.Errorf("%w: host %s does not resolve to an address: %v", ErrInvalid, quote.String(host), err)
	}
	return ips[0], nil
}

func listenError(addr string, err error) error {
	switch {
	case errors.Is(err, ErrForbidden):
		return unwrapPolicy(err)
	case errors.Is(err, syscall.EADDRINUSE):
		return fmt.Errorf("%w: %s is already bound by another listener; choose another port or port 0 for an ephemeral one", ErrAddrInUse, addr)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%w: %s is not an address of this machine; use a local address such as 127.0.0.1", ErrInvalid, addr)
	case errors.Is(err, syscall.EACCES):
		return fmt.Errorf("%w: no permission to bind %s (ports below 1024 need privileges)", ErrForbidden, addr)
	case isOutOfFiles(err):
		return outOfFilesError(err)
	}
	return fmt.Errorf("%w: cannot listen on %s: %v", ErrInvalid, addr, err)
}

// isOutOfFiles reports whether err says the process or the system has no
// file descriptor left for a new socket.
func isOutOfFiles(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// outOfFilesError is the ErrLimit for a listen or connect that found no
// file descriptor: a limit of this machine, not a bad request or a peer
// that failed.
func outOfFilesError(err error) error {
	errno, _ := errors.AsType[syscall.Errno](err)
	return &LimitError{Limit: LimitFiles, Cause: errno}
}

// unwrapPolicy returns the policy's own error out of the *net.OpError and
// *os.SyscallError that net wraps around a Control error, so that its
// message names the rule without Go's prefixes.
func unwrapPolicy(err error) error {
	for {
		var next error
		var oe *net.OpError
		var se *os.SyscallError
		switch {
		case errors.As(err, &oe) && oe.Err != nil:
			next = oe.Err
		case errors.As(err, &se) && se.Err != nil:
			next = se.Err
		}
		if next == nil || next == err || !errors.Is(next, ErrForbidden) {
			return err
		}
		err = next
	}
}

// DialOptions describe a client connection to open.
type DialOptions struct {
	Host    string        // IP or name, required
	Port    int           // 1 to 65535
	Timeout time.Duration // 0 means the registry default
	Recv    RecvOptions
}

// Dial connects to host:port and registers the connection as a client
// socket. It returns once connected or failed: ErrConnectFailed (refused,
// unreachable, name not resolved), ErrConnectTimeout, ErrForbidden (policy),
// ErrInvalid, ErrLimit at Config.MaxSockets, ErrClosed after Close.
func (r *Registry) Dial(ctx context.Context, o DialOptions) (_ *Socket, err error) {
	defer r.countRefusal(&err)
	recv, err := r.recvOptions(o.Recv)
	if err != nil {
		return nil, err
	}
	if o.Host == "" {
		return nil, fmt.Errorf("%w: host is required", ErrInvalid)
	}
	host, err := normalHost(o.Host)
	if err != nil {
		return nil, err
	}
	if o.Port < 1 || o.Port > 65535 {
		return nil, &RangeError{Arg: ArgPort, Value: int64(o.Port), Min: 1, Max: 65535}
	}
	timeout := o.Timeout
	switch {
	case timeout == 0:
		timeout = r.cfg.DialTimeout
	case timeout < 0 || timeout > r.cfg.MaxDialTimeout:
		return nil, &RangeError{Arg: ArgTimeout, Value: int64(timeout), Min: int64(time.Millisecond), Max: int64(r.cfg.MaxDialTimeout), Bound: "MaxDialTimeout"}
	}
	if r.mem.full() {
		return nil, &LimitError{Limit: LimitBufferTotal, Value: r.cfg.MaxBufferTotal}
	}
	r.mu.Lock()
	switch {
	case r.closed:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: the service is shutting down", ErrClosed)
	case r.open >= r.cfg.MaxSockets:
		r.mu.Unlock()
		return nil, r.socketLimitError()
	}
	r.open++ // reserved; register takes it over
	r.mu.Unlock()

	addr := net.JoinHostPort(host, strconv.Itoa(o.Port))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// KeepAlive -1: register sets the socket's own, as for a listen.
	d := net.Dialer{Resolver: r.cfg.Resolver, Control: r.cfg.ConnectPolicy.Control, KeepAlive: -1}
	d.SetMultipathTCP(false) // the default; GODEBUG=multipathtcp cannot change it
	conn, err := d.DialContext(ctx, dialNetwork(host), addr)
	if err != nil {
		r.mu.Lock()
		r.open--
		r.mu.Unlock()
		return nil, dialError(addr, timeout, ctx, err)
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		// Nobody is left to learn the socket's id: registered, it would
		// hold a Config.MaxSockets slot until someone found and deleted it.
		conn.Close()
		r.mu.Lock()
		r.open--
		r.mu.Unlock()
		return nil, cancelledDial(addr, ctx)
	}
	return r.register(conn.(*net.TCPConn), KindClient, nil, recv, true)
}

// cancelledDial is the error of a connect whose request ended first: the
// client went away, or the service is shutting down. It wraps the cause
// (context.Canceled), not ErrConnectFailed: the target is not to blame.
func cancelledDial(addr string, ctx context.Context) error {
	return fmt.Errorf("the connect to %s was cancelled (the client went away, or the service is shutting down): %w", addr, context.Cause(ctx))
}

func dialError(addr string, timeout time.Duration, ctx context.Context, err error) error {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		// Checked first: a cancelled lookup is a DNSError too.
		return cancelledDial(addr, ctx)
	case errors.Is(err, ErrForbidden):
		return unwrapPolicy(err)
	case errors.As(err, &dnsErr) && !dnsErr.IsTimeout:
		return fmt.Errorf("%w: the name in %s did not resolve (%v); check the host", ErrConnectFailed, addr, dnsErr)
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return &DialTimeoutError{Addr: addr, Timeout: timeout}
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w: %s refused the connection; is anything listening there?", ErrConnectFailed, addr)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return fmt.Errorf("%w: %s is unreachable from this machine", ErrConnectFailed, addr)
	case isOutOfFiles(err):
		return outOfFilesError(err)
	}
	return fmt.Errorf("%w: %s: %v", ErrConnectFailed, addr, err)
}
