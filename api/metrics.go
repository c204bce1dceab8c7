package api

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sockman/sockman/sockets"
)

// Metrics is sockman's Prometheus registry: the engine's figures, read from
// sockets.Registry.Metrics at scrape time; the API's requests by method,
// route template and status, with their latency; the Go runtime and the
// process. It is a registry of its own, never prometheus.DefaultRegisterer,
// so that two services in one process (tests) do not share figures.
//
// No label value comes from a request: routes are the templates the router
// knows (unmatched requests share one value), methods the ones the API
// takes, statuses the codes it answers. Never a socket id, an address or a
// payload.
//
// Collectors of later engine parts register with Register: each reads its
// own counters at scrape time, as engineCollector does.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	streams  atomic.Pointer[atomic.Int64] // the API's WebSocket streams, set by New
}

// Label values for requests no route template describes.
const (
	routeUnmatched = "unmatched" // no route: 404 before any handler
	methodOther    = "OTHER"
)

// NewMetrics returns the metrics of engine reg. Pass it to New in
// Options.Metrics, and serve Handler on another listener if wanted.
func NewMetrics(reg *sockets.Registry) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sockman_http_requests_total",
			Help: "API requests answered, by method, route template and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sockman_http_request_duration_seconds",
			Help:    "Time from a request's arrival at the API to its answer's end, by method and route template (long polls and streams included).",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 30, 120},
		}, []string{"method", "route"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.latency,
		&engineCollector{reg: reg, streams: m.streamCount},
	)
	return m
}

// Register adds a collector to the registry; an error if its metrics clash
// with others.
func (m *Metrics) Register(c prometheus.Collector) error { return m.reg.Register(c) }

// Handler serves the metrics in the Prometheus text format (or the format
// a scraper negotiates).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func (m *Metrics) streamCount() int64 {
	if p := m.streams.Load(); p != nil {
		return p.Load()
	}
	return 0
}

// observe records one answered request. route must be a known template or
// routeUnmatched.
func (m *Metrics) observe(method, route string, status int, seconds float64) {
	m.requests.WithLabelValues(method, route, statusLabel(status)).Inc()
	m.latency.WithLabelValues(method, route).Observe(seconds)
}

// metricsRoute serves Metrics on the API.
//
//	@Summary		Metrics
//	@Description	The service's figures in the Prometheus text format: sockets open by kind, servers, bytes and messages received and sent, bytes dropped, refusals by limit, policy denials, buffered bytes against --max-buffer-total, long polls waiting, event subscribers and streams, reply rule hits and schedule sends, API requests by route template and status with their latency, and the Go runtime's and the process's figures. Needs the token when one is set; --metrics-addr serves the same on a loopback address without one.
//	@Tags			service
//	@ID				metrics
//	@Produce		plain
//	@Security		BearerAuth
//	@Success		200	{string}	string	"Metrics in the Prometheus text exposition format"
//	@Failure		401	{object}	Problem	"Missing or wrong token"
//	@Failure		403	{object}	Problem	"Host not allowed (DNS rebinding guard)"
//	@Router			/metrics [get]
func metricsRoute(m *Metrics) echo.HandlerFunc {
	return echo.WrapHandler(m.Handler())
}

// engineCollector reads the engine's snapshot at each scrape.
type engineCollector struct {
	reg     *sockets.Registry
	streams func() int64
}

var (
	descSockets      = prometheus.NewDesc("sockman_sockets", "Sockets the registry holds, by kind (accepted, client) and state (open; closed but still readable).", []string{"kind", "state"}, nil)
	descServers      = prometheus.NewDesc("sockman_servers", "Listening servers.", nil, nil)
	descRecvBytes    = prometheus.NewDesc("sockman_received_bytes_total", "Bytes received from peers by every socket.", nil, nil)
	descSentBytes    = prometheus.NewDesc("sockman_sent_bytes_total", "Bytes sent to peers by every socket.", nil, nil)
	descRecvMsgs     = prometheus.NewDesc("sockman_received_messages_total", "Messages stored: reads, or frames when a socket has a framing.", nil, nil)
	descSentMsgs     = prometheus.NewDesc("sockman_sent_messages_total", "Sends (API, broadcast) that wrote at least one byte.", nil, nil)
	descDropped      = prometheus.NewDesc("sockman_dropped_bytes_total", "Bytes dropped by overflow drop-oldest.", nil, nil)
	descRefused      = prometheus.NewDesc("sockman_refused_total", "Requests and accepted connections refused because a limit was reached, by limit.", []string{"limit"}, nil)
	descDenied       = prometheus.NewDesc("sockman_policy_denied_total", "Connects and listens the address policy refused (--allow-connect, --allow-listen).", nil, nil)
	descBuffered     = prometheus.NewDesc("sockman_buffered_bytes", "Bytes counted against --max-buffer-total now.", nil, nil)
	descBufferLimit  = prometheus.NewDesc("sockman_buffered_bytes_limit", "--max-buffer-total.", nil, nil)
	descWaiting      = prometheus.NewDesc("sockman_long_polls_waiting", "Reads parked waiting for data.", nil, nil)
	descSending      = prometheus.NewDesc("sockman_sends_in_progress", "Sends writing to a peer now.", nil, nil)
	descSubscribers  = prometheus.NewDesc("sockman_event_subscribers", "Event subscriptions open (GET /events).", nil, nil)
	descStreams      = prometheus.NewDesc("sockman_streams", "WebSocket streams open (GET /sockets/{id}/stream).", nil, nil)
	descRuleHits     = prometheus.NewDesc("sockman_rule_hits_total", "Messages a reply rule answered, every socket and server.", nil, nil)
	descSchedSends   = prometheus.NewDesc("sockman_schedule_sends_total", "Sends of schedules that went out whole.", nil, nil)
	engineDescs      = []*prometheus.Desc{descSockets, descServers, descRecvBytes, descSentBytes, descRecvMsgs, descSentMsgs, descDropped, descRefused, descDenied, descBuffered, descBufferLimit, descWaiting, descSending, descSubscribers, descStreams, descRuleHits, descSchedSends}
	socketKinds      = []sockets.Kind{sockets.KindAccepted, sockets.KindClient}
	limitLabelValues = func() map[sockets.Limit]string {
		m := make(map[sockets.Limit]string, len(sockets.Limits))
		for _, l := range sockets.Limits {
			m[l] = strings.ReplaceAll(string(l), " ", "_")
		}
		return m
	}()
)

func (c *engineCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range engineDescs {
		ch <- d
	}
}

func (c *engineCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.reg.Metrics()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for _, k := range socketKinds {
		gauge(descSockets, float64(s.SocketsOpen[k]), string(k), "open")
		gauge(descSockets, float64(s.SocketsClosed[k]), string(k), "closed")
	}
	gauge(descServers, float64(s.Servers))
	counter(descRecvBytes, s.BytesReceived)
	counter(descSentBytes, s.BytesSent)
	counter(descRecvMsgs, s.MessagesReceived)
	counter(descSentMsgs, s.MessagesSent)
	counter(descDropped, s.BytesDropped)
	counter(descRuleHits, s.RuleHits)
	counter(descSchedSends, s.ScheduleSends)
	for _, l := range sockets.Limits {
		counter(descRefused, s.Refused[l], limitLabelValues[l])
	}
	counter(descDenied, s.Denied)
	gauge(descBuffered, float64(s.BufferedBytes))
	gauge(descBufferLimit, float64(s.MaxBufferTotal))
	gauge(descWaiting, float64(s.Waiting))
	gauge(descSending, float64(s.Sending))
	gauge(descSubscribers, float64(s.Subscribers))
	gauge(descStreams, float64(c.streams()))
}

// statusLabel is the status code as a label value; codes outside 100-599
// (none is sent) share one.
func statusLabel(code int) string {
	if code < 100 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code)
}

// methodLabel is the method as a label value: one the API takes, or OTHER.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodDelete, http.MethodOptions:
		return m
	}
	return methodOther
}
