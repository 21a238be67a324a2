package proxy

import (
	"encoding/binary"
	"hash/crc64"
	"net/netip"
	"slices"
	"sync"
)

var (
	// crcTable is the CRC-64 table of hashPort.
	crcTable = crc64.MakeTable(crc64.ECMA)
	// scratch holds encoding buffers of hashPort.
	scratch = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

// hashPort digests every field of sp that a backend programs. The hash is
// stable across processes (CRC-64 of a canonical encoding, no seed), so a
// backend may store a digest of it in the kernel and compare after a
// restart. CRC is not collision-resistant against an adversary; the
// inputs here are the cluster's own objects.
func hashPort(sp *ServicePort) uint64 {
	bp := scratch.Get().(*[]byte)
	b := (*bp)[:0]
	defer func() { *bp = b; scratch.Put(bp) }()
	u := func(v uint64) { b = binary.LittleEndian.AppendUint64(b, v) }
	str := func(s string) { u(uint64(len(s))); b = append(b, s...) }
	flags := func(fs ...bool) {
		var v uint64
		for i, f := range fs {
			if f {
				v |= 1 << i
			}
		}
		u(v)
	}
	addr := func(a netip.Addr) { b = a.AppendTo(b); b = append(b, 0) }
	str(string(sp.Protocol))
	addr(sp.ClusterIP)
	u(uint64(sp.Port)<<16 | uint64(sp.NodePort))
	u(uint64(len(sp.VIPs)))
	for _, v := range sp.VIPs {
		u(uint64(v.Kind)<<16 | uint64(v.Port))
		addr(v.Addr)
	}
	flags(sp.SessionAffinity, sp.InternalPolicyLocal, sp.ExternalPolicyLocal, sp.UsesTopology)
	u(uint64(sp.AffinityTimeoutSeconds))
	u(uint64(sp.HealthCheckNodePort)<<32 | uint64(sp.LocalEndpoints))
	for _, list := range [][]Endpoint{sp.Endpoints, sp.ClusterEndpoints, sp.ExternalEndpoints, sp.FromNodeEndpoints} {
		u(uint64(len(list)))
		for _, e := range list {
			addr(e.Addr)
			u(uint64(e.Port))
			flags(e.Ready, e.Serving, e.Terminating, e.Local)
			str(e.NodeName)
			u(uint64(len(e.ZoneHints)))
			for _, z := range e.ZoneHints {
				str(z)
			}
		}
	}
	return crc64.Checksum(b, crcTable)
}

// Changes lists what differs between two models, each list sorted.
type Changes struct {
	// Added are keys only in the next model, Removed only in the previous,
	// Changed in both with a different Hash.
	Added, Removed, Changed []Key
}

// Empty says nothing changed.
func (c Changes) Empty() bool { return len(c.Added)+len(c.Removed)+len(c.Changed) == 0 }

// Diff compares prev and next by key and hash. When next was made by a
// Tracker right after prev, only the keys the Tracker touched are
// compared (microseconds instead of a walk over every port).
func Diff(prev, next Model) Changes {
	if next.gen != 0 && next.gen == prev.gen {
		return Changes{} // the same Model
	}
	if next.base != 0 && next.base == prev.gen {
		return diffKeys(prev, next, next.touched)
	}
	var c Changes
	for k, sp := range next.Ports {
		old, ok := prev.Ports[k]
		switch {
		case !ok:
			c.Added = append(c.Added, k)
		case old.hash != sp.hash:
			c.Changed = append(c.Changed, k)
		}
	}
	for k := range prev.Ports {
		if _, ok := next.Ports[k]; !ok {
			c.Removed = append(c.Removed, k)
		}
	}
	for _, l := range [][]Key{c.Added, c.Removed, c.Changed} {
		slices.SortFunc(l, Key.Compare)
	}
	return c
}

// diffKeys compares prev and next at keys only.
func diffKeys(prev, next Model, keys []Key) Changes {
	var c Changes
	for _, k := range keys {
		old, inPrev := prev.Ports[k]
		sp, inNext := next.Ports[k]
		switch {
		case inNext && !inPrev:
			c.Added = append(c.Added, k)
		case inPrev && !inNext:
			c.Removed = append(c.Removed, k)
		case inPrev && inNext && old.hash != sp.hash:
			c.Changed = append(c.Changed, k)
		}
	}
	for _, l := range [][]Key{c.Added, c.Removed, c.Changed} {
		slices.SortFunc(l, Key.Compare)
	}
	return c
}
