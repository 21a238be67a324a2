package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/plexus-net/plexus/agent/hostport"
)

// Host ports (the portMappings capability). The plugin itself programs them, at ADD before it
// returns (so no container of the pod runs before its host ports work) and at DEL and GC. What
// it programmed is recorded in <dataDir>/hostports, one file per attachment, and every change
// rewrites the node's whole host-port table from those records (agent/hostport): the records are
// the truth, so DEL and GC remove exactly what ADD added, and any of them repairs a table that
// drifted. Pods without host ports never touch nft.

const (
	// hostPortsDirName is the directory of host-port records inside the data directory; it has
	// its own lock, so address allocation never waits for nft.
	hostPortsDirName = "hostports"
	// hostPortRecordSuffix ends every record file's name.
	hostPortRecordSuffix = ".json"
	// nftTimeout bounds one host-port table write.
	nftTimeout = 20 * time.Second
)

// hostPortRecord is one attachment's host ports as programmed.
type hostPortRecord struct {
	Owner    Owner              `json:"owner"`
	Mappings []hostport.Mapping `json:"mappings"`
}

// hostPortStore is the record directory with its lock held by the methods below.
type hostPortStore struct {
	lock *Store // used for its lock file only
	dir  string
}

func openHostPortStore(dataDir string) (*hostPortStore, error) {
	dir := filepath.Join(dataDir, hostPortsDirName)
	lock, err := OpenStore(dir)
	if err != nil {
		return nil, fmt.Errorf("host-port records: %w", err)
	}
	return &hostPortStore{lock: lock, dir: dir}, nil
}

func (s *hostPortStore) Close() error { return s.lock.Close() }

// recordPath is owner's record file; both parts are escaped so no name can leave the directory.
func (s *hostPortStore) recordPath(o Owner) string {
	return filepath.Join(s.dir, url.PathEscape(o.ContainerID)+"_"+url.PathEscape(o.IfName)+hostPortRecordSuffix)
}

// list reads every record. A record that cannot be read is an error: programming the table
// without it would drop another pod's host ports.
func (s *hostPortStore) list() ([]hostPortRecord, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list host-port records %s: %w", s.dir, err)
	}
	var out []hostPortRecord
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), hostPortRecordSuffix) || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read host-port record: %w", err)
		}
		var r hostPortRecord
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("host-port record %s: %w", e.Name(), err)
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *hostPortStore) write(r hostPortRecord) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode host ports of %s: %w", r.Owner, err)
	}
	return writeFileAtomic(s.recordPath(r.Owner), append(data, '\n'), storeFileMode)
}

func (s *hostPortStore) remove(o Owner) error {
	if err := os.Remove(s.recordPath(o)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove host-port record of %s: %w", o, err)
	}
	return nil
}

// allMappings flattens records, leaving out skip's.
func allMappings(records []hostPortRecord, skip map[Owner]bool) []hostport.Mapping {
	var out []hostport.Mapping
	for _, r := range records {
		if !skip[r.Owner] {
			out = append(out, r.Mappings...)
		}
	}
	return out
}

// programHostPorts writes the table for mappings in the plugin's (the node's) namespace.
func programHostPorts(mappings []hostport.Mapping) error {
	nft, err := hostport.Open()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), nftTimeout)
	defer cancel()
	return hostport.Sync(ctx, nft, mappings)
}

// withRecords opens the node's host-port records, takes their lock and runs fn with every record;
// fn's error is returned as it is, an error opening or reading the records as an internal error.
func withRecords(dataDir string, fn func(s *hostPortStore, records []hostPortRecord) error) error {
	s, err := openHostPortStore(dataDir)
	if err != nil {
		return internalError("%v", err)
	}
	defer s.Close()
	return s.lock.WithLock(func() error {
		records, err := s.list()
		if err != nil {
			return internalError("%v", err)
		}
		return fn(s, records)
	})
}

// addHostPorts expands the runtime's port mappings for owner's addresses, refuses a frontend
// another pod holds, records them and programs the node's table. On failure nothing of owner's
// stays recorded or programmed.
func addHostPorts(dataDir string, owner Owner, pms []hostport.RuntimePortMapping, addrs []netip.Addr) error {
	mappings, err := hostport.Expand(pms, addrs)
	if err != nil {
		return hostPortConfigError(err)
	}
	return withRecords(dataDir, func(s *hostPortStore, records []hostPortRecord) error {
		others := allMappings(records, map[Owner]bool{owner: true})
		if err := hostport.Conflict(others, mappings); err != nil {
			return hostPortConflictError(owner, err)
		}
		if err := s.write(hostPortRecord{Owner: owner, Mappings: mappings}); err != nil {
			return internalError("%v", err)
		}
		if err := programHostPorts(append(others, mappings...)); err != nil {
			// Leave the table as the other records say (best effort: it failed once already).
			_ = s.remove(owner)
			_ = programHostPorts(others)
			return internalError("program host ports of %s: %v", owner, err)
		}
		clearUDP(mappings)
		return nil
	})
}

// clearUDP flushes the UDP conntrack entries of mappings (see hostport.ClearUDP). A failure only
// delays a UDP client's move to the new mapping until its entry expires: it is reported on
// stderr, which the runtime logs, and does not fail the pod.
func clearUDP(mappings []hostport.Mapping) {
	if err := hostport.ClearUDP(mappings); err != nil {
		fmt.Fprintf(os.Stderr, "plexus-cni: warning: %v\n", err)
	}
}

// mappingsOf returns the mappings of the owners in set.
func mappingsOf(records []hostPortRecord, set map[Owner]bool) []hostport.Mapping {
	var out []hostport.Mapping
	for _, r := range records {
		if set[r.Owner] {
			out = append(out, r.Mappings...)
		}
	}
	return out
}

// removeHostPorts forgets the host ports of owners and reprograms the table. Owners without a
// record cost no nft call, so pods without host ports never need nft.
func removeHostPorts(dataDir string, owners ...Owner) error {
	want := map[Owner]bool{}
	for _, o := range owners {
		want[o] = true
	}
	return forgetHostPorts(dataDir, "remove host ports", false, func(o Owner) bool { return want[o] })
}

// gcHostPorts forgets the host ports of every attachment not in valid and rewrites the table
// from the records left, which also removes elements no record explains (left behind by a
// plugin that died between its nft write and its record). Without records and without nft on
// the node there is nothing to collect.
func gcHostPorts(dataDir string, valid map[Owner]bool) error {
	return forgetHostPorts(dataDir, "garbage-collect host ports", true, func(o Owner) bool { return !valid[o] })
}

// forgetHostPorts drops the records of the owners gone says are gone and rewrites the table from
// the others. Kernel first: a record goes only once its elements have, so a failed write is
// retried by the runtime's next DEL or GC. With always false, nothing is written when no record
// is gone; with always true (GC) the table is rewritten anyway, to drop unexplained elements.
func forgetHostPorts(dataDir, what string, always bool, gone func(Owner) bool) error {
	return withRecords(dataDir, func(s *hostPortStore, records []hostPortRecord) error {
		drop := map[Owner]bool{}
		for _, r := range records {
			if gone(r.Owner) {
				drop[r.Owner] = true
			}
		}
		if len(drop) == 0 && !always {
			return nil
		}
		if err := programHostPorts(allMappings(records, drop)); err != nil {
			if len(records) == 0 && errors.Is(err, hostport.ErrNoNft) {
				return nil
			}
			return internalError("%s: %v", what, err)
		}
		clearUDP(mappingsOf(records, drop))
		for o := range drop {
			if err := s.remove(o); err != nil {
				return internalError("%v", err)
			}
		}
		return nil
	})
}

// checkHostPorts verifies that owner's recorded host ports are the runtime's port mappings for
// addrs and that the node's table holds every one of them.
func checkHostPorts(dataDir string, owner Owner, pms []hostport.RuntimePortMapping, addrs []netip.Addr) error {
	want, err := hostport.Expand(pms, addrs)
	if err != nil {
		return hostPortConfigError(err)
	}
	var recorded []hostport.Mapping
	if err := withRecords(dataDir, func(_ *hostPortStore, records []hostPortRecord) error {
		recorded = mappingsOf(records, map[Owner]bool{owner: true})
		return nil
	}); err != nil {
		return err
	}
	if !slices.Equal(recorded, want) {
		return checkFailed("host ports of %s: the runtime asks for %v but the plugin recorded %v", owner, want, recorded)
	}
	nft, err := hostport.Open()
	if err != nil {
		return internalError("%v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), nftTimeout)
	defer cancel()
	missing, err := hostport.Missing(ctx, nft, want)
	if err != nil {
		return internalError("%v", err)
	}
	if len(missing) > 0 {
		return checkFailed("host ports of %s missing from nftables table inet %s: %v", owner, hostport.TableName, missing)
	}
	return nil
}
