package sockets

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config bounds and wires a Registry. Zero fields take the defaults below.
type Config struct {
	BufferBytes     int           // per-socket buffer when a request names none (DefaultBufferBytes)
	MaxBufferBytes  int           // the most a request may ask for per socket (DefaultMaxBufferBytes)
	MaxBufferTotal  int64         // bytes buffered by all sockets together; reads pause past it (DefaultMaxBufferTotal)
	MaxSockets      int           // open sockets, accepted and client (DefaultMaxSockets)
	MaxServers      int           // listening servers (DefaultMaxServers)
	DialTimeout     time.Duration // connect timeout when a request names none (DefaultDialTimeout)
	MaxDialTimeout  time.Duration // the longest connect timeout a request may ask for (DefaultMaxDialTimeout)
	WriteTimeout    time.Duration // a send fails when the peer takes no data for this long (DefaultWriteTimeout)
	ClosedRetention time.Duration // how long a closed socket stays readable (DefaultClosedRetention)
	MaxNameBytes    int           // the longest name label of a server or socket (DefaultMaxNameBytes)
	ConnectPolicy   *Policy       // checked on every dialled address; nil: the default policy
	ListenPolicy    *Policy       // checked on every bound address; nil: the default policy
	Resolver        *net.Resolver // resolves names for dial and listen; nil: net.DefaultResolver
	Logger          *slog.Logger  // nil: slog.Default()

	EventHistory      int   // events the bus keeps for late and slow subscribers (DefaultEventHistory)
	EventHistoryBytes int64 // bytes of event data it keeps with them (DefaultEventHistoryBytes)
	MaxSubscribers    int   // event subscriptions at once (DefaultMaxSubscribers)

	// Mock devices (rules.go, schedule.go).
	MaxRules          int           // reply rules of one socket or server (DefaultMaxRules)
	MaxSchedules      int           // schedules of one socket or server (DefaultMaxSchedules)
	MaxPatternBytes   int           // the longest match pattern (DefaultMaxPatternBytes)
	MaxReplyBytes     int           // the longest reply, greeting or scheduled send (DefaultMaxReplyBytes)
	MinInterval       time.Duration // the shortest interval of a schedule (DefaultMinInterval)
	MaxPendingReplies int           // answers a socket queues before its read loop waits (DefaultMaxPendingReplies)
}

// Defaults for Config.
const (
	DefaultBufferBytes     = 4 << 20
	DefaultMaxBufferBytes  = 256 << 20
	DefaultMaxBufferTotal  = 1 << 30
	DefaultMaxSockets      = 10000
	DefaultMaxServers      = 1000
	DefaultDialTimeout     = 5 * time.Second
	DefaultMaxDialTimeout  = 2 * time.Minute
	DefaultWriteTimeout    = 10 * time.Second
	DefaultClosedRetention = 10 * time.Minute
)

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.BufferBytes, DefaultBufferBytes)
	def(&c.MaxBufferBytes, DefaultMaxBufferBytes)
	def(&c.MaxSockets, DefaultMaxSockets)
	def(&c.MaxServers, DefaultMaxServers)
	def(&c.MaxNameBytes, DefaultMaxNameBytes)
	def(&c.EventHistory, DefaultEventHistory)
	def(&c.MaxSubscribers, DefaultMaxSubscribers)
	def(&c.MaxRules, DefaultMaxRules)
	def(&c.MaxSchedules, DefaultMaxSchedules)
	def(&c.MaxPatternBytes, DefaultMaxPatternBytes)
	def(&c.MaxReplyBytes, DefaultMaxReplyBytes)
	def(&c.MaxPendingReplies, DefaultMaxPendingReplies)
	defDur(&c.MinInterval, DefaultMinInterval)
	if c.EventHistoryBytes <= 0 {
		c.EventHistoryBytes = DefaultEventHistoryBytes
	}
	if c.MaxBufferTotal <= 0 {
		c.MaxBufferTotal = DefaultMaxBufferTotal
	}
	defDur(&c.DialTimeout, DefaultDialTimeout)
	defDur(&c.MaxDialTimeout, DefaultMaxDialTimeout)
	defDur(&c.WriteTimeout, DefaultWriteTimeout)
	defDur(&c.ClosedRetention, DefaultClosedRetention)
	if c.Resolver == nil {
		c.Resolver = net.DefaultResolver
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Registry owns every server and socket of one process. All methods are
// safe for concurrent use.
type Registry struct {
	cfg      Config
	mem      *memory
	gauges   gauges        // parked reads and sends under way (Waiting, Sending)
	counters counters      // refusals, denials and forgotten sockets' totals (Metrics)
	events   *bus          // nil only in benchmarks that measure the engine without it
	stop     chan struct{} // closed by Close; ends the janitor

	mu         sync.RWMutex // guards the following fields
	closed     bool
	servers    map[string]*Server
	sockets    map[string]*Socket
	conns      map[string]*Socket // by connKey, to find the other end of a connection (linkPeer)
	lastServer uint64
	lastSocket uint64
	open       int            // connected sockets plus dials in progress
	listening  int            // servers plus listens in progress
	wg         sync.WaitGroup // accept loops, read loops and the janitor; Add only under mu while !closed
}

// New returns a running registry. Call Close to release it.
func New(cfg Config) *Registry {
	cfg = cfg.withDefaults()
	r := &Registry{
		cfg:     cfg,
		mem:     newMemory(cfg.MaxBufferTotal),
		events:  newBus(cfg.EventHistory, cfg.EventHistoryBytes, cfg.MaxSubscribers),
		stop:    make(chan struct{}),
		servers: make(map[string]*Server),
		sockets: make(map[string]*Socket),
		conns:   make(map[string]*Socket),
	}
	r.wg.Add(1)
	go r.janitor()
	return r
}

// Config returns the registry's configuration with defaults filled in.
func (r *Registry) Config() Config { return r.cfg }

// MemoryInUse returns what counts against --max-buffer-total now: what the
// sockets' messages cost, and what reads still being answered hold.
func (r *Registry) MemoryInUse() int64 { return r.mem.used.Load() }

func (r *Registry) logf(format string, args ...any) {
	r.cfg.Logger.Warn(fmt.Sprintf(format, args...))
}

// bufferOptions validates a request's buffer size and overflow mode.
func (r *Registry) bufferOptions(bufBytes int, overflow string) (int, Overflow, error) {
	ov, err := ParseOverflow(overflow)
	if err != nil {
		return 0, "", err
	}
	switch {
	case bufBytes == 0:
		bufBytes = r.cfg.BufferBytes
	case bufBytes < 0 || bufBytes > r.cfg.MaxBufferBytes:
		return 0, "", &RangeError{Arg: ArgBufferBytes, Value: int64(bufBytes), Min: 1, Max: int64(r.cfg.MaxBufferBytes), Bound: "MaxBufferBytes"}
	}
	return bufBytes, ov, nil
}

func validPort(port int) error {
	if port < 0 || port > 65535 {
		return &RangeError{Arg: ArgPort, Value: int64(port), Min: 0, Max: 65535}
	}
	return nil
}

// register adds a connected socket under a new id and starts its read loop.
// reserved says a slot was already counted in open (a dial). It closes conn
// and returns ErrClosed when the registry is closed, ErrLimit when the
// socket limit is reached.
func (r *Registry) register(conn *net.TCPConn, kind Kind, srv *Server, o recvOptions, reserved bool) (*Socket, error) {
	r.applyTCP(conn, o) // before the lock: system calls
	r.mu.Lock()
	if r.closed {
		if reserved {
			r.open-- // the dial's slot, as below when a server is closing
		}
		r.mu.Unlock()
		conn.Close()
		return nil, fmt.Errorf("%w: the service is shutting down", ErrClosed)
	}
	if !reserved {
		if r.open >= r.cfg.MaxSockets {
			r.mu.Unlock()
			conn.Close()
			return nil, r.socketLimitError()
		}
		r.open++
	}
	r.lastSocket++
	id := "sock-" + strconv.FormatUint(r.lastSocket, 10)
	serverID := ""
	if srv != nil {
		serverID = srv.id
	}
	s := newSocket(id, kind, serverID, conn, o, r.mem, &r.gauges, r.cfg.WriteTimeout)
	s.onClosed = r.socketClosed
	s.ev.bus = r.events
	s.m.init(s, &r.cfg, &r.counters.mock, srv, o.retain)
	if srv != nil && !srv.addSocket(id) {
		r.open--
		r.mu.Unlock()
		conn.Close()
		return nil, &NotFoundError{Server: true, ID: srv.id, Closing: true}
	}
	r.sockets[id] = s
	r.linkPeer(s)
	s.publishConnected() // under the lock: before anything can use the socket
	r.wg.Add(1)
	r.mu.Unlock()
	r.logOpened(s)
	go func() {
		defer r.wg.Done()
		s.readLoop()
	}()
	return s, nil
}

func (r *Registry) socketLimitError() error {
	return &LimitError{Limit: LimitSockets, Value: int64(r.cfg.MaxSockets)}
}

// socketClosed gives back the open slot of a socket whose read loop ended.
func (r *Registry) socketClosed(s *Socket) {
	r.mu.Lock()
	r.open--
	r.mu.Unlock()
	r.logClosed(s)
}

// adopt registers a connection a server accepted; at a limit it closes the
// connection at once and counts it as rejected.
func (r *Registry) adopt(srv *Server, conn *net.TCPConn) {
	if r.mem.full() {
		conn.Close()
		srv.reject()
		r.countLimit(LimitBufferTotal)
		r.logf("server %s: rejected a connection: %v", srv.id, &LimitError{Limit: LimitBufferTotal, Value: r.cfg.MaxBufferTotal})
		return
	}
	if _, err := r.register(conn, KindAccepted, srv, srv.recv, false); err != nil {
		srv.reject()
		r.countRefusal(&err)
		r.logf("server %s: rejected a connection: %v", srv.id, err)
	}
}

// Server returns the server with that id, or ErrServerNotFound.
func (r *Registry) Server(id string) (*Server, error) {
	r.mu.RLock()
	s, ok := r.servers[id]
	r.mu.RUnlock()
	if !ok {
		return nil, &NotFoundError{Server: true, ID: id}
	}
	return s, nil
}

// Servers returns every server, oldest first.
func (r *Registry) Servers() []*Server {
	r.mu.RLock()
	list := make([]*Server, 0, len(r.servers))
	for _, s := range r.servers {
		list = append(list, s)
	}
	r.mu.RUnlock()
	slices.SortFunc(list, func(a, b *Server) int { return compareIDs(a.id, b.id) })
	return list
}

// Socket returns the socket with that id, or ErrSocketNotFound.
func (r *Registry) Socket(id string) (*Socket, error) {
	r.mu.RLock()
	s, ok := r.sockets[id]
	r.mu.RUnlock()
	if !ok {
		return nil, &NotFoundError{ID: id, Retention: r.cfg.ClosedRetention}
	}
	return s, nil
}

// SocketFilter selects sockets; empty fields match all.
type SocketFilter struct {
	Kind     Kind
	ServerID string
	State    string
	Name     string // exact
}

// Sockets returns the sockets that match f, oldest first.
func (r *Registry) Sockets(f SocketFilter) []*Socket {
	r.mu.RLock()
	list := make([]*Socket, 0, len(r.sockets))
	for _, s := range r.sockets {
		if (f.Kind == "" || s.kind == f.Kind) && (f.ServerID == "" || s.serverID == f.ServerID) && (f.Name == "" || s.copts.name == f.Name) {
			list = append(list, s)
		}
	}
	r.mu.RUnlock()
	if f.State != "" {
		list = slices.DeleteFunc(list, func(s *Socket) bool { return s.State() != f.State })
	}
	slices.SortFunc(list, func(a, b *Socket) int { return compareIDs(a.id, b.id) })
	return list
}

// compareIDs orders "sock-9" before "sock-10".
func compareIDs(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	if a < b {
		return -1
	}
	if a > b {
		return 1
	}
	return 0
}

// DeleteSocket closes the socket (if open), waits for its read loop, and
// forgets it and what it buffered. ErrSocketNotFound if there is none.
func (r *Registry) DeleteSocket(id string) error { return r.ForgetSocket(id, CloseOptions{}) }

// ForgetSocket is DeleteSocket, closing the connection as o says.
func (r *Registry) ForgetSocket(id string, o CloseOptions) error {
	r.mu.Lock()
	s, ok := r.sockets[id]
	if ok {
		delete(r.sockets, id)
		r.unlinkPeer(s)
		r.retire(s)
	}
	r.mu.Unlock()
	if !ok {
		return &NotFoundError{ID: id}
	}
	r.forget(s, o)
	return nil
}

// forget closes a socket already removed from the map and frees its buffer.
func (r *Registry) forget(s *Socket, o CloseOptions) {
	if s.serverID != "" {
		if srv, err := r.Server(s.serverID); err == nil {
			srv.removeSocket(s.id)
		}
	}
	s.closeWith(o)
	s.buf.release()
	r.publishRemoved(s)
}

// DeleteServer stops listening and forgets the server. With closeSockets its
// accepted sockets are closed too (and stay readable until deleted or their
// retention ends); otherwise they stay open. ErrServerNotFound if none.
func (r *Registry) DeleteServer(id string, closeSockets bool) error {
	r.mu.Lock()
	srv, ok := r.servers[id]
	if ok {
		delete(r.servers, id)
		r.listening--
	}
	r.mu.Unlock()
	if !ok {
		return &NotFoundError{Server: true, ID: id}
	}
	srv.close()
	srv.publishClosed(ServerReasonDeleted)
	if closeSockets {
		for _, sid := range srv.socketIDs() {
			if s, err := r.Socket(sid); err == nil {
				s.Close(ReasonServerClosed)
			}
		}
	}
	return nil
}

// Broadcast sends data to every connected socket of the server, all at once,
// and returns how many sockets took all of it and the bytes written in all.
// Every socket writes from data itself (SendBytes): a broadcast costs a
// goroutine per socket, not a buffer. When ctx ends first (the client went
// away, the service shuts down) it returns the counts so far with an error
// wrapping the cause.
func (r *Registry) Broadcast(ctx context.Context, id string, data []byte) (sockets int, sent int64, err error) {
	srv, err := r.Server(id)
	if err != nil {
		return 0, 0, err
	}
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, sid := range srv.socketIDs() {
		s, err := r.Socket(sid)
		if err != nil || s.Closed() {
			continue
		}
		wg.Go(func() {
			n, err := s.sendBytes(ctx, SourceBroadcast, data)
			mu.Lock()
			defer mu.Unlock()
			sent += n
			if err == nil {
				sockets++
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return sockets, sent, fmt.Errorf("the broadcast was cancelled: %d sockets took it whole, %d bytes were sent in all: %w", sockets, sent, context.Cause(ctx))
	}
	return sockets, sent, nil
}

// janitor forgets closed sockets once their retention has passed.
func (r *Registry) janitor() {
	defer r.wg.Done()
	// At least 1ms: a retention under 4ns would make the interval 0, and
	// NewTicker panics on that.
	tick := time.NewTicker(max(min(r.cfg.ClosedRetention/4, time.Second), time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-tick.C:
			r.sweep(now)
		}
	}
}

// sweep forgets the sockets closed before now minus the retention.
func (r *Registry) sweep(now time.Time) {
	var expired []*Socket
	r.mu.Lock()
	for id, s := range r.sockets {
		if at, closed := s.closedSince(); closed && now.Sub(at) >= r.cfg.ClosedRetention {
			delete(r.sockets, id)
			r.unlinkPeer(s)
			r.retire(s)
			expired = append(expired, s)
		}
	}
	r.mu.Unlock()
	for _, s := range expired {
		r.forget(s, CloseOptions{})
	}
}

// Close stops every server, closes every socket and waits for all their
// goroutines. It is idempotent; afterwards Listen and Dial return ErrClosed.
func (r *Registry) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.wg.Wait()
		return nil
	}
	r.closed = true
	close(r.stop)
	servers := make([]*Server, 0, len(r.servers))
	for _, s := range r.servers {
		servers = append(servers, s)
	}
	sockets := make([]*Socket, 0, len(r.sockets))
	for _, s := range r.sockets {
		sockets = append(sockets, s)
	}
	r.mu.Unlock()

	for _, s := range servers {
		s.close()
		s.publishClosed(ServerReasonShutdown)
	}
	var wg sync.WaitGroup
	for _, s := range sockets {
		wg.Go(func() { s.Close(ReasonShutdown) })
	}
	wg.Wait()
	r.events.close()
	r.wg.Wait()
	return nil
}
