// Package memo remembers the results of pure functions in bounded maps:
// the gateway parses and classifies the same few addresses and numbers —
// its users', the numbers they write to — for every message, and each
// parse is regular expressions or Unicode normalisation, microseconds and
// a dozen allocations, where a lookup is tens of nanoseconds.
package memo

import "sync"

// A Map remembers up to max values by key. When it holds max, it forgets
// them all and starts again: no bookkeeping per lookup, and a stream of new
// keys costs what it would without the map. Safe for concurrent use; the
// values are shared between callers, so they must not be changed.
type Map[K comparable, V any] struct {
	max int

	mu sync.RWMutex
	m  map[K]V
}

// New returns a Map of up to max values.
func New[K comparable, V any](max int) *Map[K, V] {
	return &Map[K, V]{max: max, m: make(map[K]V)}
}

// Get returns the value remembered for k, if any.
func (m *Map[K, V]) Get(k K) (V, bool) {
	m.mu.RLock()
	v, ok := m.m[k]
	m.mu.RUnlock()
	return v, ok
}

// Put remembers v for k.
func (m *Map[K, V]) Put(k K, v V) {
	m.mu.Lock()
	if len(m.m) >= m.max {
		clear(m.m)
	}
	m.m[k] = v
	m.mu.Unlock()
}

// Delete forgets the value for k.
func (m *Map[K, V]) Delete(k K) {
	m.mu.Lock()
	delete(m.m, k)
	m.mu.Unlock()
}

// Len returns how many values the Map holds.
func (m *Map[K, V]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}
