package ipvs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/proxy/healthcheck"
)

// udpFlow is one UDP socket of a guest namespace connected to a virtual
// IP: every datagram it sends belongs to the same flow (same source port),
// as a long-lived client's would.
type udpFlow struct {
	c net.Conn
}

// openFlow opens the flow from n to target; the test closes it.
func (n *guestNS) openFlow(t *testing.T, target netip.AddrPort) *udpFlow {
	t.Helper()
	var c net.Conn
	err := n.do(func() error {
		var err error
		c, err = net.Dial("udp", target.String())
		return err
	})
	if err != nil {
		t.Fatalf("%s: UDP socket to %s: %v", n.name, target, err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpFlow{c: c}
}

// ask sends one datagram and returns the name of the backend that answered
// within timeout.
func (f *udpFlow) ask(timeout time.Duration) (string, error) {
	if _, err := f.c.Write([]byte("?")); err != nil {
		return "", err
	}
	_ = f.c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 128)
	n, err := f.c.Read(buf)
	if err != nil {
		return "", err
	}
	name, _, _ := strings.Cut(strings.TrimSpace(string(buf[:n])), " ")
	return name, nil
}

// healthCheck is an answer of a health check node port.
type healthCheck struct {
	code           int
	localEndpoints int
}

// getHealth asks the health check server at target from n, over HTTP.
func (n *guestNS) getHealth(target netip.AddrPort) (healthCheck, error) {
	tr := &http.Transport{
		DisableKeepAlives: true,
		// The socket is made in n; it stays there whichever thread reads it.
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := n.do(func() error {
				var err error
				c, err = net.DialTimeout(network, addr, dialTimeout)
				return err
			})
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: dialTimeout}
	resp, err := cl.Get(fmt.Sprintf("http://%s/", target))
	if err != nil {
		return healthCheck{}, err
	}
	defer resp.Body.Close()
	var body healthcheck.Response
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return healthCheck{}, fmt.Errorf("health check body: %w", err)
	}
	return healthCheck{code: resp.StatusCode, localEndpoints: body.LocalEndpoints}, nil
}
