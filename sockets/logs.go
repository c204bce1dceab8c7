package sockets

import (
	"context"
	"log/slog"
	"time"
)

// The engine's log lines of a socket's life: one when it is registered, one
// when its read loop ends, at level Info. They carry its id, kind, server,
// addresses, close reason and counters: never a byte of what it received or
// sent. A flood of them (thousands of accepts) is bounded by the logger
// serve builds (--log-max-similar).

func (r *Registry) logOpened(s *Socket) {
	log := r.cfg.Logger
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	log.LogAttrs(context.Background(), slog.LevelInfo, "socket opened",
		slog.String("socket_id", s.id), slog.String("kind", string(s.kind)), slog.String("server_id", s.serverID),
		slog.String("local", s.local), slog.String("remote", s.remote))
}

func (r *Registry) logClosed(s *Socket) {
	log := r.cfg.Logger
	if !log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	info := s.Info()
	t := s.totals()
	log.LogAttrs(context.Background(), slog.LevelInfo, "socket closed",
		slog.String("socket_id", s.id), slog.String("kind", string(s.kind)), slog.String("server_id", s.serverID),
		slog.String("reason", info.CloseReason),
		slog.Int64("bytes_received", t.recv), slog.Int64("bytes_sent", t.sent),
		slog.Int64("messages_received", t.msgsRecv), slog.Int64("messages_sent", t.msgsSent),
		slog.Int64("dropped_bytes", t.dropped), slog.Duration("open_for", time.Since(s.created)))
}
