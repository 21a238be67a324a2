package podnetwork

import (
	"strings"
	"testing"
	"time"

	"github.com/plexus-net/plexus/agent/masquerade"
	"github.com/plexus-net/plexus/agent/routing"
)

const (
	// syncedLogLine is what an agent logs when a sync wrote anything (a no-op sync logs
	// "Synced, nothing to change").
	syncedLogLine = `"msg":"Synced",`
	// noDataPlaneWrite is in that line when the sync wrote only the NodeNetwork status (e.g. a
	// new pod count), nothing in the kernel or the CNI files.
	noDataPlaneWrite = `"routeChanges":0,"masquerade":false,"nodeState":false,`
)

// dataPlaneWrites returns the log lines of syncs that wrote to the kernel or the CNI files.
func dataPlaneWrites(log string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, syncedLogLine) && !strings.Contains(l, noDataPlaneWrite) {
			out = append(out, l)
		}
	}
	return out
}

// dataPlane dumps what the agent programs in a node: the VXLAN device (with its ifindex, which
// changes if it is recreated), routes of both families and the masquerade table.
func dataPlane(t *testing.T, n *node) string {
	t.Helper()
	return strings.Join([]string{
		n.ns.Exec(t, "ip", "-d", "link", "show", routing.VXLANDeviceName),
		n.ns.Exec(t, "ip", "-4", "route", "show"),
		n.ns.Exec(t, "ip", "-6", "route", "show"),
		n.ns.Exec(t, "ip", "-4", "neigh", "show", "dev", routing.VXLANDeviceName, "nud", "permanent"),
		n.ns.Exec(t, "bridge", "fdb", "show", "dev", routing.VXLANDeviceName),
		n.ns.Exec(t, "nft", "list", "table", string(masquerade.TableFamily), masquerade.TableName),
	}, "\n")
}

// checkRestart keeps a TCP connection and a fixed-rate UDP stream running from the pod on node 1
// to the pod on node 3 (over VXLAN in Auto mode) while both nodes' agents are stopped with
// SIGTERM and started again, and checks that the connection survives, no datagram is lost and
// the restarted agents change nothing in the kernel.
func (e *env) checkRestart(t *testing.T) {
	src, dst := e.pods[0], e.pods[2]
	restarted := []*node{src.node, dst.node}
	before := map[*node]string{}
	for _, n := range restarted {
		before[n] = dataPlane(t, n)
	}
	tcp, err := startTCPStream(src, dst)
	if err != nil {
		t.Fatalf("open TCP connection %s -> %s: %v", src.name, dst.name, err)
	}
	defer tcp.close()
	udp, err := startUDPStream(src, dst)
	if err != nil {
		t.Fatalf("open UDP stream %s -> %s: %v", src.name, dst.name, err)
	}
	defer udp.Close()
	if !poll(pathBound, func() bool { rt, _, _ := tcp.stats(); return udp.Counts().Received >= 50 && rt >= 20 }) {
		t.Fatalf("streams did not get going")
	}

	down := time.Now()
	for _, n := range restarted {
		n.stopAgent(t)
	}
	stopped := time.Since(down)
	for _, n := range restarted {
		n.startAgent(t, e.bins, e.cluster.kubeconfig)
	}
	if !poll(readyBound, func() bool { return restarted[0].ready() && restarted[1].ready() }) {
		t.Fatalf("restarted agents not ready within %s; logs:\n%s\n%s", readyBound, restarted[0].log(), restarted[1].log())
	}
	gap := time.Since(down)
	sentAtReady := udp.Counts().Sent
	if !poll(pathBound, func() bool { return udp.Counts().Sent >= sentAtReady+restartPackets }) {
		t.Fatalf("UDP sender stalled")
	}
	udp.StopSending()
	sent := udp.Counts().Sent
	poll(2*time.Second, func() bool { return udp.Counts().Received == sent })
	final := udp.Counts()
	received, maxGap := final.Received, final.MaxGap
	roundTrips, maxRTT, tcpErr := tcp.stats()

	t.Logf("agent restart: agents down %s (SIGTERM to exit: %s), ready again after %s; "+
		"UDP %d sent, %d received, %d lost (%.0f pkt/s), longest gap between arrivals %s; "+
		"TCP %d round trips on one connection, slowest %s, error: %v",
		gap.Round(time.Millisecond), stopped.Round(time.Millisecond), gap.Round(time.Millisecond),
		sent, received, sent-received, float64(time.Second/udpInterval), maxGap.Round(time.Microsecond),
		roundTrips, maxRTT.Round(time.Microsecond), tcpErr)
	if tcpErr != nil {
		t.Errorf("the TCP connection broke during the agent restart: %v", tcpErr)
	}
	if received != sent {
		t.Errorf("UDP loss during the agent restart: %d of %d datagrams lost", sent-received, sent)
	}
	for _, n := range restarted {
		if after := dataPlane(t, n); after != before[n] {
			t.Errorf("the restarted agent of %s changed the data plane:\nbefore:\n%s\nafter:\n%s", n.name, before[n], after)
		}
		if w := dataPlaneWrites(n.log()); len(w) > 0 {
			t.Errorf("the restarted agent of %s wrote to the data plane: %s", n.name, strings.Join(w, "\n"))
		}
	}
}
