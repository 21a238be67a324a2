package agent

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	policynft "github.com/plexus-net/plexus/agent/policy/nftables"
)

// policyCountersTimeout bounds one scrape's read of the kernel's policy counters.
const policyCountersTimeout = 5 * time.Second

// PolicyCounterReader reads the per-policy packet counters; *PolicyPlane is one.
type PolicyCounterReader interface {
	Counters(ctx context.Context) ([]policynft.PolicyCounter, error)
}

// PolicyPacketsCollector is the Prometheus collector of plexus_networkpolicy_packets_total: it
// reads the kernel's per-policy counters at scrape time (no goroutine polls them). A failed
// read yields no samples of it and counts in plexus_networkpolicy_counter_read_errors_total,
// so the rest of the scrape still answers.
type PolicyPacketsCollector struct {
	read       PolicyCounterReader
	packets    *prometheus.Desc
	readErrors prometheus.Counter
}

var _ prometheus.Collector = &PolicyPacketsCollector{}

// NewPolicyPacketsCollector returns the collector over r.
func NewPolicyPacketsCollector(r PolicyCounterReader) *PolicyPacketsCollector {
	return &PolicyPacketsCollector{
		read: r,
		packets: prometheus.NewDesc("plexus_networkpolicy_packets_total",
			"First packets of connections to or from this node's pods decided while a NetworkPolicy isolated the pod, by "+
				"policy, direction (ingress, egress) and verdict: allow (a rule of one of the policies isolating the pod "+
				"accepted it) or drop (no rule of any of them did). The kernel decides for all policies isolating a pod in one "+
				"lookup, so a packet counts against every policy isolating its pod; plexusctl trace names the policy and rule "+
				"that allow a flow. Restarts at zero when the table is rebuilt or the set of policies isolating pods changes.",
			[]string{"namespace", "policy", "direction", "verdict"}, nil),
		readErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "plexus_networkpolicy_counter_read_errors_total",
			Help: "Scrapes that could not read the NetworkPolicy counters from the kernel.",
		}),
	}
}

// Describe implements prometheus.Collector.
func (c *PolicyPacketsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.packets
	c.readErrors.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *PolicyPacketsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), policyCountersTimeout)
	defer cancel()
	counters, err := c.read.Counters(ctx)
	if err != nil {
		c.readErrors.Inc()
	}
	for _, pc := range counters {
		ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(pc.Packets),
			pc.Policy.Namespace, pc.Policy.Name, pc.Direction.String(), pc.Verdict)
	}
	c.readErrors.Collect(ch)
}
