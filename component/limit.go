package component

import (
	"fmt"
	"net"
	"sync/atomic"
)

// DefaultMaxStanza is the most bytes one stanza may take on the stream.
const DefaultMaxStanza = 1 << 20

// capConn bounds what may be read between two stanzas: a stanza larger
// than max ends the session (a stream that sends one is misbehaving), so a
// hostile or broken peer cannot make the component buffer without limit.
type capConn struct {
	net.Conn
	max  int64
	read atomic.Int64
	// extra is allowed on top of max while answers the component asked
	// for, which may be larger, are on their way (see allow).
	extra atomic.Int64
}

func (c *capConn) Read(p []byte) (int, error) {
	if c.read.Load() > c.max+c.extra.Load() {
		return 0, fmt.Errorf("component: stanza larger than %d bytes", c.max)
	}
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// allow raises the bound by n until the returned func is called: for the
// answer to a request of the component's own whose size the server decides
// (a user's whole roster).
func (c *capConn) allow(n int64) func() {
	c.extra.Add(n)
	return func() { c.extra.Add(-n) }
}

// stanzaDone starts counting afresh for the next stanza.
func (c *capConn) stanzaDone() { c.read.Store(0) }
