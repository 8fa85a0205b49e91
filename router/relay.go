package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/roster/number"
	"switchboard/store"
)

const (
	fallbackPoll  = time.Second
	fallbackBatch = 256
)

// fallbackLoop sends as SMS the relayed messages whose receipt did not come
// in time. The store moves each at most once, so no message is sent twice.
func (r *Router) fallbackLoop(ctx context.Context) {
	t := time.NewTicker(fallbackPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for {
			due, err := r.store.DueRelays(ctx, time.Now(), fallbackBatch)
			if err == nil && len(due) > 0 {
				err = r.fallBack(ctx, due, "no receipt came over XMPP in time")
			}
			if err != nil {
				if ctx.Err() == nil {
					r.fallbacks.Fail(r.log, err, "reading or sending the relays due for SMS fallback failed; retrying (the store?)")
				}
				break
			}
			r.fallbacks.OK(r.log, "reading the relays due for SMS fallback works again")
			if len(due) < fallbackBatch {
				break
			}
		}
	}
}

// fallBack sends due (relayed messages: id, sender, destination) as SMS,
// those the SMS limits allow, like any SMS (the sender's quota, the
// destination's country and prefix); the others fail, and their senders
// get an error saying why. A message another instance or a receipt has
// taken meanwhile is left alone. Such a failure's error is a
// policy-violation.
func (r *Router) fallBack(ctx context.Context, due []*store.Outbound, why string) error {
	refused, err := r.refusedFallbacks(ctx, due)
	if err != nil {
		return err
	}
	var ids []int64
	for _, m := range due {
		no, ok := refused[m.ID]
		if !ok {
			ids = append(ids, m.ID)
			continue
		}
		// The notice reads "The message was not delivered: " and this.
		failed, err := r.store.FailRelay(ctx, m.ID, why+", and the SMS limits refused it as SMS: "+clause(no.why), string(stanza.PolicyViolation))
		if err != nil {
			return err
		}
		if failed {
			r.log.Info().Int64("msg", m.ID).Str("why", no.why).Msg("fallback to SMS refused by the limits")
			r.cfg.OnRefused(no.reason)
			r.cfg.OnMessage(store.Out, store.RouteXMPP, "failed")
			r.Wake() // its notice is claimable
		}
	}
	moved, err := r.store.FallBackIDs(ctx, ids, time.Now())
	if err != nil {
		return err
	}
	for _, m := range moved {
		r.fellBack(ctx, m, why)
	}
	if len(moved) > 0 {
		r.cfg.WakeSMS()
	}
	return nil
}

// refusal is why the limits refuse an SMS: a label for metrics, a text
// for the sender.
type refusal struct{ reason, why string }

// refusedFallbacks checks due against the SMS limits, in order, as one
// batch, and returns why each refused one may not go as SMS.
func (r *Router) refusedFallbacks(ctx context.Context, due []*store.Outbound) (map[int64]refusal, error) {
	bares := make([]string, len(due))
	var senders []string
	for i, m := range due {
		bares[i] = bareOf(m.SenderJID)
		if !slices.Contains(senders, bares[i]) {
			senders = append(senders, bares[i])
		}
	}
	q, err := r.newQuota(ctx, senders)
	if err != nil {
		return nil, err
	}
	refused := make(map[int64]refusal)
	for i, m := range due {
		reason, why := r.forbidden(m.Dest)
		if reason == "" {
			reason, why = q.take(bares[i], m.Parts)
		}
		if reason != "" {
			refused[m.ID] = refusal{reason, why}
		}
	}
	return refused, nil
}

// clause makes a sentence a clause to follow a colon: no final period, and
// a capital first letter lowered unless it starts a word in capitals (SMS).
func clause(s string) string {
	s = strings.TrimSuffix(s, ".")
	r := []rune(s)
	if len(r) > 1 && unicode.IsUpper(r[0]) && !unicode.IsUpper(r[1]) {
		r[0] = unicode.ToLower(r[0])
	}
	return string(r)
}

// bareOf is the bare form of a JID as stored, or s itself when it does
// not parse.
func bareOf(s string) string {
	if j, err := jid.Parse(s); err == nil {
		return j.Bare().String()
	}
	return s
}

// fellBack tells the sender that a message goes as SMS after all. The
// notice is a courtesy: the message's own outcome comes as a receipt or an
// error like any SMS.
func (r *Router) fellBack(ctx context.Context, m *store.Outbound, why string) {
	r.log.Info().Int64("msg", m.ID).Str("why", why).Msg("falling back to SMS")
	r.cfg.OnMessage(store.Out, store.RouteXMPP, "fallback")
	sender, err := jid.Parse(m.SenderJID)
	if err != nil {
		return
	}
	peer, err := r.numberJID(cmp.Or(m.PeerLocal, m.Dest)) // the form of the number written to
	if err != nil {
		return
	}
	text := fmt.Sprintf("(Not confirmed over XMPP: %s. The message was sent as SMS.)", why)
	if err := r.xmpp.SendText(ctx, peer, sender, "fallback-"+m.StanzaID, text, time.Time{}); err != nil {
		r.log.Debug().Err(err).Msg("could not send the fallback notice")
	}
}

// conversation resolves a user's number and a number JID's number.
func (r *Router) conversation(ctx context.Context, user, numberJID jid.JID) (userNumber, peer string, err error) {
	nums, err := r.store.NumbersOf(ctx, []string{user.Bare().String()})
	if err != nil {
		return "", "", err
	}
	userNumber, ok := nums[user.Bare().String()]
	if !ok {
		return "", "", errNoNumber
	}
	n, err := number.FromJID(numberJID, r.cfg.DefaultRegion)
	if err != nil {
		return "", "", err
	}
	return userNumber, n.String(), nil
}

var errNoNumber = errors.New("router: user has no number")

// Receipt takes an XEP-0184 receipt, m, from a user for the message id
// to a number JID. It returns false, taking nothing, when the user is not
// one this gateway serves. Otherwise ackLoop, after Receipt returns,
// looks for the message relayed to the user it is for: found, the message
// is delivered, and once that is recorded its sender gets the receipt if
// they asked (after the SMS fallback too: the SMS is not recalled, none is
// sent again); not found, m is routed as any stanza (Outbound) when route
// is set, so a receipt for something else is relayed as it is, and else
// dropped (a stanza the component does not route, such as one with an
// encrypted payload).
func (r *Router) Receipt(ctx context.Context, m Message, id string, route bool) bool {
	if !r.Served(m.From) {
		return false
	}
	select {
	case r.acks <- relayAck{m: m, id: id, route: route}:
	case <-ctx.Done():
		// Not recorded: the message waits for its fallback, as if the
		// receipt had not come.
		r.log.Warn().Str("id", id).Msg("receipt not taken: the gateway is stopping or overloaded")
	}
	return true
}

// relayAck is a receipt Receipt took, waiting to be matched and recorded.
type relayAck struct {
	m     Message
	id    string // of the message it acknowledges
	route bool   // m is routed when it matches none

	rel             store.Relay // the message, once found
	recipientNumber string
}

// ackLoop matches and records the receipts Receipt took, together (see
// batches), and passes each to its message's sender once recorded.
// Matched and recorded one by one in the stream's handler, each cost two
// reads and a commit of its own, with every stanza behind it waiting.
func (r *Router) ackLoop(ctx context.Context) { batches(ctx, r.acks, batchMax, r.recordAcks) }

func (r *Router) recordAcks(ctx context.Context, batch []relayAck) {
	found := r.matchAcks(ctx, batch)
	ids := make([]int64, len(found))
	for i, a := range found {
		ids[i] = a.rel.ID
	}
	fresh, err := r.store.AckRelays(ctx, ids)
	if err != nil {
		// The senders still get the receipts; the messages wait for
		// their fallback.
		r.log.Error().Err(err).Int("receipts", len(found)).Msg("recording receipts for relayed messages failed")
	}
	for _, a := range found {
		switch {
		case fresh[a.rel.ID]:
			delete(fresh, a.rel.ID) // the same receipt twice counts once
			r.cfg.OnMessage(store.Out, store.RouteXMPP, "delivered")
		case err == nil:
			r.log.Info().Int64("msg", a.rel.ID).Str("state", a.rel.State).Msg("late XMPP receipt (the message had fallen back to SMS or was settled)")
		}
		if !a.rel.WantReceipt {
			continue
		}
		peer, sender, ok := r.relayEnds(a.rel, a.recipientNumber)
		if !ok {
			continue
		}
		if err := r.xmpp.SendReceipt(ctx, peer, sender, a.id); err != nil {
			r.log.Warn().Int64("msg", a.rel.ID).Err(err).Msg("relaying receipt failed")
		}
	}
}

// matchAcks finds the relayed messages batch's receipts are for (two reads
// for the whole batch), and returns the receipts that found one. The
// others are routed as any stanza.
func (r *Router) matchAcks(ctx context.Context, batch []relayAck) []relayAck {
	users := make([]string, len(batch))
	for i, a := range batch {
		users[i] = a.m.From.Bare().String()
	}
	nums, err := r.store.NumbersOf(ctx, slices.Compact(slices.Sorted(slices.Values(users))))
	if err != nil {
		r.log.Error().Err(err).Int("receipts", len(batch)).Msg("matching receipts failed; their messages wait for the fallback")
		return nil
	}
	var (
		keys  = make([]store.RelayKey, len(batch)) // zero: none to look for
		ask   []store.RelayKey
		asIs  []Message
		found []relayAck
	)
	for i := range batch {
		// The receipt goes from the message's recipient (the user) to its
		// sender's number.
		a := &batch[i]
		userNumber, ok := nums[users[i]]
		n, err := number.FromJID(a.m.To, r.cfg.DefaultRegion)
		if !ok || err != nil {
			continue
		}
		a.recipientNumber = userNumber
		keys[i] = store.RelayKey{SenderNumber: n.String(), PeerNumber: userNumber, StanzaID: a.id}
		ask = append(ask, keys[i])
	}
	rels, err := r.store.FindRelays(ctx, ask)
	if err != nil {
		r.log.Error().Err(err).Int("receipts", len(batch)).Msg("matching receipts failed; their messages wait for the fallback")
		return nil
	}
	for i, a := range batch {
		rel, ok := rels[keys[i]]
		if !ok {
			if a.route {
				asIs = append(asIs, a.m)
			}
			continue
		}
		a.rel = rel
		found = append(found, a)
	}
	for _, m := range asIs {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second) // the intake may be gone, at shutdown
		if err := r.Outbound(ctx, m); err != nil {
			r.log.Debug().Err(err).Str("from", m.From.String()).Msg("a receipt for no relayed message not routed")
		}
		cancel()
	}
	return found
}

// Bounce handles a message error coming back for a message relayed to a
// user (their server could not deliver it). With the fallback on, the
// message goes as SMS at once; otherwise it fails and the error is relayed
// to the sender. It returns false when no relayed message matches.
func (r *Router) Bounce(ctx context.Context, from, to jid.JID, id string, payload []byte) bool {
	if n, ok := strings.CutPrefix(id, "sms-"); ok {
		// A phone's message as the gateway sent it (router.send): the
		// user's server refused it (the user blocked the number).
		if msg, err := strconv.ParseInt(n, 10, 64); err == nil {
			refused, err := r.store.RefuseInbound(ctx, msg, from.Bare().String(), "refused by the user's server (the number blocked?)")
			if err != nil {
				r.log.Error().Err(err).Int64("msg", msg).Msg("recording a refused message from a phone failed")
			}
			if refused {
				r.log.Info().Int64("msg", msg).Str("user", from.Bare().String()).Str("from", to.Localpart()).
					Msg("the user's server refused a message from a phone (the number blocked?): dropped from the archive")
				return true
			}
		}
	}
	recipientNumber, senderNumber, err := r.conversation(ctx, from, to)
	if err != nil {
		return false
	}
	rel, err := r.store.FindRelay(ctx, senderNumber, recipientNumber, id)
	if err != nil {
		return false
	}
	failed := false
	if rel.Armed {
		err := r.fallBack(ctx, []*store.Outbound{{ID: rel.ID, SenderJID: rel.SenderJID, Dest: recipientNumber}},
			"the recipient's server could not deliver it")
		if err == nil {
			return true // gone as SMS, or failed with a notice saying why
		}
		// The sender hears of the bounce now; the timer tries the SMS again.
		r.log.Warn().Int64("msg", rel.ID).Err(err).Msg("SMS fallback after a bounce failed; passing the bounce on")
	} else if rel.State == store.StateSent {
		if failed, err = r.store.BounceRelay(ctx, rel.ID, "the recipient's server could not deliver it"); err != nil {
			r.log.Error().Err(err).Int64("msg", rel.ID).Msg("recording bounce failed")
		}
	}
	peer, sender, ok := r.relayEnds(rel, recipientNumber)
	if !ok {
		return true
	}
	if failed {
		r.cfg.OnMessage(store.Out, store.RouteXMPP, "failed")
	}
	if err := r.xmpp.SendRelayError(ctx, peer, sender, id, payload); err != nil {
		r.log.Warn().Int64("msg", rel.ID).Err(err).Msg("relaying error failed")
	}
	return true
}

// relayEnds returns who an answer about relayed message rel goes from (the
// recipient's number JID, in the form the sender wrote to) and to (the
// sender's full JID); ok is false when either does not parse.
func (r *Router) relayEnds(rel store.Relay, recipientNumber string) (peer, sender jid.JID, ok bool) {
	sender, err := jid.Parse(rel.SenderJID)
	if err != nil {
		return peer, sender, false
	}
	peer, err = r.numberJID(cmp.Or(rel.PeerLocal, recipientNumber))
	return peer, sender, err == nil
}
