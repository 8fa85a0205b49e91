// Package failing logs the failures of a task that runs again and again (a
// queue poll, a sweep) as an operator wants them: the first at error, a
// reminder with the count every few minutes while it goes on, and one line
// at info when the task works again, instead of a line each time it runs.
// A store that is down makes every poll fail, a few times a second.
package failing

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// remindEvery is how often a failure that goes on is logged again.
const remindEvery = 5 * time.Minute

// Log tracks one task's failures. The zero value is ready; it is safe for
// concurrent use.
type Log struct {
	mu       sync.Mutex
	since    time.Time // the first failure of this run of them; zero: none
	n        int       // failures since then
	reminded time.Time // when the last line about them was written
	now      func() time.Time
}

func (l *Log) clock() time.Time {
	if l.now != nil {
		return l.now()
	}
	return time.Now()
}

// Fail records a failure of the task: logged with err and msg at error the
// first time, and again (with the count so far) once every remindEvery
// while the failures go on.
func (l *Log) Fail(log zerolog.Logger, err error, msg string) {
	l.mu.Lock()
	now := l.clock()
	first := l.since.IsZero()
	if first {
		l.since = now
	}
	l.n++
	n, since := l.n, l.since
	remind := first || now.Sub(l.reminded) >= remindEvery
	if remind {
		l.reminded = now
	}
	l.mu.Unlock()
	if !remind {
		return
	}
	ev := log.Error().Err(err)
	if !first {
		ev = ev.Int("failures", n).Str("failing_for", now.Sub(since).Round(time.Second).String())
	}
	ev.Msg(msg)
}

// OK records that the task worked: after failures, logged at info with msg,
// how many there were and for how long.
func (l *Log) OK(log zerolog.Logger, msg string) {
	l.mu.Lock()
	if l.since.IsZero() {
		l.mu.Unlock()
		return
	}
	n, d := l.n, l.clock().Sub(l.since)
	l.since, l.n, l.reminded = time.Time{}, 0, time.Time{}
	l.mu.Unlock()
	log.Info().Int("failures", n).Str("failing_for", d.Round(time.Second).String()).Msg(msg)
}
