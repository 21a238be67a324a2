package dnsupstream

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func testZone() Zone {
	return Zone{Origin: "lab.plexus.test", Identity: "upstream-a", Hosts: map[string][]netip.Addr{
		"echo": {netip.MustParseAddr("10.99.0.80"), netip.MustParseAddr("fd10:99::80")},
		"@":    {netip.MustParseAddr("10.99.0.1")},
	}}
}

// start serves testZone on a loopback port and returns its address.
func start(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, "127.0.0.1:0", testZone(), func(u, _ net.Addr) { addr <- u.String() }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case a := <-addr:
		return a
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}

func TestServerAnswersItsZoneAndRefusesTheRest(t *testing.T) {
	addr := start(t)
	for _, net := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: net, Timeout: 5 * time.Second}
		for _, tc := range []struct {
			name      string
			qtype     uint16
			wantRcode int
			want      []string
		}{
			{"echo.lab.plexus.test.", dns.TypeA, dns.RcodeSuccess, []string{"10.99.0.80"}},
			{"ECHO.lab.plexus.test.", dns.TypeAAAA, dns.RcodeSuccess, []string{"fd10:99::80"}},
			{"echo.lab.plexus.test.", dns.TypeTXT, dns.RcodeSuccess, []string{"upstream-a"}},
			{"lab.plexus.test.", dns.TypeA, dns.RcodeSuccess, []string{"10.99.0.1"}},
			{"lab.plexus.test.", dns.TypeAAAA, dns.RcodeSuccess, nil},
			{"nothing.lab.plexus.test.", dns.TypeA, dns.RcodeNameError, nil},
			{"example.com.", dns.TypeA, dns.RcodeRefused, nil},
			{"plexus.test.", dns.TypeA, dns.RcodeRefused, nil},
			{"10.0.99.10.in-addr.arpa.", dns.TypePTR, dns.RcodeRefused, nil},
		} {
			q := new(dns.Msg)
			q.SetQuestion(tc.name, tc.qtype)
			r, _, err := c.Exchange(q, addr)
			if err != nil {
				t.Fatalf("%s %s %s: %v", net, tc.name, dns.TypeToString[tc.qtype], err)
			}
			var got []string
			for _, rr := range r.Answer {
				switch v := rr.(type) {
				case *dns.A:
					got = append(got, v.A.String())
				case *dns.AAAA:
					got = append(got, v.AAAA.String())
				case *dns.TXT:
					got = append(got, v.Txt...)
				}
			}
			if r.Rcode != tc.wantRcode || len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Errorf("%s %s %s: rcode %s answer %v, want %s %v", net, tc.name, dns.TypeToString[tc.qtype],
					dns.RcodeToString[r.Rcode], got, dns.RcodeToString[tc.wantRcode], tc.want)
			}
			if tc.wantRcode == dns.RcodeRefused && r.RecursionAvailable {
				t.Errorf("%s: a server that never recurses must not offer recursion", tc.name)
			}
			if tc.wantRcode == dns.RcodeNameError && (len(r.Ns) != 1 || r.Ns[0].Header().Rrtype != dns.TypeSOA) {
				t.Errorf("%s: NXDOMAIN without the zone's SOA (resolvers cannot cache it)", tc.name)
			}
		}
	}
}
