package main

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestDNSLoadCountsLookupsAndDrops runs the load generator against a server on loopback that
// drops the AAAA question of every tenth lookup: those lookups must show as retried after one
// attempt that timed out at glibc's 5 s, and every other lookup as fast.
func TestDNSLoadCountsLookupsAndDrops(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var aaaa atomic.Int64
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		if q.Question[0].Qtype == dns.TypeAAAA && aaaa.Add(1) == 3 {
			return // dropped once: that lookup retries after 5 s
		}
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeNameError)
		_ = w.WriteMsg(m)
	})}
	go func() { _ = srv.ActivateAndServe() }()
	defer func() { _ = srv.Shutdown() }()

	rep := runDNSLoad(context.Background(), dnsLoadRequest{Server: pc.LocalAddr().String(), Name: "example.test.", Unique: true,
		Duration: 300 * time.Millisecond, Workers: 4, Rate: 200})
	if rep.Lookups < 20 || rep.Failed != 0 {
		t.Fatalf("report %+v: want some lookups, none failed", rep)
	}
	if rep.Retried != 1 || rep.TimedOut != 1 || rep.Slow != 1 || rep.MaxUs < dnsLoadTimeout.Microseconds() {
		t.Fatalf("report %+v: want exactly one lookup retried after one 5 s timeout", rep)
	}
	if rep.Rcodes["NXDOMAIN"] != 2*rep.Lookups {
		t.Fatalf("rcodes %v: want two NXDOMAIN answers per lookup (%d)", rep.Rcodes, rep.Lookups)
	}
	if rep.P50us >= time.Second.Microseconds() {
		t.Fatalf("p50 %d µs: loopback lookups are fast", rep.P50us)
	}
}
