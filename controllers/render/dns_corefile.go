package render

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/plexus-net/plexus/api/v1alpha1"
)

// ResolvConf is CoreDNS' upstream when dns.upstreams is empty: the pod's /etc/resolv.conf, which
// is the node's, because the Deployment uses dnsPolicy Default.
const ResolvConf = "/etc/resolv.conf"

// Timings of the Corefile.
const (
	// dnsLameduck keeps a stopping CoreDNS answering while the endpoint controllers and every
	// node's service proxy take it out of the kube-dns Service, and then while the agents drain
	// and flush the UDP conntrack entries that still lead to it (agent/proxy/nftables'
	// udpDrainDelay, 2 s): every node must have flushed them before CoreDNS stops answering, or
	// a lookup from a source port an earlier lookup used follows its old entry into a pod that
	// no longer answers. 5 s (kubeadm's) was measured too short in a loaded lab: agents took
	// up to 5 s to see the pod terminating, and CoreDNS stopped 5.3 s after its deletion.
	dnsLameduck = "10s"
	// dnsReloadInterval is how often CoreDNS checks its Corefile for a change; a changed ConfigMap
	// then applies without restarting a pod.
	dnsReloadInterval = "10s"
	// dnsMaxConcurrent bounds the upstream queries in flight, so an unreachable upstream cannot
	// make CoreDNS queue without limit.
	dnsMaxConcurrent = 1000
)

// CorefileConfig is the input of RenderCorefile. CorefileFor fills it from the effective spec with
// what a pod in the cluster needs; the fields after Port exist so the same Corefile can run outside
// a cluster (tests against a real API server).
type CorefileConfig struct {
	// ClusterDomain is the zone of Services and pods, e.g. cluster.local.
	ClusterDomain string
	// ReverseCIDRs are the pod and service CIDRs whose PTR records the kubernetes plugin answers.
	ReverseCIDRs []string
	// PodRecords is how pod A/AAAA records are answered.
	PodRecords v1.DNSPodRecords
	// Upstreams resolve every other name; empty means ResolvConf. Each is an IP, or IP:port.
	Upstreams []string
	// ForwardZones get a server block of their own, forwarding to their resolvers.
	ForwardZones []v1.ForwardZone
	// CacheSeconds is the cache's maximum TTL; 0 turns the cache off.
	CacheSeconds int32
	// Port is the DNS port of every server block.
	Port int32

	// ListenIP, when set, binds every listener (DNS, health, ready, metrics) to this address.
	ListenIP string
	// HealthPort, ReadyPort and MetricsPort are the ports of the health, ready and prometheus plugins.
	HealthPort, ReadyPort, MetricsPort int32
	// Kubeconfig, when set, points the kubernetes plugin at the API server of that kubeconfig
	// instead of the in-cluster one.
	Kubeconfig string
}

// CorefileFor derives the Corefile configuration of an effective spec, with the ports the
// Deployment exposes.
func CorefileFor(spec v1.ClusterNetworkSpec) CorefileConfig {
	cfg := CorefileConfig{Port: DNSPort, HealthPort: DNSHealthPort, ReadyPort: DNSReadyPort, MetricsPort: DNSMetricsPort}
	for _, c := range spec.PodNetwork.CIDRs {
		cfg.ReverseCIDRs = append(cfg.ReverseCIDRs, string(c))
	}
	for _, c := range spec.ServiceNetwork.CIDRs {
		cfg.ReverseCIDRs = append(cfg.ReverseCIDRs, string(c))
	}
	if d := spec.DNS; d != nil {
		cfg.ClusterDomain = d.ClusterDomain
		cfg.PodRecords = d.PodRecords
		cfg.Upstreams = d.Upstreams
		cfg.ForwardZones = d.ForwardZones
		if d.CacheSeconds != nil {
			cfg.CacheSeconds = *d.CacheSeconds
		}
	}
	return cfg
}

// RenderCorefile writes the Corefile: one server block for the cluster domain and everything else,
// then one block per forward zone (sorted by zone, so reordering the list changes nothing).
func RenderCorefile(cfg CorefileConfig) string {
	var b strings.Builder
	w := func(indent int, format string, args ...any) {
		b.WriteString(strings.Repeat("    ", indent))
		fmt.Fprintf(&b, format, args...)
		b.WriteByte('\n')
	}
	port := strconv.Itoa(int(cfg.Port))
	listen := func(p int32) string { return net.JoinHostPort(cfg.ListenIP, strconv.Itoa(int(p))) }

	w(0, ".:%s {", port)
	w(1, "errors")
	bind(w, cfg.ListenIP)
	w(1, "health %s {", listen(cfg.HealthPort))
	w(2, "lameduck %s", dnsLameduck)
	w(1, "}")
	w(1, "ready %s", listen(cfg.ReadyPort))
	// The plugin answers the cluster domain and the reverse zones of the cluster's own CIDRs
	// (CoreDNS turns each CIDR into its in-addr.arpa / ip6.arpa zones). It does not fall through:
	// an unknown name or address of the cluster gets NXDOMAIN here and never leaves the cluster.
	w(1, "kubernetes %s {", strings.Join(append([]string{cfg.ClusterDomain}, cfg.ReverseCIDRs...), " "))
	w(2, "pods %s", strings.ToLower(string(podRecordsOrDefault(cfg.PodRecords))))
	if cfg.Kubeconfig != "" {
		w(2, "kubeconfig %s", cfg.Kubeconfig)
	}
	w(1, "}")
	w(1, "prometheus %s", listen(cfg.MetricsPort))
	forward(w, ".", cfg.Upstreams)
	cache(w, cfg.CacheSeconds)
	w(1, "loop")
	w(1, "reload %s", dnsReloadInterval)
	w(1, "loadbalance")
	w(0, "}")

	zones := append([]v1.ForwardZone(nil), cfg.ForwardZones...)
	sort.Slice(zones, func(i, j int) bool { return zones[i].Zone < zones[j].Zone })
	for _, z := range zones {
		zone := strings.TrimSuffix(z.Zone, ".")
		w(0, "%s:%s {", zone, port)
		w(1, "errors")
		bind(w, cfg.ListenIP)
		w(1, "prometheus %s", listen(cfg.MetricsPort))
		forward(w, ".", z.Upstreams)
		cache(w, cfg.CacheSeconds)
		w(1, "loadbalance")
		w(0, "}")
	}
	return b.String()
}

type lineWriter func(indent int, format string, args ...any)

func bind(w lineWriter, ip string) {
	if ip != "" {
		w(1, "bind %s", ip)
	}
}

func forward(w lineWriter, from string, upstreams []string) {
	to := ResolvConf
	if len(upstreams) > 0 {
		to = strings.Join(upstreams, " ")
	}
	w(1, "forward %s %s {", from, to)
	w(2, "max_concurrent %d", dnsMaxConcurrent)
	w(1, "}")
}

func cache(w lineWriter, seconds int32) {
	if seconds > 0 {
		w(1, "cache %d", seconds)
	}
}

func podRecordsOrDefault(p v1.DNSPodRecords) v1.DNSPodRecords {
	if p == "" {
		return v1.DNSPodRecordsInsecure
	}
	return p
}
