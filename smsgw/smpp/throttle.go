package smpp

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// throttle pauses a Client's submits while the SMSC answers
// ESME_RTHROTTLED, as Kannel's throttling-sleep-time and Jasmin's
// throttle_wait do: the other submits of the window would only be refused
// too, and an SMSC that keeps being pushed past its rate may lock the
// account. ESME_RMSGQFUL (the SMSC's queue is full) is the same kind of
// answer and pauses alike: retried each second with nothing else to slow
// it, a message went back to an SMSC answering it for as long as its
// validity ran.
//
// The first ESME_RTHROTTLED pauses new submits for min. One for a submit
// sent after the pause ended doubles it, up to max; those for submits sent
// before (the burst that was already in flight) change nothing. An
// ESME_ROK for a submit sent after the pause began ends the episode.
// Submits already sent are not recalled. The state outlives a reconnect:
// an SMSC that throttled the old bind is likely to throttle the new one.
//
// Submit reads only until, with one atomic load, when nothing throttles.
type throttle struct {
	epoch    time.Time // the times below are nanoseconds since it (monotonic)
	min, max time.Duration
	log      zerolog.Logger

	until atomic.Int64 // when the current pause ends; 0 when not throttled

	mu      sync.Mutex
	pause   time.Duration // the current pause; 0 when not throttled
	start   int64         // when the current pause began
	began   int64         // when the episode began
	refused int           // ESME_RTHROTTLED in the episode
}

func (t *throttle) now() int64 { return int64(time.Since(t.epoch)) }

func (t *throttle) since(sent time.Time) int64 { return int64(sent.Sub(t.epoch)) }

// throttled records a response ESME_RTHROTTLED or ESME_RMSGQFUL (st) to a
// submit_sm queued for writing at sent.
func (t *throttle) throttled(sent time.Time, st Status) {
	at := t.since(sent)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.refused++
	switch {
	case t.pause == 0:
		t.pause, t.began = t.min, now
		msg := "smpp: SMSC throttling (ESME_RTHROTTLED); submits on this bind paused"
		if st == StatusMsgQFul {
			msg = "smpp: SMSC queue full (ESME_RMSGQFUL); submits on this bind paused"
		}
		t.log.Warn().Stringer("pause", t.pause).Msg(msg)
	case at >= t.until.Load():
		t.pause = min(2*t.pause, t.max)
		t.log.Debug().Stringer("pause", t.pause).Msg("smpp: SMSC still throttling; pause doubled")
	default:
		return // sent before the pause: it changes nothing
	}
	t.start = now
	t.until.Store(now + int64(t.pause))
}

// accepted records a response ESME_ROK to a submit_sm queued for writing
// at sent, while throttled (until != 0).
func (t *throttle) accepted(sent time.Time) {
	at := t.since(sent)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.pause == 0 || at < t.start {
		return
	}
	t.log.Info().Stringer("lasted", time.Duration(t.now()-t.began).Round(time.Millisecond)).Int("throttled", t.refused).
		Msg("smpp: SMSC throttling over; submits on this bind resumed")
	t.pause, t.refused = 0, 0
	t.until.Store(0)
}

// wait returns when no pause holds submits: nil, or ctx's error if it ends
// first, or ErrNotSentBy at once if the pause ends after sendBy (zero:
// none).
func (t *throttle) wait(ctx context.Context, sendBy time.Time) error {
	for {
		u := t.until.Load()
		if u == 0 {
			return nil
		}
		d := time.Duration(u - t.now())
		if d <= 0 {
			return nil
		}
		if !sendBy.IsZero() && time.Until(sendBy) < d {
			return ErrNotSentBy
		}
		timer := time.NewTimer(d)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}
