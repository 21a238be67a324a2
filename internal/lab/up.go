package lab

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Up builds what the lab needs and starts it; what already runs is kept, so Up is idempotent. On
// failure it leaves everything it made recorded for Down.
func Up(c Config) error {
	if os.Geteuid() != 0 {
		return errors.New("the lab creates namespaces, mounts and cgroups: run it as root")
	}
	if err := c.validate(); err != nil {
		return err
	}
	start := time.Now()
	st, err := loadState(c.Dir)
	if err != nil {
		return err
	}
	if st.exists() && st.Nodes != c.Nodes {
		return fmt.Errorf("a lab with %d nodes exists: run plexusctl lab down first to change the node count", st.Nodes)
	}
	if err := CheckRanges(c); err != nil {
		return err
	}
	if err := Build(c); err != nil {
		return err
	}
	if st.Started.IsZero() {
		st.Started = time.Now()
	}
	st.Nodes = c.Nodes
	st.Complete = false
	if err := st.save(); err != nil {
		return err
	}
	t0 := time.Now()
	if err := setupNetwork(c, st); err != nil {
		return err
	}
	if err := c.startDNSUpstream(st); err != nil {
		return err
	}
	p, tk, err := c.identities(st)
	if err != nil {
		return err
	}
	if err := c.startControlPlane(st, p); err != nil {
		return err
	}
	if err := c.startNodes(st, p, tk); err != nil {
		return err
	}
	if err := c.waitNodesRegistered(st); err != nil {
		return err
	}
	if err := c.install(st); err != nil {
		return err
	}
	if err := c.deployWorkloads(); err != nil {
		return err
	}
	st.Complete = true
	if err := st.save(); err != nil {
		return err
	}
	c.step("lab up: cluster started in %s (whole up %s)", time.Since(t0).Round(100*time.Millisecond), time.Since(start).Round(time.Second))
	return Status(c)
}
