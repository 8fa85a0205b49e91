// Package jidcache parses JIDs through a bounded cache. jid.Parse
// normalises every part (PRECIS profiles, IDNA, a check for an IP literal)
// and allocates a dozen times; the gateway parses the same few addresses —
// its users', the numbers they write to — for every message, and the
// parsing was a sixth of its allocations at full speed (docs/benchmarks/sessions.md,
// twenty-second session).
package jidcache

import (
	"sync"

	"mellium.im/xmpp/jid"
)

// A Cache remembers the JIDs its parse function accepted. When it holds
// max, it forgets them all and starts again: no bookkeeping per lookup, and
// a stream of new addresses costs a parse each, as without the cache.
// Errors are not kept. A JID's methods never write to the bytes it holds
// (those that change a part copy them), so one JID value may be handed to
// many goroutines. Safe for concurrent use.
type Cache struct {
	parse func(string) (jid.JID, error)
	max   int

	mu sync.RWMutex
	m  map[string]jid.JID
}

// New returns a cache of up to max JIDs, each as parse gives it.
func New(max int, parse func(string) (jid.JID, error)) *Cache {
	return &Cache{parse: parse, max: max, m: make(map[string]jid.JID)}
}

// Parse returns what the cache's parse function returns for s, from the
// cache when it accepted s before.
func (c *Cache) Parse(s string) (jid.JID, error) {
	c.mu.RLock()
	j, ok := c.m[s]
	c.mu.RUnlock()
	if ok {
		return j, nil
	}
	j, err := c.parse(s)
	if err != nil {
		return j, err
	}
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m)
	}
	c.m[s] = j
	c.mu.Unlock()
	return j, nil
}

// len returns how many JIDs the cache holds (for tests).
func (c *Cache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// std is Parse's cache. 8,192 addresses are about a megabyte.
var std = New(8192, jid.Parse)

// Parse is jid.Parse(s), from a shared cache.
func Parse(s string) (jid.JID, error) { return std.Parse(s) }
