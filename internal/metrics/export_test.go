package metrics

import "time"

// SetClock replaces the clock of the queue cache, for tests in package metrics_test.
func SetClock(m *Metrics, now func() time.Time) {
	m.qmu.Lock()
	defer m.qmu.Unlock()
	m.now = now
}
