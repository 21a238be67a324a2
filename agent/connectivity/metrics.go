package connectivity

import (
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, under the plexus_connectivity_ prefix.
const (
	metricNamespace     = "plexus"
	metricSubsystem     = "connectivity"
	metricProbeSeconds  = "probe_seconds"
	metricProbeFailures = "probe_failures_total"
	metricDNSSeconds    = "dns_probe_seconds"
	metricDNSFailures   = "dns_probe_failures_total"
	labelPeer           = "peer"
	labelFamily         = "family"
)

// Metrics are the prober's Prometheus metrics. Series of a peer that is no longer probed are
// removed.
type Metrics struct {
	// ProbeSeconds observes the round trip time of every answered probe, by peer and family.
	ProbeSeconds *prometheus.HistogramVec
	// ProbeFailures counts unanswered probes, by peer and family.
	ProbeFailures *prometheus.CounterVec
	// DNSSeconds observes every answered DNS probe; DNSFailures counts the others.
	DNSSeconds  prometheus.Histogram
	DNSFailures prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (none if reg is nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	buckets := prometheus.ExponentialBuckets(0.0001, 2, 16) // 100 µs .. 3.3 s
	m := &Metrics{
		ProbeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: metricProbeSeconds,
			Help:    "Round trip time of the UDP probes of a peer node's pod network, from this node's probe address to the peer's.",
			Buckets: buckets,
		}, []string{labelPeer, labelFamily}),
		ProbeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: metricProbeFailures,
			Help: "UDP probes of a peer node's pod network that got no answer.",
		}, []string{labelPeer, labelFamily}),
		DNSSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: metricDNSSeconds,
			Help:    "Round trip time of the lookups of kubernetes.default.svc.<clusterDomain> against the kube-dns Service.",
			Buckets: buckets,
		}),
		DNSFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: metricNamespace, Subsystem: metricSubsystem, Name: metricDNSFailures,
			Help: "Lookups of kubernetes.default.svc.<clusterDomain> against the kube-dns Service that failed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.ProbeSeconds, m.ProbeFailures, m.DNSSeconds, m.DNSFailures)
	}
	return m
}

func (m *Metrics) observe(r Result) {
	if m == nil {
		return
	}
	l := prometheus.Labels{labelPeer: r.Peer, labelFamily: family(r.Addr)}
	if r.Err != nil {
		m.ProbeFailures.With(l).Inc()
		return
	}
	m.ProbeSeconds.With(l).Observe(r.RTT.Seconds())
}

func (m *Metrics) observeDNS(r DNSResult) {
	if m == nil {
		return
	}
	if r.Err != nil {
		m.DNSFailures.Inc()
		return
	}
	m.DNSSeconds.Observe(r.RTT.Seconds())
}

// forget removes the series of a peer no longer probed.
func (m *Metrics) forget(peer string) {
	if m == nil {
		return
	}
	m.ProbeSeconds.DeletePartialMatch(prometheus.Labels{labelPeer: peer})
	m.ProbeFailures.DeletePartialMatch(prometheus.Labels{labelPeer: peer})
}

func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
