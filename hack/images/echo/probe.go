package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
)

// probePayload is what a probe sends; the echo servers return it unchanged.
const probePayload = "plexus-probe\n"

// ProbeResult is one target's outcome in the probe's JSON line.
type ProbeResult struct {
	// Target is as given: <proto>/<address>:<port>, proto one of tcp, udp, sctp (an echo
	// answered), connect (a TCP connection was accepted, for servers that echo nothing) and dns (a
	// DNS server answered a question over UDP).
	Target string `json:"target"`
	// OK means an answer came back: the echoed payload (TCP, UDP) or an INIT-ACK (SCTP).
	OK bool `json:"ok"`
	// Error says why not, when not OK.
	Error string `json:"error,omitempty"`
	// Millis is how long the attempt took.
	Millis int64 `json:"ms"`
}

// runProbe is `echo probe [-timeout D] target...`: it tries every target at once, each bounded by
// the timeout, and prints one JSON line {"results":[...]} in the order of the targets. It exits 0
// whatever the targets answered; a malformed target is an error.
func runProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	timeout := fs.Duration("timeout", time.Second, "how long one target may take to answer")
	if err := fs.Parse(args); err != nil {
		return err
	}
	results := make([]ProbeResult, fs.NArg())
	var wg sync.WaitGroup
	for i, t := range fs.Args() {
		proto, addr, err := parseTarget(t)
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			err := probeOne(proto, addr, *timeout)
			results[i] = ProbeResult{Target: t, OK: err == nil, Millis: time.Since(start).Milliseconds()}
			if err != nil {
				results[i].Error = err.Error()
			}
		}()
	}
	wg.Wait()
	return json.NewEncoder(os.Stdout).Encode(struct {
		Results []ProbeResult `json:"results"`
	}{results})
}

// probeProtocols are the protocols a target may name.
var probeProtocols = map[string]bool{"tcp": true, "udp": true, "sctp": true, "connect": true, "dns": true}

// parseTarget splits "<proto>/<address>:<port>".
func parseTarget(t string) (string, netip.AddrPort, error) {
	proto, hostPort, ok := strings.Cut(t, "/")
	if !ok || !probeProtocols[proto] {
		return "", netip.AddrPort{}, fmt.Errorf("target %q: want <tcp|udp|sctp|connect|dns>/<address>:<port>", t)
	}
	ap, err := netip.ParseAddrPort(hostPort)
	if err != nil {
		return "", netip.AddrPort{}, fmt.Errorf("target %q: %w", t, err)
	}
	return proto, ap, nil
}

// probeOne makes one attempt: nil when the target answered.
func probeOne(proto string, addr netip.AddrPort, timeout time.Duration) error {
	switch proto {
	case "sctp":
		return probeSCTP(addr, timeout)
	case "connect":
		c, err := net.DialTimeout("tcp", addr.String(), timeout)
		if err == nil {
			c.Close()
		}
		return err
	case "dns":
		return probeDNS(addr, timeout)
	}
	c, err := net.DialTimeout(proto, addr.String(), timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, probePayload); err != nil {
		return err
	}
	got := make([]byte, len(probePayload))
	if proto == "udp" {
		// One datagram back: the echo of ours.
		n, err := c.Read(got)
		if err != nil {
			return err
		}
		got = got[:n]
	} else if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, []byte(probePayload)) {
		return fmt.Errorf("answer %q is not the echo", got)
	}
	return nil
}

// probeDNS asks server for the A record of kubernetes.default.svc.cluster.local over UDP: any
// answer with the question's ID, whatever its code, means the server was reached.
func probeDNS(server netip.AddrPort, timeout time.Duration) error {
	c, err := net.DialTimeout("udp", server.String(), timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	id := uint16(rand.Uint32())
	// Header: ID, flags (recursion desired), one question; then the name, type A, class IN.
	q := []byte{byte(id >> 8), byte(id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, label := range strings.Split("kubernetes.default.svc.cluster.local", ".") {
		q = append(append(q, byte(len(label))), label...)
	}
	q = append(q, 0, 0, 1, 0, 1)
	if _, err := c.Write(q); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return err
		}
		if n >= 12 && uint16(buf[0])<<8|uint16(buf[1]) == id && buf[2]&0x80 != 0 {
			return nil
		}
	}
}

// serveProbePorts serves each port over TCP and UDP (both families: the sockets are dual-stack)
// and SCTP (a raw socket per family), echoing what arrives. Errors opening a listener are fatal
// to the caller; SCTP errors after that are reported on errc.
func serveProbePorts(ports []uint16, errc chan<- error) error {
	set := map[uint16]bool{}
	for _, p := range ports {
		set[p] = true
		l, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			return err
		}
		go serveTCPEcho(l)
		pc, err := net.ListenPacket("udp", fmt.Sprintf(":%d", p))
		if err != nil {
			return err
		}
		go serveUDPEcho(pc)
	}
	for _, network := range []string{"ip4:132", "ip6:132"} {
		go func() { errc <- serveSCTP(network, set) }()
	}
	return nil
}

// parsePorts reads a comma-separated port list ("80,81"); empty is none.
func parsePorts(s string) ([]uint16, error) {
	var out []uint16
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' }) {
		var p uint16
		if _, err := fmt.Sscanf(f, "%d", &p); err != nil || p == 0 {
			return nil, fmt.Errorf("port %q: want 1-65535", f)
		}
		out = append(out, p)
	}
	return out, nil
}
