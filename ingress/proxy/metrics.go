package proxy

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the proxy's Prometheus metrics, counted per route (host and path of an Ingress
// rule) by the plexus_paths handler when the config asks for them (translate.Options.Metrics).
// Caddy's own metrics are per server and handler, not per Ingress route, so the proxy counts
// its own.
type Metrics struct {
	requests       *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	upstreamErrors *prometheus.CounterVec
}

// NewMetrics makes the collectors; Register adds them to a registry.
func NewMetrics() *Metrics {
	return &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_ingress_requests_total",
			Help: "Requests served per route and status class (2xx, 3xx, 4xx, 5xx).",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "plexus_ingress_request_duration_seconds",
			Help:    "Time from the request reaching its route to the end of the response, per route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "plexus_ingress_upstream_errors_total",
			Help: "Requests whose backend could not be reached or failed before answering, per route.",
		}, []string{"route"}),
	}
}

// Register adds the collectors to reg.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.upstreamErrors} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// metrics is where plexus_paths handlers count, nil when nothing counts.
var metrics atomic.Pointer[Metrics]

// UseMetrics makes the process's routes count into m (nil stops counting).
func UseMetrics(m *Metrics) { metrics.Store(m) }

// observe records one request of route that ended with status (or err) after d.
func (m *Metrics) observe(route string, status int, err error, d time.Duration) {
	if err != nil {
		status = http.StatusInternalServerError
		var he caddyhttp.HandlerError
		if errors.As(err, &he) && he.StatusCode != 0 {
			status = he.StatusCode
		}
		if status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout {
			m.upstreamErrors.WithLabelValues(route).Inc()
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status/100)+"xx").Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection (flush, hijack, deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
