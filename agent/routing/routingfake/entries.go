package routingfake

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"

	"github.com/plexus-net/plexus/agent/routing"
)

func (f *Fake) link(dev string) (*link, error) {
	l, ok := f.links[dev]
	if !ok {
		return nil, fmt.Errorf("no such device %s", dev)
	}
	return l, nil
}

// ListAddresses implements routing.Interface.
func (f *Fake) ListAddresses(dev string) ([]netip.Prefix, error) {
	l, err := f.link(dev)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.addresses), nil
}

// AddAddress implements routing.Interface.
func (f *Fake) AddAddress(dev string, a netip.Prefix) error {
	if err := f.record("AddAddress %s dev %s", a, dev); err != nil {
		return err
	}
	l, err := f.link(dev)
	if err != nil {
		return err
	}
	if !slices.Contains(l.addresses, a) {
		l.addresses = append(l.addresses, a)
	}
	return nil
}

// DelAddress implements routing.Interface.
func (f *Fake) DelAddress(dev string, a netip.Prefix) error {
	if err := f.record("DelAddress %s dev %s", a, dev); err != nil {
		return err
	}
	l, err := f.link(dev)
	if err != nil {
		return err
	}
	l.addresses = slices.DeleteFunc(l.addresses, func(h netip.Prefix) bool { return h == a })
	return nil
}

// ListFDB implements routing.Interface.
func (f *Fake) ListFDB(dev string) ([]routing.FDBEntry, error) {
	l, err := f.link(dev)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.fdb), nil
}

// SetFDB implements routing.Interface.
func (f *Fake) SetFDB(dev string, e routing.FDBEntry) error {
	if err := f.record("SetFDB %s dev %s", e, dev); err != nil {
		return err
	}
	l, err := f.link(dev)
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(l.fdb, func(h routing.FDBEntry) bool { return bytes.Equal(h.MAC, e.MAC) }); i >= 0 {
		l.fdb[i] = e
		return nil
	}
	l.fdb = append(l.fdb, e)
	return nil
}

// DelFDB implements routing.Interface.
func (f *Fake) DelFDB(dev string, e routing.FDBEntry) error {
	if err := f.record("DelFDB %s dev %s", e, dev); err != nil {
		return err
	}
	l, err := f.link(dev)
	if err != nil {
		return err
	}
	l.fdb = slices.DeleteFunc(l.fdb, e.Equal)
	return nil
}

// ListNeighbors implements routing.Interface.
func (f *Fake) ListNeighbors(dev string) ([]routing.Neighbor, error) {
	l, err := f.link(dev)
	if err != nil {
		return nil, err
	}
	return slices.Clone(l.neighbors), nil
}

// SetNeighbor implements routing.Interface.
func (f *Fake) SetNeighbor(dev string, n routing.Neighbor) error {
	if err := f.record("SetNeighbor %s dev %s", n, dev); err != nil {
		return err
	}
	l, err := f.link(dev)
	if err != nil {
		return err
	}
	if i := slices.IndexFunc(l.neighbors, func(h routing.Neighbor) bool { return h.IP == n.IP }); i >= 0 {
		l.neighbors[i] = n
		return nil
	}
	l.neighbors = append(l.neighbors, n)
	return nil
}

// DelNeighbor implements routing.Interface.
func (f *Fake) DelNeighbor(dev string, n routing.Neighbor) error {
	if err := f.record("DelNeighbor %s dev %s", n, dev); err != nil {
		return err
	}
	l, err := f.link(dev)
	if err != nil {
		return err
	}
	l.neighbors = slices.DeleteFunc(l.neighbors, func(h routing.Neighbor) bool { return h.IP == n.IP })
	return nil
}
