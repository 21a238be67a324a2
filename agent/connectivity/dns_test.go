package connectivity

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDNSProbe asks a real DNS server on loopback: an answer passes, NXDOMAIN and silence fail
// with a message naming the server and the name.
func TestDNSProbe(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		switch r.Question[0].Name {
		case "kubernetes.default.svc.cluster.local.":
			rr, _ := dns.NewRR("kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1")
			m.Answer = append(m.Answer, rr)
		case "silent.":
			return
		default:
			m.Rcode = dns.RcodeNameError
		}
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	server := netip.MustParseAddrPort(pc.LocalAddr().String())

	probe := func(name string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		_, err := DNSProbe{}.Probe(ctx, DNSTarget{Server: server, Name: name})
		return err
	}
	if err := probe("kubernetes.default.svc.cluster.local."); err != nil {
		t.Fatalf("answered lookup failed: %v", err)
	}
	if err := probe("kubernetes.default.svc.other.local."); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Errorf("NXDOMAIN: %v", err)
	}
	want := "no answer from " + server.String() + " for silent."
	if err := probe("silent."); err == nil || err.Error() != want {
		t.Errorf("silent server: %v, want %q", err, want)
	}
}
