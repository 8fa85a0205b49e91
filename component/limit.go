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
}

func (c *capConn) Read(p []byte) (int, error) {
	if c.read.Load() > c.max {
		return 0, fmt.Errorf("component: stanza larger than %d bytes", c.max)
	}
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// stanzaDone starts counting afresh for the next stanza.
func (c *capConn) stanzaDone() { c.read.Store(0) }
