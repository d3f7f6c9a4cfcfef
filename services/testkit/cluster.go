package testkit

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ClusterWithin bounds the cluster's waits (a meta leader, a stream leader,
// a node catching up): a Raft election may wait 4 to 9 s with
// nats-server's defaults, which an in-process cluster cannot shorten (its
// own tests do from inside the package), and a loaded 2-core machine may
// need several.
const ClusterWithin = 60 * time.Second

// Cluster is a JetStream cluster of in-process NATS servers, as a
// deployment runs three (DESIGN.md, "Scale"): every node routes to every
// other, keeps its JetStream store in its own temporary directory, and
// listens on loopback ports fixed at the start, so that a node killed and
// restarted comes back where the clients and the other nodes look for it.
type Cluster struct {
	t    testing.TB
	opts []*server.Options // each node's, kept to restart it as it was
	// nodes holds each running node; nil while it is down.
	nodes []*server.Server
}

// NATSCluster starts n servers (named n1, n2, ...) in one cluster with
// JetStream, waits until they have elected a meta leader that every node
// knows, and shuts them down when the test ends.
func NATSCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("testkit: a cluster of %d servers", n)
	}
	// The route ports must be known before any server starts, since each
	// names all of them; the client ports too, so that a restarted node
	// answers on the URL its clients were given. (Another process may take
	// a port between FreeAddr and the listen; then the start fails.)
	ports := freePorts(t, 2*n)
	clusterPorts, clientPorts := ports[:n], ports[n:]
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	c := &Cluster{t: t, nodes: make([]*server.Server, n)}
	for i := range n {
		c.opts = append(c.opts, &server.Options{
			ServerName: "n" + strconv.Itoa(i+1),
			Host:       "127.0.0.1", Port: clientPorts[i],
			JetStream: true, StoreDir: t.TempDir(),
			Cluster: server.ClusterOpts{Name: "ledger-test", Host: "127.0.0.1", Port: clusterPorts[i]},
			// Each node's own route among them is recognized and skipped,
			// as in nats-server's own cluster tests.
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			NoLog:  true, NoSigs: true,
		})
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.shutdown(i)
		}
	})
	for i := range n {
		c.start(i)
	}
	// Registered after the shutdown, so run before it.
	t.Cleanup(func() {
		if t.Failed() {
			c.logState()
		}
	})
	c.WaitMetaLeader()
	return c
}

// freePorts returns n distinct loopback ports nobody listens on now: a
// port FreeAddr has let go of may be handed out again at once.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	seen := make(map[int]bool)
	var ports []int
	for len(ports) < n {
		_, text, err := net.SplitHostPort(FreeAddr(t))
		if err != nil {
			t.Fatal(err)
		}
		p, err := strconv.Atoi(text)
		if err != nil {
			t.Fatal(err)
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	return ports
}

// start starts node i from a copy of its options: the server fills in
// defaults in what it is given, and a restart must begin from the same.
func (c *Cluster) start(i int) {
	c.t.Helper()
	s, err := server.NewServer(c.opts[i].Clone())
	if err != nil {
		c.t.Fatalf("testkit: NATS cluster node %s: %v", c.opts[i].ServerName, err)
	}
	go s.Start()
	if !s.ReadyForConnections(ClusterWithin) {
		s.Shutdown()
		c.t.Fatalf("testkit: NATS cluster node %s not ready within %s", c.opts[i].ServerName, ClusterWithin)
	}
	c.nodes[i] = s
}

func (c *Cluster) shutdown(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

// URL is every node's client URL, comma-separated, as nats.Connect and
// ledgerd's --nats-url take them: a connection given it fails over to
// another node when the one it is on goes down.
func (c *Cluster) URL() string {
	var urls []string
	for _, o := range c.opts {
		urls = append(urls, fmt.Sprintf("nats://%s:%d", o.Host, o.Port))
	}
	return strings.Join(urls, ",")
}

// Running returns the nodes that are up.
func (c *Cluster) Running() []*server.Server {
	var up []*server.Server
	for _, s := range c.nodes {
		if s != nil {
			up = append(up, s)
		}
	}
	return up
}

// Kill shuts the named node down, as a stopped nats-server goes: it steps
// down from the Raft groups it leads (the others elect a new leader at
// once) and closes every connection, so that its clients must reconnect
// elsewhere and what it had not replicated is lost with it. A crash
// would leave the others to notice by themselves, after an election
// timeout (4 to 9 s); nats-server exports no way to stop without stepping
// down first.
func (c *Cluster) Kill(name string) {
	c.t.Helper()
	c.shutdown(c.index(name))
}

// Restart starts the named node again, after Kill, on its ports and its
// store, and returns it. It rejoins by itself; WaitCurrent waits for that.
func (c *Cluster) Restart(name string) *server.Server {
	c.t.Helper()
	i := c.index(name)
	if c.nodes[i] != nil {
		c.t.Fatalf("testkit: NATS cluster node %s is running", name)
	}
	c.start(i)
	return c.nodes[i]
}

func (c *Cluster) index(name string) int {
	c.t.Helper()
	for i, o := range c.opts {
		if o.ServerName == name {
			return i
		}
	}
	c.t.Fatalf("testkit: no NATS cluster node %s", name)
	return -1
}

// WaitMetaLeader waits until a running node leads the JetStream meta group
// and every running node names it leader, so that stream and consumer
// requests (which the meta leader places) are answered, and returns it.
func (c *Cluster) WaitMetaLeader() *server.Server {
	c.t.Helper()
	var leader *server.Server
	c.wait("a JetStream meta leader every node knows", func() error {
		leader = nil
		for _, s := range c.Running() {
			if s.JetStreamIsLeader() {
				leader = s
			}
		}
		if leader == nil {
			return fmt.Errorf("no meta leader among %d running nodes", len(c.Running()))
		}
		for _, s := range c.Running() {
			info, err := s.Jsz(nil)
			if err != nil {
				return fmt.Errorf("%s: %w", s.Name(), err)
			}
			if info.Meta == nil || info.Meta.Leader != leader.Name() {
				return fmt.Errorf("%s does not know %s leads", s.Name(), leader.Name())
			}
		}
		return nil
	})
	return leader
}

// StreamLeader returns the running node that leads the stream of the
// global account (the one an unauthenticated client uses), or nil while
// none does.
func (c *Cluster) StreamLeader(stream string) *server.Server {
	for _, s := range c.Running() {
		if s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return s
		}
	}
	return nil
}

// WaitStreamLeader waits until a running node leads the stream, and
// returns it.
func (c *Cluster) WaitStreamLeader(stream string) *server.Server {
	c.t.Helper()
	var leader *server.Server
	c.wait("a leader of stream "+stream, func() error {
		if leader = c.StreamLeader(stream); leader == nil {
			return fmt.Errorf("no running node leads %s", stream)
		}
		return nil
	})
	return leader
}

// WaitCurrent waits until the named node, rejoined after a restart, has
// caught up with the meta group and with the stream's replica group.
func (c *Cluster) WaitCurrent(name, stream string) {
	c.t.Helper()
	s := c.nodes[c.index(name)]
	if s == nil {
		c.t.Fatalf("testkit: NATS cluster node %s is down", name)
	}
	c.wait(name+" current with "+stream, func() error {
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("%s has not caught up with the meta group", name)
		}
		if !s.JetStreamIsStreamCurrent(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return fmt.Errorf("%s has not caught up with %s", name, stream)
		}
		return nil
	})
}

// wait is Eventually with the cluster's bound, which allows for elections.
func (c *Cluster) wait(what string, check func() error) {
	c.t.Helper()
	eventually(c.t, ClusterWithin, "testkit: "+what, check)
}

// logState logs what each running node knows of the meta group, the
// streams and their consumers, for a failed test to say why.
func (c *Cluster) logState() {
	for _, s := range c.Running() {
		info, err := s.Jsz(&server.JSzOptions{Accounts: true, Streams: true, Consumer: true, RaftGroups: true})
		if err != nil {
			c.t.Logf("testkit: NATS cluster node %s: %v", s.Name(), err)
			continue
		}
		out, _ := json.Marshal(info)
		c.t.Logf("testkit: NATS cluster node %s: %s", s.Name(), out)
	}
}
