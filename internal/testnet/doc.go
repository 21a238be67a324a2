// Package testnet is the shared harness for real-kernel tests: throwaway
// network namespaces, veth links, an underlay of Linux bridges that stands in
// for the machines' network, and a tiny TCP echo service that reports the
// peer address it saw (to prove that no NAT happened on the way).
//
// Every object is created inside namespaces the test owns and is removed by
// t.Cleanup, also when the test fails. Tests must call RequireRoot and then
// CheckNoOverlap with every range they intend to use before creating anything.
//
// Typical use:
//
//	testnet.RequireRoot(t)
//	if err := testnet.CheckNoOverlap(underlay4, pods4); err != nil {
//		t.Fatal(err)
//	}
//	ul := testnet.NewUnderlay(t)
//	seg := ul.AddSegment(t, "a", netip.MustParsePrefix("10.99.0.1/24"))
//	node := testnet.NewNetns(t, "node1")
//	seg.Attach(t, node, "eth0", netip.MustParsePrefix("10.99.0.11/24"))
package testnet
