package routing

// UseInlineNextHops makes n write routes as a kernel without nexthop
// objects needs them, so tests cover that path on any kernel.
func UseInlineNextHops(n *Netlink) {
	n.inlineOnly = true
	n.nh.loaded = false
}
