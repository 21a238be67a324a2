package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/plexus-net/plexus/internal/ipfamily"
)

const (
	// lockFileName is the file in the data directory that every plugin process flocks while it
	// reads or changes allocations.
	lockFileName = "lock"
	// lastReservedPrefix + "ipv4"/"ipv6" records the address handed out last per family, where
	// the next search starts (see NextFree).
	lastReservedPrefix = "last-reserved-"
	// storeFileMode: allocations are not secret, and operators read them when debugging.
	storeFileMode = 0o644
	storeDirMode  = 0o755
)

// Owner identifies one pod attachment, as the CNI spec does: container ID plus interface name.
type Owner struct {
	// ContainerID is the runtime's CNI_CONTAINERID (the pod sandbox ID).
	ContainerID string `json:"containerID"`
	// IfName is the interface inside the pod (CNI_IFNAME), e.g. eth0.
	IfName string `json:"ifName"`
}

// String returns "containerID/ifName".
func (o Owner) String() string { return o.ContainerID + "/" + o.IfName }

// Allocation is one address held by one pod attachment: a file named after the address in the
// store directory, containing the owner as JSON.
type Allocation struct {
	// IP is the allocated address.
	IP netip.Addr
	// Owner holds it.
	Owner Owner
}

// Store is the on-disk allocation store: a directory with one file per allocated address and a
// lock file. The methods other than Lock, Unlock and Close must be called with the lock held;
// the lock is an flock, so it is released by the kernel if the process dies.
type Store struct {
	dir  string
	lock *os.File
}

// OpenStore opens (creating if needed) the store in dir.
func OpenStore(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, storeDirMode); err != nil {
		return nil, fmt.Errorf("create allocation store %s: %w", dir, err)
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR|os.O_CREATE, storeFileMode)
	if err != nil {
		return nil, fmt.Errorf("open allocation store lock: %w", err)
	}
	return &Store{dir: dir, lock: f}, nil
}

// Close releases the lock (if held) and the lock file.
func (s *Store) Close() error { return s.lock.Close() }

// Lock blocks until this process holds the store's exclusive lock.
func (s *Store) Lock() error {
	for {
		err := unix.Flock(int(s.lock.Fd()), unix.LOCK_EX)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINTR) { // a signal interrupted the wait: wait again
			return fmt.Errorf("lock allocation store %s: %w", s.dir, err)
		}
	}
}

// Unlock releases the store's lock.
func (s *Store) Unlock() error {
	if err := unix.Flock(int(s.lock.Fd()), unix.LOCK_UN); err != nil {
		return fmt.Errorf("unlock allocation store %s: %w", s.dir, err)
	}
	return nil
}

// WithLock runs fn with the store's lock held.
func (s *Store) WithLock(fn func() error) error {
	if err := s.Lock(); err != nil {
		return err
	}
	err := fn()
	if uerr := s.Unlock(); uerr != nil && err == nil {
		err = uerr
	}
	return err
}

// List returns every allocation, sorted by address. Files that are not allocations (the lock,
// last-reserved markers, temporary files) are skipped. An allocation file whose content cannot
// be read is returned with an empty Owner, so its address stays taken until GC frees it.
func (s *Store) List() ([]Allocation, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list allocation store %s: %w", s.dir, err)
	}
	var out []Allocation
	for _, e := range entries {
		ip, err := netip.ParseAddr(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		a := Allocation{IP: ip}
		if data, err := os.ReadFile(filepath.Join(s.dir, e.Name())); err == nil {
			_ = json.Unmarshal(data, &a.Owner)
		}
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IP.Less(out[j].IP) })
	return out, nil
}

// Reserve records a as allocated, replacing any record for the same address.
func (s *Store) Reserve(a Allocation) error {
	data, err := json.Marshal(a.Owner)
	if err != nil {
		return fmt.Errorf("encode allocation of %s: %w", a.IP, err)
	}
	if err := writeFileAtomic(filepath.Join(s.dir, a.IP.String()), append(data, '\n'), storeFileMode); err != nil {
		return fmt.Errorf("record allocation of %s to %s: %w", a.IP, a.Owner, err)
	}
	return nil
}

// Release removes the record for ip; releasing an address that is not allocated is not an error.
func (s *Store) Release(ip netip.Addr) error {
	err := os.Remove(filepath.Join(s.dir, ip.String()))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("release %s: %w", ip, err)
	}
	return nil
}

// LastReserved returns the address last handed out in family ("ipv4" or "ipv6"), or the zero
// Addr if none is recorded.
func (s *Store) LastReserved(family string) netip.Addr {
	data, err := os.ReadFile(filepath.Join(s.dir, lastReservedPrefix+family))
	if err != nil {
		return netip.Addr{}
	}
	ip, _ := netip.ParseAddr(strings.TrimSpace(string(data)))
	return ip
}

// SetLastReserved records ip as the address last handed out in its family.
func (s *Store) SetLastReserved(ip netip.Addr) error {
	return writeFileAtomic(filepath.Join(s.dir, lastReservedPrefix+familyName(ip)), []byte(ip.String()+"\n"), storeFileMode)
}

// familyName is "ipv4" or "ipv6" (a file name in the store).
func familyName(ip netip.Addr) string { return strings.ToLower(ipfamily.Of(ip).String()) }
