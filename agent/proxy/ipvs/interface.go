package ipvs

import (
	"errors"
	"net/netip"
)

// ErrExists is wrapped by Interface errors when the kernel already has a
// virtual or real server with that key.
var ErrExists = errors.New("already exists")

// ErrNotFound is wrapped by Interface errors when an update names a virtual
// or real server the kernel does not have.
var ErrNotFound = errors.New("not found")

// Interface is IPVS in one network namespace, in domain terms. Only
// address-based virtual servers exist for it: fwmark services are neither
// listed nor touched. Implementations: NewKernel and ipvsfake.Fake.
type Interface interface {
	// ListVirtualServers returns every address-based virtual server (of
	// anyone: ownership is the caller's business). None is an empty list.
	ListVirtualServers() ([]VirtualServer, error)
	// AddVirtualServer creates vs without real servers; a virtual server
	// with its key fails with an error wrapping ErrExists.
	AddVirtualServer(vs VirtualServer) error
	// UpdateVirtualServer sets the scheduler and persistence of the
	// virtual server with vs's key; absent is an error wrapping ErrNotFound.
	UpdateVirtualServer(vs VirtualServer) error
	// DeleteVirtualServer deletes the virtual server with key k and its
	// real servers; absent is not an error.
	DeleteVirtualServer(k VirtualServerKey) error

	// ListRealServers returns the real servers of the virtual server with
	// key k; none, or no such virtual server, is an empty list (the kernel
	// does not tell the two apart).
	ListRealServers(k VirtualServerKey) ([]RealServer, error)
	// AddRealServer adds rs to the virtual server with key k; a real server
	// with rs's address and port fails with an error wrapping ErrExists.
	AddRealServer(k VirtualServerKey, rs RealServer) error
	// UpdateRealServer sets the weight of rs; absent is an error wrapping
	// ErrNotFound.
	UpdateRealServer(k VirtualServerKey, rs RealServer) error
	// DeleteRealServer removes rs (by address and port) from the virtual
	// server with key k; absent (either) is not an error.
	DeleteRealServer(k VirtualServerKey, rs RealServer) error
}

// Binder manages the dummy interface whose addresses make virtual IPs
// local to the node. Implementations: NewDummyBinder and ipvsfake.Binder.
type Binder interface {
	// EnsureDevice creates the dummy device if it is missing and sets it
	// up; an existing one is left as it is.
	EnsureDevice() error
	// DeviceExists reports whether the dummy device exists (up or down).
	DeviceExists() (bool, error)
	// DeleteDevice deletes the dummy device with every address on it;
	// absent is not an error.
	DeleteDevice() error
	// ListBound returns the addresses on the device; no device is an empty
	// list, not an error.
	ListBound() ([]netip.Addr, error)
	// Bind adds a (as a /32 or /128) to the device; bound already is not
	// an error. The device must exist.
	Bind(a netip.Addr) error
	// Unbind removes a from the device; absent is not an error.
	Unbind(a netip.Addr) error
}
