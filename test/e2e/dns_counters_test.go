package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	. "github.com/onsi/gomega"
)

// dropCounters are the kernel's counts of the ways a DNS packet can be lost in the lab: a UDP
// socket's full receive buffer in a CoreDNS pod (a CPU-starved CoreDNS), and conntrack failing
// to insert or dropping a flow on a node (the insertion race of two datagrams of one new flow).
type dropCounters struct {
	coreDNSRcvbufErrors, conntrackInsertFailed, conntrackDrop, conntrackClashResolved int64
}

func (d dropCounters) minus(o dropCounters) dropCounters {
	return dropCounters{d.coreDNSRcvbufErrors - o.coreDNSRcvbufErrors, d.conntrackInsertFailed - o.conntrackInsertFailed,
		d.conntrackDrop - o.conntrackDrop, d.conntrackClashResolved - o.conntrackClashResolved}
}

func (d dropCounters) String() string {
	return fmt.Sprintf("CoreDNS UDP receive-buffer drops %d, conntrack insert_failed %d, drop %d, clashes resolved %d",
		d.coreDNSRcvbufErrors, d.conntrackInsertFailed, d.conntrackDrop, d.conntrackClashResolved)
}

// readDropCounters sums the counters over the CoreDNS pods (their processes' network namespaces)
// and the lab's nodes.
func readDropCounters() dropCounters {
	var d dropCounters
	for _, pid := range coreDNSPIDs() {
		d.coreDNSRcvbufErrors += snmpField(filepath.Join("/proc", pid, "net", "snmp"), "Udp:", "RcvbufErrors")
		d.coreDNSRcvbufErrors += snmp6Field(filepath.Join("/proc", pid, "net", "snmp6"), "Udp6RcvbufErrors")
	}
	for i := 1; i <= labNodes; i++ {
		out, err := exec.Command("ip", "netns", "exec", labCfg.NodeAt(i).Netns, "cat", "/proc/net/stat/nf_conntrack").Output()
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		d.conntrackInsertFailed += conntrackStat(string(out), "insert_failed")
		d.conntrackDrop += conntrackStat(string(out), "drop")
		d.conntrackClashResolved += conntrackStat(string(out), "clashres")
	}
	return d
}

// coreDNSPIDs are the processes named coredns in the lab's cgroup.
func coreDNSPIDs() []string {
	var out []string
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, f := range comms {
		comm, err := os.ReadFile(f)
		if err != nil || strings.TrimSpace(string(comm)) != "coredns" {
			continue
		}
		dir := filepath.Dir(f)
		if cg, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil && strings.Contains(string(cg), ":/"+labCfg.CgroupRoot()+"/") {
			out = append(out, filepath.Base(dir))
		}
	}
	return out
}

// snmpField reads one field of /proc/net/snmp's two-line table for prefix ("Udp:").
func snmpField(path, prefix, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	var header []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		f := strings.Fields(line)
		if header == nil {
			header = f
			continue
		}
		for i := range header {
			if header[i] == field && i < len(f) {
				n, _ := strconv.ParseInt(f[i], 10, 64)
				return n
			}
		}
	}
	return 0
}

// snmp6Field reads one "Name value" line of /proc/net/snmp6.
func snmp6Field(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == field {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// conntrackStat sums one column of /proc/net/stat/nf_conntrack (a header, then one row of hex
// numbers per CPU).
func conntrackStat(table, column string) int64 {
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) < 2 {
		return 0
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == column {
			col = i
		}
	}
	var sum int64
	for _, l := range lines[1:] {
		if f := strings.Fields(l); col >= 0 && col < len(f) {
			n, _ := strconv.ParseInt(f[col], 16, 64)
			sum += n
		}
	}
	return sum
}
