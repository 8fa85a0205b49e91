package router

import (
	"cmp"
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/internal/jidcache"
	"switchboard/store"
)

const (
	noticeBatch = 256
	noticePoll  = 2 * time.Second
	// NoticeLease is how long an instance holds a notice it claimed (or
	// was handed) before another may send it.
	NoticeLease = 30 * time.Second
	// handedMargin: a handed notice not sent this long before its lease
	// runs out is left to be claimed again rather than sent late, when
	// another instance may be sending it too.
	handedMargin = 5 * time.Second
	// delayedAfter: a message from a phone sent to its user this long
	// after it came (the XMPP server was down, or the notice waited for a
	// claim) carries the time it came, so that clients show it then.
	delayedAfter = 5 * time.Second
)

// HandNotices takes notices the store leased to this instance for
// NoticeLease (store.HandNotices) and sends them soon, without a claim.
//
// While the XMPP side is down they wait in memory, at most handedMax of
// them and never past their deadline. The others are given back to the
// store at once (releaseDropped), to be claimed: in their turn, before
// newer ones, by this instance once connected, or by another.
func (r *Router) HandNotices(ns []store.Notice) {
	now := time.Now()
	deadline := now.Add(NoticeLease - handedMargin)
	r.handedMu.Lock()
	// Deadlines only grow along the list: drop the expired head.
	i := 0
	for i < len(r.handed) && !now.Before(r.handed[i].deadline) {
		r.dropped = append(r.dropped, r.handed[i].n.ID)
		i++
	}
	r.handed = r.handed[:copy(r.handed, r.handed[i:])]
	for _, n := range ns {
		if len(r.handed) >= handedMax {
			r.dropped = append(r.dropped, n.ID)
			continue
		}
		r.handed = append(r.handed, handedNotice{n, deadline})
	}
	r.handedMu.Unlock()
	r.signal()
}

// releaseDropped gives the handed notices dropped from memory back to the
// store. Left leased to this instance, they would wait for their lease to
// run out while newer notices — a phone's later messages — went first.
func (r *Router) releaseDropped(ctx context.Context) {
	r.handedMu.Lock()
	ids := r.dropped
	r.dropped = nil
	r.handedMu.Unlock()
	if len(ids) == 0 {
		return
	}
	if err := r.store.ReleaseNotices(context.WithoutCancel(ctx), r.cfg.Instance, ids); err != nil {
		// Their leases run out in at most NoticeLease.
		r.log.Error().Err(err).Int("notices", len(ids)).Msg("giving back notices not sent in time failed")
		return
	}
	r.claimDue.Store(true)
}

// ReleaseHanded gives every handed notice not sent yet back to the store,
// to be claimed at once by another instance, or by this one's successor:
// Run does it as it returns, and serve again once the SMPP binds are
// closed, for what came from phones while they drained. Left leased to an
// instance that has stopped, they would wait for their lease to run out.
func (r *Router) ReleaseHanded(ctx context.Context) {
	r.handedMu.Lock()
	for _, h := range r.handed {
		r.dropped = append(r.dropped, h.n.ID)
	}
	r.handed = r.handed[:0]
	r.handedMu.Unlock()
	r.releaseDropped(ctx)
}

// raiseResent raises anew the notices of the messages sent again whose
// outcome is known (Outbound), to be claimed and sent like any: the
// client that sent it again had not seen it.
func (r *Router) raiseResent(ctx context.Context) {
	// notifyLoop alone takes from resentDone: what it holds now is there
	// to take.
	var ids []int64
	for n := len(r.resentDone); n > 0; n-- {
		ids = append(ids, <-r.resentDone)
	}
	if len(ids) == 0 {
		return
	}
	n, err := r.store.RaiseNotices(context.WithoutCancel(ctx), ids)
	if err != nil {
		r.log.Warn().Err(err).Int("messages", len(ids)).Msg("sending again the outcome of messages sent again failed")
		return
	}
	if n > 0 {
		r.claimDue.Store(true)
	}
}

// handedMax bounds the handed notices waiting in memory.
const handedMax = 1 << 16

// takeHanded returns up to max handed notices still within their lease.
func (r *Router) takeHanded(max int) []store.Notice {
	r.handedMu.Lock()
	defer r.handedMu.Unlock()
	now := time.Now()
	var out []store.Notice
	i := 0
	for ; i < len(r.handed) && len(out) < max; i++ {
		if h := r.handed[i]; now.Before(h.deadline) {
			out = append(out, h.n)
		} else {
			r.dropped = append(r.dropped, h.n.ID)
		}
	}
	r.handed = r.handed[:copy(r.handed, r.handed[i:])]
	return out
}

// notifyLoop sends pending notices — outcomes to senders and messages from
// phones to their recipients — whenever woken, and every noticePoll to pick
// up work recorded by other instances or whose lease ran out.
//
// Handed notices need no claim, so a wake for them alone does not query
// the store for claimable ones: only Wake (an outcome recorded here, a
// message from a phone, the XMPP connection back), a notice given back, and
// the poll do. Under a stream of receipts that check was, before, a query
// per batch sent.
func (r *Router) notifyLoop(ctx context.Context) {
	t := time.NewTicker(noticePoll)
	defer t.Stop()
	for {
		r.releaseDropped(ctx)
		r.raiseResent(ctx)
		// Claimable notices go first, until none is left: they are older
		// than those handed since (a lease ran out while the XMPP server
		// was down, or a send failed), so a phone's messages that waited
		// reach the user before its newer ones. A steady stream of handed
		// receipts cannot keep them waiting, and handed notices that wait
		// too long behind them are claimed in their turn.
		for r.xmpp.Connected() {
			r.releaseDropped(ctx)
			if r.claimDue.Swap(false) && r.sendNotices(ctx, false) {
				r.claimDue.Store(true) // a full batch: there may be more
				continue
			}
			if !r.xmpp.Connected() || !r.sendNotices(ctx, true) {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
			r.claimDue.Store(true)
		}
	}
}

// sendNotices sends one batch of the notices handed over, or of claimed
// ones. It reports whether there may be more of that kind to send.
func (r *Router) sendNotices(ctx context.Context, handed bool) (more bool) {
	var ns []store.Notice
	if handed {
		ns = r.takeHanded(noticeBatch)
		more = len(ns) > 0
	} else {
		var err error
		ns, err = r.store.ClaimNotices(ctx, r.cfg.Instance, noticeBatch, NoticeLease)
		if err != nil {
			if ctx.Err() == nil {
				r.claims.Fail(r.log, err, "claiming receipts, errors and messages from phones to send failed; retrying (the store?)")
			}
			return false
		}
		r.claims.OK(r.log, "claiming receipts, errors and messages from phones to send works again")
		more = len(ns) == noticeBatch
	}
	if len(ns) == 0 {
		return false
	}
	var done, failed []int64
	seen := make(presenceSeen)
	r.probeSenders(ctx, ns, seen)
	bctx, end := r.xmpp.Batch(ctx)
	for _, n := range ns {
		if err := r.send(bctx, n, seen); err != nil {
			r.log.Warn().Err(err).Int64("msg", n.ID).Msg("sending notice failed; will retry")
			failed = append(failed, n.ID)
			continue
		}
		done = append(done, n.ID)
	}
	if err := end(); err != nil && len(done) > 0 {
		r.log.Warn().Err(err).Int("notices", len(done)).Msg("sending notices failed; will retry")
		failed = append(failed, done...)
		done = nil
	}
	// Written is not delivered: only once the server has answered a ping
	// sent after them are the stanzas known to have left this connection.
	// If it dies first, everything is sent again after the reconnect
	// (at-least-once: a message may, rarely, arrive twice, never not at all).
	bg := context.WithoutCancel(ctx)
	if len(done) > 0 {
		if err := r.xmpp.Sync(ctx); err != nil {
			r.log.Warn().Err(err).Int("notices", len(done)).Msg("server did not confirm; notices will be sent again")
			failed = append(failed, done...)
			done = nil
		}
	}
	if len(done) > 0 {
		// Recorded in the background: the notices stay leased to this
		// instance meanwhile, and the store may hold the write a few
		// milliseconds to share a commit, which the next batch need not
		// wait for. Run waits for it before returning.
		in := make(map[int64]bool)
		for _, n := range ns {
			in[n.ID] = n.Direction == store.In
		}
		r.recording.Add(1)
		go func() {
			defer r.recording.Done()
			if err := r.store.NoticesDone(bg, done); err != nil {
				r.log.Error().Err(err).Msg("recording sent notices failed")
				return
			}
			for _, id := range done {
				r.log.Debug().Int64("msg", id).Msg("notice handed to the XMPP server")
				if in[id] {
					r.cfg.OnMessage(store.In, store.RouteSMS, "delivered")
				}
			}
		}()
	}
	if err := r.store.ReleaseNotices(bg, r.cfg.Instance, failed); err != nil {
		r.log.Error().Err(err).Msg("releasing notices failed")
	}
	if len(failed) > 0 {
		r.claimDue.Store(true) // given back: claimable again
	}
	return more && len(failed) == 0
}

// presenceSeen holds, for one batch (of messages to route, or of notices),
// what Available said of each JID: each is read once (a read of the store),
// not once per message, as in a burst of failures or of messages to one
// user.
type presenceSeen map[string][2]bool

// probedKey prefixes, in a presenceSeen, the full JIDs probeSenders asked
// and found gone (or serving no disco).
const probedKey = "\x00probed "

// probedGone tells whether probeSenders asked user and found it gone.
func (s presenceSeen) probedGone(user jid.JID) bool { return s[probedKey+user.String()][0] }

// available is r.xmpp.Available through seen.
func (r *Router) available(user jid.JID, seen presenceSeen) (known, avail bool) {
	k := user.String()
	if v, ok := seen[k]; ok {
		return v[0], v[1]
	}
	known, avail = r.xmpp.Available(user)
	seen[k] = [2]bool{known, avail}
	return known, avail
}

// probeSenders asks, before a batch is written, the clients that sent
// messages which failed whether they are still there, where their
// presence is not seen (no XEP-0356 presence privilege): a server drops an
// error to a client that has gone (RFC 6121 §8.5.3.2.1), and the user would
// never hear of the failure. At most probeMax a batch; the rest get the
// error as before.
func (r *Router) probeSenders(ctx context.Context, ns []store.Notice, seen presenceSeen) {
	probes := 0
	for _, n := range ns {
		if n.Direction != store.Out || n.State != store.StateFailed || probes == probeMax {
			continue
		}
		user, err := jidcache.Parse(n.UserJID)
		if err != nil || user.Resourcepart() == "" {
			continue
		}
		if known, _ := r.available(user, seen); known {
			continue
		}
		probes++
		if known, there := r.xmpp.Reachable(ctx, user); known {
			seen[user.String()] = [2]bool{true, there}
			if !there {
				seen[probedKey+user.String()] = [2]bool{true, true}
			}
		}
	}
}

// probeMax bounds the clients probeSenders asks in one batch of notices.
const probeMax = 16

func (r *Router) send(ctx context.Context, n store.Notice, seen presenceSeen) error {
	peer, err := r.numberJID(cmp.Or(n.PeerLocal, n.PeerNumber)) // the form of the number the user wrote to
	if err != nil {
		// Not a number (an alphanumeric sender with characters a JID
		// cannot hold): deliver from the component itself.
		peer = r.cfg.Component
	}
	user, err := jidcache.Parse(n.UserJID)
	if err != nil {
		r.log.Error().Err(err).Int64("msg", n.ID).Msg("stored JID does not parse; dropping notice")
		return nil
	}
	switch {
	case n.Direction == store.In:
		body := n.Body
		if body == "" {
			body = "(an empty SMS)" // an empty <body/>, which clients do not show
		}
		if peer.Equal(r.cfg.Component) {
			body = cmp.Or(n.PeerNumber, "(no sender)") + ": " + body
		}
		var written time.Time
		if time.Since(n.Stored) > delayedAfter {
			written = n.Stored
		}
		return r.xmpp.SendText(ctx, peer, user, "sms-"+strconv.FormatInt(n.ID, 10), body, written)
	case n.State == store.StateDelivered:
		if !n.WantReceipt || n.StanzaID == "" {
			return nil
		}
		return r.xmpp.SendReceipt(ctx, peer, user, n.StanzaID)
	case n.State == store.StateFailed:
		if user.Resourcepart() != "" {
			if known, avail := r.available(user, seen); known && !avail {
				if seen.probedGone(user) {
					// Asked, it answered service-unavailable: a client
					// that has gone, or one that serves no disco (rare).
					// The error too, for the latter; the server drops
					// it for the former.
					_ = r.failureError(ctx, peer, user, n)
				}
				// The client that sent it has gone. Servers drop an error
				// to an unavailable full JID (RFC 6121 §8.5.3.2.1), so the
				// gateway tells the user in a chat message of its own
				// (from the number it would read as the phone's words),
				// which reaches their other clients or waits in offline
				// storage.
				return r.xmpp.SendText(ctx, r.cfg.Component, user.Bare(), "sms-failed-"+strconv.FormatInt(n.ID, 10), r.failureText(ctx, n), time.Time{})
			}
		}
		return r.failureError(ctx, peer, user, n)
	}
	return nil
}

// failureError sends the error for a failed message, n, to its sender.
func (r *Router) failureError(ctx context.Context, peer, user jid.JID, n store.Notice) error {
	// The condition the failure called for (the SMSC's refusal of the
	// number or of the sender, the SMS limits refusing a relay's
	// fallback), else recipient-unavailable.
	cond := cmp.Or(stanza.Condition(n.ErrorCondition), stanza.RecipientUnavailable)
	if n.Route == store.RouteXMPP { // a relay whose fallback the SMS limits refused, or not handed on
		return r.xmpp.SendError(ctx, peer, user, n.StanzaID,
			stanzaErr(stanza.Cancel, cond, "The message was not delivered: "+n.Error+"."))
	}
	return r.xmpp.SendError(ctx, peer, user, n.StanzaID,
		stanzaErr(stanza.Cancel, cond, "The SMS was not delivered: "+n.Error+"."))
}

// failureText tells a user, in a chat message, that a message of theirs
// was not delivered, quoting its beginning so they can tell which.
func (r *Router) failureText(ctx context.Context, n store.Notice) string {
	body := n.Body
	if body == "" {
		// A notice handed on at once carries no text: read it.
		var err error
		if body, err = r.store.MessageBody(ctx, n.ID); err != nil {
			r.log.Warn().Err(err).Int64("msg", n.ID).Msg("reading a failed message's text failed; reporting it without")
		}
	}
	to := "Your SMS to " + n.PeerNumber
	if n.Route == store.RouteXMPP {
		to = "Your message to " + n.PeerNumber
	}
	if q := quoteStart(body, failureQuote, "…"); q != "" {
		to += " “" + q + "”"
	}
	return to + " was not delivered: " + n.Error + "."
}

// failureQuote is how many characters of a failed message its report quotes.
const failureQuote = 60

// quoteStart is s on one line, cut after about max characters with
// ellipsis after the cut, never inside a character a reader sees as one (an accent and
// its letter, an emoji with its modifiers or joined to others, a flag).
func quoteStart(s string, max int, ellipsis string) string {
	s = strings.Join(strings.Fields(s), " ")
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	cut := max
	for cut > 0 && (continues(r[cut]) || r[cut-1] == zwj) {
		cut--
	}
	if isRegional(r[cut]) {
		// Flags are pairs of regional indicators: cut before an unpaired one.
		n := 0
		for i := cut - 1; i >= 0 && isRegional(r[i]); i-- {
			n++
		}
		cut -= n % 2
	}
	return strings.TrimRight(string(r[:cut]), " ") + ellipsis
}

const zwj = '\u200D'

// continues reports whether c belongs with the character before it.
func continues(c rune) bool {
	return unicode.In(c, unicode.Mn, unicode.Me) || c == zwj ||
		c >= 0xFE00 && c <= 0xFE0F || // variation selectors
		c >= 0x1F3FB && c <= 0x1F3FF || // skin tones
		c >= 0xE0020 && c <= 0xE007F // tags (subdivision flags)
}

func isRegional(c rune) bool { return c >= 0x1F1E6 && c <= 0x1F1FF }

// reactionQuote is how many characters of the message reacted to an SMS
// of reactions quotes.
const reactionQuote = 40

// quoteReacted writes into p's SMS the start of the message its reactions
// are to, when the user received that message from the same number: its
// id, as the gateway sent it, is "sms-" and the message's number (the
// archive's id alone, in a message fetched from it). Any other id (a
// message the user wrote, or one of another conversation) is not looked
// up, and the SMS names no message.
func (r *Router) quoteReacted(ctx context.Context, p *pending, user string) {
	id, err := strconv.ParseInt(strings.TrimPrefix(p.m.Reaction.ID, "sms-"), 10, 64)
	if err != nil || id <= 0 {
		return
	}
	body, err := r.store.ReceivedText(ctx, id, user, p.dest)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			r.log.Warn().Err(err).Int64("msg", id).Msg("reading the message reacted to failed; sending the reactions without it")
		}
		return
	}
	if q := smsQuote(body); q != "" {
		p.msg.Body = ReactionText(p.m.Reaction.Emojis, q)
		p.msg.Parts = r.cfg.Parts(p.dest, p.msg.Body)
	}
}
