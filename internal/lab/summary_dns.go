package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The DNS rows of the lab summary: from every echo pod (one per node), names asked of kube-dns
// at each of its ClusterIPs, as a pod's resolver asks them.
const (
	// dnsServiceNamespace and dnsServiceName are where kube-dns is (controllers/render; not
	// imported, so plexusctl's lab does not link the operator's render).
	dnsServiceNamespace = "kube-system"
	dnsServiceName      = "kube-dns"
	// defaultClusterDomain is used when the ClusterNetwork does not say.
	defaultClusterDomain = "cluster.local"
	// dnsProbeTimeout bounds one lookup of the summary.
	dnsProbeTimeout = 3 * time.Second
	// dnsSettle is how long a failing cell is asked again: right after lab up CoreDNS may still be
	// starting (nothing in lab up waits for it), and the summary should show the lab, not its
	// first seconds.
	dnsSettle = 30 * time.Second
	// dnsRetryPause separates the attempts of a failing cell.
	dnsRetryPause = 500 * time.Millisecond
)

// dnsQuestion is one column of the DNS rows: a name, the address family asked for, and the
// addresses the answer must hold exactly.
type dnsQuestion struct {
	label  string
	name   string
	family string // "ip4" or "ip6"
	server netip.Addr
	want   []string
}

// dnsQuestions lists the columns: the kubernetes Service's A record and the echo Service's A and
// AAAA records through every kube-dns ClusterIP, and the lab upstream's own name, which CoreDNS
// can only answer by forwarding.
func (c Config) dnsQuestions(m matrix, kubeDNS []string, domain string) []dnsQuestion {
	var qs []dnsQuestion
	echoV4, echoV6 := splitFamilies(m.clusterIPs)
	for _, s := range kubeDNS {
		server, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		at := " @" + s
		qs = append(qs, dnsQuestion{label: "kubernetes.default A" + at, name: "kubernetes.default.svc." + domain + ".", family: "ip4", server: server, want: []string{KubernetesVIP}})
		if len(echoV4) > 0 {
			qs = append(qs, dnsQuestion{label: EchoName + "." + WorkloadNamespace + " A" + at, name: EchoName + "." + WorkloadNamespace + ".svc." + domain + ".", family: "ip4", server: server, want: echoV4})
		}
		if len(echoV6) > 0 {
			qs = append(qs, dnsQuestion{label: EchoName + "." + WorkloadNamespace + " AAAA" + at, name: EchoName + "." + WorkloadNamespace + ".svc." + domain + ".", family: "ip6", server: server, want: echoV6})
		}
	}
	if len(kubeDNS) > 0 {
		server, _ := netip.ParseAddr(kubeDNS[0])
		qs = append(qs, dnsQuestion{label: "gateway." + LabDNSZone + " A @" + kubeDNS[0] + " (forwarded to the lab's upstream)",
			name: "gateway." + LabDNSZone, family: "ip4", server: server, want: []string{c.gatewayV4().String()}})
	}
	return qs
}

func splitFamilies(ips []string) (v4, v6 []string) {
	for _, ip := range ips {
		if family(ip) == "IPv4" {
			v4 = append(v4, ip)
		} else {
			v6 = append(v6, ip)
		}
	}
	return v4, v6
}

// kubeDNSAndDomain reads kube-dns' ClusterIPs and the served cluster domain.
func (c Config) kubeDNSAndDomain() ([]string, string, error) {
	out, err := c.kubectl("", "-n", dnsServiceNamespace, "get", "service", dnsServiceName, "-o", "json")
	if err != nil {
		return nil, "", fmt.Errorf("read Service %s/%s: %w", dnsServiceNamespace, dnsServiceName, err)
	}
	var svc corev1.Service
	if err := json.Unmarshal([]byte(out), &svc); err != nil {
		return nil, "", err
	}
	domain := defaultClusterDomain
	if d, err := c.kubectl("", "get", "clusternetwork", "default", "-o", "jsonpath={.status.effective.dns.clusterDomain}"); err == nil && strings.TrimSpace(d) != "" {
		domain = strings.TrimSuffix(strings.TrimSpace(d), ".")
	}
	return svc.Spec.ClusterIPs, domain, nil
}

// lookupFrom asks server, from inside the network namespace nsPath, for name's addresses of
// family, with Go's own resolver (the lab links no DNS library).
func lookupFrom(nsPath string, server netip.Addr, name, family string) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return DialInNetns(ctx, nsPath, network, netip.AddrPortFrom(server, 53).String())
	}}
	ctx, cancel := context.WithTimeout(context.Background(), dnsProbeTimeout)
	defer cancel()
	ips, err := r.LookupIP(ctx, family, name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	sort.Strings(out)
	return out, nil
}

// PrintDNSMatrix probes and prints the DNS rows of the summary: every echo pod asks every
// question of dnsQuestions. It returns the number of failed cells.
func (c Config) PrintDNSMatrix() (int, error) {
	m, err := c.gatherMatrix()
	if err != nil {
		return 0, fmt.Errorf("read the sample workloads (is the lab up?): %w", err)
	}
	return c.printDNSMatrix(m)
}

func (c Config) printDNSMatrix(m matrix) (int, error) {
	kubeDNS, domain, err := c.kubeDNSAndDomain()
	if err != nil {
		return 0, err
	}
	qs := c.dnsQuestions(m, kubeDNS, domain)
	type result struct {
		got []string
		err error
	}
	results := make([][]result, len(m.pods))
	var wg sync.WaitGroup
	for i, p := range m.pods {
		results[i] = make([]result, len(qs))
		for j, q := range qs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if p.netns == "" {
					results[i][j].err = fmt.Errorf("no process of the pod found on this machine")
					return
				}
				want := slices.Clone(q.want)
				sort.Strings(want)
				for start := time.Now(); ; time.Sleep(dnsRetryPause) {
					got, err := lookupFrom(p.netns, q.server, q.name, q.family)
					if err == nil && !slices.Equal(got, want) {
						err = fmt.Errorf("answered %v, want %v", got, want)
					}
					results[i][j] = result{got: got, err: err}
					if err == nil || time.Since(start) > dnsSettle {
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	fmt.Fprintf(c.Out, "\nDNS (asked from inside each pod's network namespace, of kube-dns at %s):\n", strings.Join(kubeDNS, ", "))
	w := tabwriter.NewWriter(c.Out, 0, 4, 2, ' ', 0)
	fmt.Fprint(w, "FROM \\ ASKED")
	for j := range qs {
		fmt.Fprintf(w, "\t[%d]", j+1)
	}
	fmt.Fprintln(w)
	failed := 0
	var failures []string
	for i, p := range m.pods {
		fmt.Fprint(w, "pod "+p.name+"@"+p.node)
		for j := range qs {
			if r := results[i][j]; r.err != nil {
				failed++
				fmt.Fprint(w, "\t✗")
				failures = append(failures, fmt.Sprintf("  ✗ pod %s@%s asking %s: %v", p.name, p.node, qs[j].label, r.err))
			} else {
				fmt.Fprint(w, "\t✓")
			}
		}
		fmt.Fprintln(w)
	}
	_ = w.Flush()
	for j, q := range qs {
		fmt.Fprintf(c.Out, "  [%d] %s -> %s\n", j+1, q.label, strings.Join(q.want, ", "))
	}
	for _, f := range failures {
		fmt.Fprintln(c.Out, f)
	}
	cells := len(m.pods) * len(qs)
	fmt.Fprintf(c.Out, "%d of %d DNS lookups ✓\n", cells-failed, cells)
	return failed, nil
}
