package connectivity

import (
	"errors"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	localA  = []netip.Addr{netip.MustParseAddr("10.244.0.0"), netip.MustParseAddr("fd10:244::")}
	peerB4  = netip.MustParseAddr("10.244.1.0")
	peerB6  = netip.MustParseAddr("fd10:244:0:1::")
	peerC4  = netip.MustParseAddr("10.244.2.0")
	peerB   = Peer{Name: "b", Addrs: []netip.Addr{peerB4, peerB6}}
	peerC   = Peer{Name: "c", Addrs: []netip.Addr{peerC4}}
	errLost = errors.New("no answer to the UDP probe")
)

func ok(p string, a netip.Addr) Result   { return Result{Peer: p, Addr: a} }
func fail(p string, a netip.Addr) Result { return Result{Peer: p, Addr: a, Err: errLost} }

// round is one Tracker.Round of a test: the peers probed, the results, DNS.
type round struct {
	peers   []Peer
	results []Result
	dns     *DNSResult
}

func TestTracker(t *testing.T) {
	both := []Peer{peerB, peerC}
	allOK := round{both, []Result{ok("b", peerB4), ok("b", peerB6), ok("c", peerC4)}, nil}
	cFails := round{both, []Result{ok("b", peerB4), ok("b", peerB6), fail("c", peerC4)}, nil}
	b6Fails := round{both, []Result{ok("b", peerB4), fail("b", peerB6), ok("c", peerC4)}, nil}
	cUnreachable := []Unreachable{{Peer: "c", Addrs: []netip.Addr{peerC4}, Errs: []string{errLost.Error()}}}
	dnsFail := &DNSResult{Err: errors.New("no answer from 10.96.0.10:53 for kubernetes.default.svc.cluster.local.")}
	cases := []struct {
		name   string
		rounds []round
		// wantUnreachable and wantDNS are the report after the last round.
		wantUnreachable []Unreachable
		wantDNS         string
	}{
		{"all answer", []round{allOK, allOK}, nil, ""},
		{"fewer failures than the threshold are not reported", []round{cFails, cFails}, nil, ""},
		{"threshold failures in a row are", []round{cFails, cFails, cFails}, cUnreachable, ""},
		{"an answer in between resets the count", []round{cFails, cFails, allOK, cFails, cFails}, nil, ""},
		{"one answer recovers", []round{cFails, cFails, cFails, cFails, allOK}, nil, ""},
		{"one family failing makes the peer unreachable, naming that address", []round{b6Fails, b6Fails, b6Fails},
			[]Unreachable{{Peer: "b", Addrs: []netip.Addr{peerB6}, Errs: []string{errLost.Error()}}}, ""},
		{"a peer that goes away is forgotten", []round{cFails, cFails, cFails, {[]Peer{peerB}, []Result{ok("b", peerB4), ok("b", peerB6)}, nil}}, nil, ""},
		{"a peer that comes back starts reachable", []round{cFails, cFails, cFails,
			{[]Peer{peerB}, []Result{ok("b", peerB4), ok("b", peerB6)}, nil}, cFails, cFails}, nil, ""},
		{"a new peer is reported after threshold failures", []round{
			{[]Peer{peerB}, []Result{ok("b", peerB4), ok("b", peerB6)}, nil}, cFails, cFails, cFails}, cUnreachable, ""},
		{"a missing result counts as neither", []round{cFails, cFails, {both, []Result{ok("b", peerB4), ok("b", peerB6)}, nil}, cFails}, cUnreachable, ""},
		{"DNS failing", []round{{both, allOK.results, dnsFail}, {both, allOK.results, dnsFail}, {both, allOK.results, dnsFail}}, nil, dnsFail.Err.Error()},
		{"DNS recovers", []round{{both, allOK.results, dnsFail}, {both, allOK.results, dnsFail}, {both, allOK.results, dnsFail},
			{both, allOK.results, &DNSResult{}}}, nil, ""},
		{"DNS no longer probed", []round{{both, allOK.results, dnsFail}, {both, allOK.results, dnsFail}, {both, allOK.results, dnsFail}, allOK}, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := Tracker{Threshold: 3}
			for _, r := range c.rounds {
				tr.Round(localA, r.peers, r.results, r.dns)
			}
			got := tr.Report()
			if !got.Probed {
				t.Fatal("report says not probed after rounds")
			}
			if diff := cmp.Diff(c.wantUnreachable, got.Unreachable, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
				t.Errorf("unreachable (-want +got):\n%s", diff)
			}
			if got.DNSError != c.wantDNS {
				t.Errorf("DNS error %q, want %q", got.DNSError, c.wantDNS)
			}
			if got.Healthy() != (len(c.wantUnreachable) == 0 && c.wantDNS == "") {
				t.Errorf("Healthy() = %v for %+v", got.Healthy(), got)
			}
		})
	}
}

func TestTrackerNotProbedKeepsCounts(t *testing.T) {
	tr := Tracker{Threshold: 2}
	if r := tr.Report(); r.Probed || r.NotProbedReason != "" {
		t.Fatalf("a tracker without rounds reports %+v, want nothing", r)
	}
	both := []Peer{peerB, peerC}
	tr.Round(localA, both, []Result{fail("c", peerC4)}, nil)
	tr.NotProbed("this node has no pod CIDR yet")
	if r := tr.Report(); r.Probed || r.NotProbedReason == "" {
		t.Fatalf("report after NotProbed: %+v", r)
	}
	tr.Round(localA, both, []Result{fail("c", peerC4)}, nil)
	if r := tr.Report(); len(r.Unreachable) != 1 || r.Unreachable[0].Peer != "c" {
		t.Fatalf("the failure before the pause did not count: %+v", r)
	}
}
