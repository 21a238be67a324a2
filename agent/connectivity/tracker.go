package connectivity

import (
	"net/netip"
	"slices"
	"time"
)

// Result is the outcome of one probe of one peer address.
type Result struct {
	// Peer is the peer's node name and Addr the probe address probed.
	Peer string
	Addr netip.Addr
	// RTT is the round trip time of an answered probe.
	RTT time.Duration
	// Err is why the probe failed; nil: answered.
	Err error
}

// DNSResult is the outcome of one DNS probe.
type DNSResult struct {
	RTT time.Duration
	Err error
}

// Unreachable is a peer with addresses that failed the last probes in a row.
type Unreachable struct {
	// Peer is the node name.
	Peer string
	// Addrs are its failing probe addresses, each with its last error.
	Addrs []netip.Addr
	Errs  []string
}

// Report is what the probes found: what the status reports. Two Reports are equal (==
// Equal) exactly when the status would not change.
type Report struct {
	// Probed says a round ran; false: NotProbedReason says why not.
	Probed          bool
	NotProbedReason string
	// LocalAddrs are this node's probe addresses.
	LocalAddrs []netip.Addr
	// Peers is the number of peers probed.
	Peers int
	// Unreachable are the peers failing, by name.
	Unreachable []Unreachable
	// DNSProbed says DNS is probed; DNSError is its last error while it fails.
	DNSProbed bool
	DNSError  string
}

// Healthy reports whether every peer and DNS answer.
func (r Report) Healthy() bool { return r.Probed && len(r.Unreachable) == 0 && r.DNSError == "" }

// Equal reports whether r and o would be reported alike.
func (r Report) Equal(o Report) bool {
	return r.Probed == o.Probed && r.NotProbedReason == o.NotProbedReason && slices.Equal(r.LocalAddrs, o.LocalAddrs) &&
		r.Peers == o.Peers && r.DNSProbed == o.DNSProbed && r.DNSError == o.DNSError &&
		slices.EqualFunc(r.Unreachable, o.Unreachable, func(a, b Unreachable) bool {
			return a.Peer == b.Peer && slices.Equal(a.Addrs, b.Addrs) && slices.Equal(a.Errs, b.Errs)
		})
}

// addrState counts one peer address's failures in a row.
type addrState struct {
	failures int
	lastErr  string
}

// Tracker turns rounds of probe results into a Report: a peer address is unreachable once it
// failed Threshold probes in a row, and reachable again at its first answer. A peer that is
// no longer probed is forgotten; a new one starts reachable. Pure state, no clock, no I/O; one
// goroutine uses it.
type Tracker struct {
	// Threshold is the failures in a row that make an address unreachable (DefaultFailureThreshold
	// if < 1).
	Threshold int

	addrs      map[string]map[netip.Addr]*addrState
	dns        addrState
	dnsProbed  bool
	localAddrs []netip.Addr
	peers      []Peer
	probed     bool
	notProbed  string
}

func (t *Tracker) threshold() int {
	if t.Threshold < 1 {
		return DefaultFailureThreshold
	}
	return t.Threshold
}

// NotProbed records a round that could not probe, and why: the report says so (the counts
// are kept, so a short hiccup of the node's own setup does not reset them).
func (t *Tracker) NotProbed(reason string) { t.probed, t.notProbed = false, reason }

// Round records one round: the local probe addresses, the peers probed and their results
// (one per peer address; a missing one counts as neither success nor failure), and the DNS
// result (nil: DNS not probed).
func (t *Tracker) Round(local []netip.Addr, peers []Peer, results []Result, dns *DNSResult) {
	if t.addrs == nil {
		t.addrs = map[string]map[netip.Addr]*addrState{}
	}
	t.probed, t.notProbed = true, ""
	t.localAddrs, t.peers = slices.Clone(local), slices.Clone(peers)
	keep := map[string]map[netip.Addr]*addrState{}
	for _, p := range peers {
		old := t.addrs[p.Name]
		keep[p.Name] = map[netip.Addr]*addrState{}
		for _, a := range p.Addrs {
			st := &addrState{}
			if o, ok := old[a]; ok {
				st = o
			}
			keep[p.Name][a] = st
		}
	}
	t.addrs = keep
	for _, r := range results {
		st, ok := t.addrs[r.Peer][r.Addr]
		if !ok {
			continue
		}
		record(st, r.Err)
	}
	t.dnsProbed = dns != nil
	if dns == nil {
		t.dns = addrState{}
	} else {
		record(&t.dns, dns.Err)
	}
}

func record(st *addrState, err error) {
	if err == nil {
		*st = addrState{}
		return
	}
	st.failures++
	st.lastErr = err.Error()
}

// Report returns what the rounds so far found.
func (t *Tracker) Report() Report {
	r := Report{Probed: t.probed, NotProbedReason: t.notProbed, LocalAddrs: slices.Clone(t.localAddrs), Peers: len(t.peers), DNSProbed: t.dnsProbed}
	if !t.probed && t.notProbed == "" {
		return Report{}
	}
	k := t.threshold()
	for _, p := range t.peers {
		var u Unreachable
		for _, a := range p.Addrs {
			if st := t.addrs[p.Name][a]; st != nil && st.failures >= k {
				u.Addrs = append(u.Addrs, a)
				u.Errs = append(u.Errs, st.lastErr)
			}
		}
		if len(u.Addrs) > 0 {
			u.Peer = p.Name
			r.Unreachable = append(r.Unreachable, u)
		}
	}
	if t.dnsProbed && t.dns.failures >= k {
		r.DNSError = t.dns.lastErr
	}
	return r
}
