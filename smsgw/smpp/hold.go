package smpp

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Holds keeps a phone's messages in order across ESME_RX_T_APPN. The SMSC
// sends a message so refused again later; meanwhile the phone's later
// messages to the same number would be taken before it. So once a message
// from a phone (a deliver_sm or data_sm that is not a receipt) has been
// refused, every later one of its source and destination is refused too,
// without reaching the Handler, until the refused ones come back and are
// taken. Each refused is remembered (up to 32 a pair), and only the first
// to have come is let through; once it is taken, the next; the pair is
// free when none is left. So messages the phone sent while it was held
// cannot pass, after the first comes back, the others refused before
// them. A message comes back when one of the pair with the same content
// (see digest) comes after it. Receipts are never held: each names its
// message.
//
// Share one Holds among the Clients bound to one SMSC (Config.Holds): the
// SMSC may send a message again on another bind. The zero value is ready
// to use, with the defaults below; the methods are safe for concurrent use.
type Holds struct {
	// Wait is how long a refused message may take to come back before its
	// pair is let go, and the phone's messages are taken as they come;
	// default 5 min. SMSCs commonly retry after a minute or a few; one
	// that gave up on the message (or let it expire) holds the phone's
	// others this long at most. When a refused message comes back and is
	// refused again, it is waited for Wait more, up to 6 times Wait from
	// when it began to be waited for, so a message the Handler can never
	// take does not hold its phone for good.
	Wait time.Duration
	// Pairs bounds the pairs held at once; default 10000. When that many
	// are held and none is past its wait, a refusal for another pair is
	// not remembered: that pair's later messages are taken as they come,
	// as before there were holds (a warning says so, once until there is
	// room again). Refusing all the pairs that come instead would stop
	// every new conversation behind the old ones. With the defaults the
	// holds take 8 MB at most.
	Pairs int

	now     func() time.Time // time.Now if nil; tests set it
	arrival atomic.Uint64    // stamps messages in the order they came
	count   atomic.Int32     // len(held), for the common case of none

	mu    sync.Mutex
	held  map[pair]*hold
	full  bool      // Pairs was reached, and logged
	swept time.Time // when held was last searched for pairs past their wait
}

// maxRefused bounds the refused messages remembered for one pair. One
// refused beyond it is refused, but not waited for: when it comes back
// after the pair is let go it is taken as it comes.
const maxRefused = 32

// hold is a held pair.
type hold struct {
	refused []refusal // by arrival; refused[0] is waited for
	since   time.Time // when refused[0] began to be waited for
	until   time.Time // when the wait for refused[0] ends
}

type refusal struct {
	sum     [16]byte
	arrival uint64 // of the PDU refused first
}

func (hs *Holds) clock() time.Time {
	if hs.now != nil {
		return hs.now()
	}
	return time.Now()
}

func (hs *Holds) wait() time.Duration {
	if hs.Wait > 0 {
		return hs.Wait
	}
	return 5 * time.Minute
}

func (hs *Holds) pairs() int {
	if hs.Pairs > 0 {
		return hs.Pairs
	}
	return 10000
}

// stamp marks d as come now: a hold applies only to messages that came
// after the one it waits for.
func (hs *Holds) stamp(d *Deliver) { d.arrival = hs.arrival.Add(1) }

// admit reports whether d, a message from a phone to k, may be handled. If
// not, it is to be refused, and is remembered as refused.
func (hs *Holds) admit(log zerolog.Logger, k pair, d *Deliver) bool {
	if hs.count.Load() == 0 {
		return true
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	now := hs.clock()
	// A pair whose wait ran out is let go when it writes again, or here:
	// else one phone that never did would keep every message of every
	// phone on this path, under the lock.
	hs.sweep(log, now)
	h := hs.held[k]
	if h == nil || d.arrival < h.refused[0].arrival {
		return true
	}
	if now.After(h.until) {
		hs.letGo(log, k, h, now)
		return true
	}
	sum := digest(d)
	if sum == h.refused[0].sum {
		return true // the one waited for, come back
	}
	hs.add(h, sum, d.arrival, now)
	return false
}

// refused records that d, a message from a phone to k, was answered
// ESME_RX_T_APPN. Call it before the answer is sent, so that the PDUs the
// SMSC sends after it are held.
func (hs *Holds) refused(log zerolog.Logger, k pair, d *Deliver) {
	sum := digest(d)
	hs.mu.Lock()
	defer hs.mu.Unlock()
	now := hs.clock()
	h := hs.held[k]
	if h != nil && now.After(h.until) {
		hs.letGo(log, k, h, now)
		h = nil
	}
	switch {
	case h == nil:
		if hs.held == nil {
			hs.held = make(map[pair]*hold)
		}
		if len(hs.held) >= hs.pairs() && !hs.sweep(log, now) {
			if !hs.full {
				hs.full = true
				log.Warn().Int("pairs", len(hs.held)).
					Msg("smpp: too many phones held after ESME_RX_T_APPN; a refused message's later ones are taken as they come")
			}
			return
		}
		hs.full = false
		hs.held[k] = &hold{refused: []refusal{{sum, d.arrival}}, since: now, until: now.Add(hs.wait())}
		hs.count.Add(1)
		log.Info().Str("source", k.src).Str("dest", k.dst).Stringer("wait", hs.wait()).
			Msg("smpp: message from a phone refused with ESME_RX_T_APPN; its later ones are refused until it comes back")
	case sum == h.refused[0].sum:
		h.until = now.Add(hs.wait())
		if last := h.since.Add(6 * hs.wait()); h.until.After(last) {
			h.until = last
		}
	default:
		hs.add(h, sum, d.arrival, now)
	}
}

// taken records that d, a message from a phone to k, was answered with a
// status other than ESME_RX_T_APPN: if it is a refused one come back, it
// is no longer waited for.
func (hs *Holds) taken(log zerolog.Logger, k pair, d *Deliver) {
	if hs.count.Load() == 0 {
		return
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	h := hs.held[k]
	if h == nil {
		return
	}
	sum := digest(d)
	i := slices.IndexFunc(h.refused, func(r refusal) bool { return r.sum == sum && r.arrival < d.arrival })
	if i < 0 {
		return
	}
	h.refused = slices.Delete(h.refused, i, i+1)
	if len(h.refused) == 0 {
		delete(hs.held, k)
		hs.count.Add(-1)
		log.Debug().Str("source", k.src).Str("dest", k.dst).Msg("smpp: the refused messages came back; the phone is no longer held")
		return
	}
	if i == 0 {
		now := hs.clock()
		h.since, h.until = now, now.Add(hs.wait())
	}
}

// add remembers a refused message of a held pair, in the order it came.
// One with the same content as one remembered is the same message come
// back: it keeps its first place.
func (hs *Holds) add(h *hold, sum [16]byte, arrival uint64, now time.Time) {
	if len(h.refused) >= maxRefused || slices.ContainsFunc(h.refused, func(r refusal) bool { return r.sum == sum }) {
		return
	}
	i, _ := slices.BinarySearchFunc(h.refused, arrival, func(r refusal, a uint64) int { return cmp.Compare(r.arrival, a) })
	h.refused = slices.Insert(h.refused, i, refusal{sum, arrival})
	if i == 0 { // it came before the one waited for
		h.since, h.until = now, now.Add(hs.wait())
	}
}

// letGo ends the hold of k, whose wait is over.
func (hs *Holds) letGo(log zerolog.Logger, k pair, h *hold, now time.Time) {
	delete(hs.held, k)
	hs.count.Add(-1)
	log.Warn().Str("source", k.src).Str("dest", k.dst).Int("refused", len(h.refused)).
		Stringer("waited", now.Sub(h.since).Round(time.Second)).
		Msg("smpp: a message refused with ESME_RX_T_APPN did not come back; the phone's messages are taken as they come")
}

// sweep lets go of the pairs past their wait, at most once a second (it
// reads them all), and reports whether there is room for another.
func (hs *Holds) sweep(log zerolog.Logger, now time.Time) bool {
	if now.Sub(hs.swept) >= time.Second {
		hs.swept = now
		for k, h := range hs.held {
			if now.After(h.until) {
				hs.letGo(log, k, h, now)
			}
		}
	}
	return len(hs.held) < hs.pairs()
}

// digest is what tells a message sent again from another of its pair: its
// text and how to read it (esm_class, data_coding, the message_payload and
// SAR TLVs). Other TLVs are left out, for an SMSC may add its own to a
// retry; two messages alike in all this read the same, in either order.
func digest(d *Deliver) [16]byte {
	h := sha256.New()
	b := []byte{d.ESMClass, d.DataCoding}
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.ShortMessage)))
	h.Write(b)
	h.Write(d.ShortMessage)
	for _, tag := range []uint16{tagMessagePayload, 0x020C, 0x020E, 0x020F} {
		if v, ok := d.TLVs[tag]; ok {
			b = binary.BigEndian.AppendUint16(b[:0], tag)
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			h.Write(b)
			h.Write(v)
		}
	}
	var sum [16]byte
	copy(sum[:], h.Sum(nil))
	return sum
}
