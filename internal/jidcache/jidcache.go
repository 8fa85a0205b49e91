// Package jidcache parses JIDs through a bounded cache. jid.Parse
// normalises every part (PRECIS profiles, IDNA, a check for an IP literal)
// and allocates a dozen times; the gateway parses the same few addresses —
// its users', the numbers they write to — for every message, and the
// parsing was a sixth of its allocations at full speed (docs/benchmarks/sessions.md,
// twenty-second session).
package jidcache

import (
	"mellium.im/xmpp/jid"

	"switchboard/internal/memo"
)

// A Cache remembers the JIDs its parse function accepted, up to max (see
// memo.Map: when full it starts again). Errors are not kept. A JID's
// methods never write to the bytes it holds (those that change a part copy
// them), so one JID value may be handed to many goroutines. Safe for
// concurrent use.
type Cache struct {
	parse func(string) (jid.JID, error)
	m     *memo.Map[string, jid.JID]
}

// New returns a cache of up to max JIDs, each as parse gives it.
func New(max int, parse func(string) (jid.JID, error)) *Cache {
	return &Cache{parse: parse, m: memo.New[string, jid.JID](max)}
}

// Parse returns what the cache's parse function returns for s, from the
// cache when it accepted s before.
func (c *Cache) Parse(s string) (jid.JID, error) {
	if j, ok := c.m.Get(s); ok {
		return j, nil
	}
	j, err := c.parse(s)
	if err != nil {
		return j, err
	}
	c.m.Put(s, j)
	return j, nil
}

// len returns how many JIDs the cache holds (for tests).
func (c *Cache) len() int { return c.m.Len() }

// std is Parse's cache. 8,192 addresses are about a megabyte.
var std = New(8192, jid.Parse)

// Parse is jid.Parse(s), from a shared cache.
func Parse(s string) (jid.JID, error) { return std.Parse(s) }
