package smsgw

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"switchboard/roster/number"
	"switchboard/smsgw/coding"
	"switchboard/smsgw/dlr"
	"switchboard/smsgw/smpp"
	"switchboard/store"
)

// SAR TLVs (SMPP 3.4 §5.3.2.22–24), the other way to mark concatenation.
const (
	tlvSarMsgRefNum     = 0x020C
	tlvSarTotalSegments = 0x020E
	tlvSarSegmentSeqnum = 0x020F
	tlvReceiptedMsgID   = 0x001E
	// destination_port (SMPP 3.4 §5.3.2.20): for an application on the
	// phone, as UDH port addressing is.
	tlvDestinationPort = 0x020B
)

// HandleDeliver handles deliver_sm and data_sm: delivery receipts update
// message states; other messages are stored for their recipient. The
// response status tells the SMSC whether it must retry: nothing is
// acknowledged before it is stored.
// It handles the default SMSC's; see Handler for others.
func (g *Gateway) HandleDeliver(ctx context.Context, d *smpp.Deliver) smpp.Status {
	return g.handleDeliver(ctx, "", d)
}

func (g *Gateway) handleDeliver(ctx context.Context, smsc string, d *smpp.Deliver) smpp.Status {
	_, hasReceiptTLV := d.TLVs[tlvReceiptedMsgID]
	if dlr.IsReceipt(d.ESMClass) || hasReceiptTLV {
		return g.handleReceipt(ctx, smsc, d)
	}
	return g.handleMO(ctx, smsc, d)
}

func (g *Gateway) handleReceipt(ctx context.Context, smsc string, d *smpp.Deliver) smpp.Status {
	r, ok, err := dlr.Parse(d.ESMClass, d.ShortMessage, d.TLVs)
	if err != nil || !ok || r.ID == "" {
		// Retrying will not make it parse: acknowledge and log.
		g.log.Warn().Err(err).Hex("short_message", d.ShortMessage).Msg("unreadable delivery receipt ignored")
		return smpp.StatusOK
	}
	switch {
	case dlr.IsIntermediate(d.ESMClass):
		// A report on a message the SMSC still holds (an attempt that
		// failed, to be tried again): never its outcome.
		g.log.Debug().Str("smsc_id", r.ID).Str("stat", string(r.State)).Msg("intermediate notification")
		return smpp.StatusOK
	case !r.State.Settles():
		// In progress, or UNKNOWN (see dlr.State.Settles): the message
		// waits for the receipt that decides it, or for ReceiptWait.
		g.log.Debug().Str("smsc_id", r.ID).Str("stat", string(r.State)).Msg("receipt that decides nothing")
		return smpp.StatusOK
	}
	if !r.State.Known() {
		// Final, and not delivery (see dlr.State.Final): the sender is
		// told the carrier reported it failed, with this state.
		g.log.Warn().Str("smsc_id", r.ID).Str("stat", string(r.State)).Hex("short_message", d.ShortMessage).
			Msg("receipt with a state this gateway does not know: taken as a failure")
	}
	res, err := g.outbox.Receipt(ctx, smsc, dlr.IDForms(r.ID), string(r.State), r.Err)
	if err != nil {
		g.log.Error().Err(err).Str("smsc_id", r.ID).Msg("storing receipt failed; asking the SMSC to retry")
		return smpp.StatusRxTAppn
	}
	ev := g.log.Debug().Str("smsc_id", r.ID).Str("stat", string(r.State))
	if !res.Matched {
		ev.Msg("receipt for an id not seen yet: kept")
		return smpp.StatusOK
	}
	ev.Int64("msg", res.Message).Msg("receipt")
	if !res.SubmittedAt.IsZero() {
		g.cfg.OnReceipt(time.Since(res.SubmittedAt))
	}
	if res.Final {
		g.cfg.OnMessage(store.Out, store.RouteSMS, res.State)
		if res.Unclaimed {
			g.cfg.OnFinal()
		}
	}
	return smpp.StatusOK
}

func (g *Gateway) handleMO(ctx context.Context, smsc string, d *smpp.Deliver) smpp.Status {
	src := phoneAddr(d.Source, g.cfg.DefaultRegion)
	dst, ok := phoneNumber(d.Dest, g.cfg.DefaultRegion)
	if !ok {
		g.log.Warn().Str("dest", d.Dest.Addr).Msg("message from a phone to an address that is not a number")
		g.cfg.OnMessage(store.In, store.RouteSMS, "refused")
		return smpp.StatusInvDstAdr
	}
	dest := dst.String()
	log := g.log.With().Str("source", src).Str("dest", dest).Logger()
	payload := d.ShortMessage
	var key *store.FragmentKey
	seq, outOfRange := 0, smpp.StatusInvEsmClass // the answer to a part number out of range: the UDH's
	// The national language tables the UDH names (each part's for itself).
	var shift coding.Shift
	// For an application on the phone (a WAP push, visual voicemail),
	// whatever its coding: refused like binary data below.
	_, dport := d.TLVs[tlvDestinationPort]
	if dport || d.ESMClass&coding.ESMClassUDHI != 0 && coding.PortAddressed(payload) {
		log.Info().Uint8("data_coding", d.DataCoding).Int("octets", len(payload)).Msg("message for a phone's application (port addressed) refused")
		g.cfg.OnMessage(store.In, store.RouteSMS, "refused")
		return smpp.StatusRxPAppn
	}
	if d.ESMClass&coding.ESMClassUDHI != 0 {
		c, rest, err := coding.SplitUDH(payload)
		if err != nil {
			log.Warn().Err(err).Msg("malformed UDH")
			g.cfg.OnMessage(store.In, store.RouteSMS, "refused")
			return smpp.StatusInvEsmClass
		}
		shift, payload = coding.LanguageShift(payload), rest
		if c != nil && c.Total > 1 {
			key = &store.FragmentKey{Source: src, Dest: dest, Ref: int(c.Ref), Total: int(c.Total)}
			seq = int(c.Seq)
		}
	} else if ref, total, s, ok, bad := sar(d.TLVs); bad != smpp.StatusOK {
		// Read as a whole message, a part would reach the user alone.
		log.Warn().Stringer("status", bad).Msg("malformed sar_ parameters (a part of a concatenated message)")
		g.cfg.OnMessage(store.In, store.RouteSMS, "refused")
		return bad
	} else if ok && total > 1 {
		key = &store.FragmentKey{Source: src, Dest: dest, Ref: ref, Total: total}
		seq, outOfRange = s, smpp.StatusInvOptParamVal
	}
	// Data coding 0 in the SMSC's alphabet, named so for the parts kept
	// until the rest come.
	dc := g.smscAlphabet(smsc).Canonical(d.DataCoding)
	if coding.Binary(dc, payload) {
		// Nothing a person reads: refused, as a coding the gateway cannot
		// show, rather than shown as garbage.
		log.Info().Uint8("data_coding", d.DataCoding).Int("octets", len(payload)).Msg("binary message (data for a phone's application) refused")
		g.cfg.OnMessage(store.In, store.RouteSMS, "refused")
		return smpp.StatusRxPAppn
	}
	// GSM text under national language tables is read as UCS-2 from here,
	// so that a part stored until the others come keeps its meaning
	// without its UDH. A language without a table is read with the default
	// one: the text is delivered, likely with some characters wrong.
	dc, payload, err := coding.Unshift(dc, payload, shift)
	if err != nil {
		ev := log.Warn().Err(err).Uint8("data_coding", d.DataCoding)
		if key != nil {
			ev = ev.Int("part", seq).Int("parts", key.Total)
		}
		ev.Msg("message from a phone in a national language without a table: read with the default GSM alphabet")
	}
	if key == nil {
		text, err := coding.Decode(dc, payload)
		if err != nil {
			log.Warn().Err(err).Uint8("data_coding", d.DataCoding).Msg("undecodable message")
			g.cfg.OnMessage(store.In, store.RouteSMS, "refused")
			return smpp.StatusRxPAppn
		}
		warnReplaced(log, text, d.DataCoding)
		if err := g.accept(ctx, log, smsc, d, &store.Inbound{Source: src, Dest: dest, Body: text}); err != nil {
			return g.inboundError(log, err)
		}
		return smpp.StatusOK
	}
	if seq < 1 || seq > key.Total {
		log.Warn().Int("seq", seq).Int("total", key.Total).Msg("concatenated part out of range")
		g.cfg.OnMessage(store.In, store.RouteSMS, "refused")
		return outOfRange
	}
	// A part is stored until the others come: only for a number someone
	// has (Owned; a whole message is checked when it is stored).
	f := store.Fragment{FragmentKey: *key, Seq: seq, DataCoding: dc, Payload: payload, Session: g.session(d), Ended: g.ended,
		SourceTON: d.Source.TON, SourceNPI: d.Source.NPI, SMSC: smsc, Owned: true}
	if text, err := coding.Decode(dc, payload); err == nil && !strings.ContainsRune(text, utf8.RuneError) {
		f.Text = text // a character split across parts leaves the resend check out
	}
	frags, err := g.outbox.AddFragment(ctx, f)
	for tries := 0; tries < 3; tries++ {
		var clash *store.PartClash
		if !errors.As(err, &clash) {
			break
		}
		// Another message from the phone holds this part's place: it
		// reused the reference before that one was whole. That one is
		// delivered as it stands, its gaps marked, as the sweep would
		// later (which frees the place; keeping either part alone would
		// lose the other's text), and this part is stored in its turn.
		if err := g.inbox.Inbound(ctx, incomplete(clash.Parts)); err != nil {
			return g.inboundError(log, err)
		}
		log.Warn().Int("ref", key.Ref).Int("part", seq).Int("parts", len(clash.Parts)).Int("total", key.Total).
			Msg("two messages from a phone with one concatenation reference: the first delivered incomplete")
		frags, err = g.outbox.AddFragment(ctx, f)
	}
	if errors.Is(err, store.ErrNotFound) {
		return g.refuseNoRecipient(log)
	}
	if errors.Is(err, store.ErrResent) {
		log.Info().Int("part", seq).Msg("part of a message from a phone sent again after a new bind: acknowledged, the message was delivered")
		return smpp.StatusOK
	}
	if err != nil {
		log.Error().Err(err).Msg("storing part failed; asking the SMSC to retry")
		return smpp.StatusRxTAppn
	}
	if len(frags) < key.Total {
		return smpp.StatusOK
	}
	// The part is stored: from here a failure is recovered by the sweep, so
	// the SMSC need not retry.
	text := assemble(frags)
	warnReplaced(log, text, d.DataCoding)
	if err := g.accept(ctx, log, smsc, d, &store.Inbound{Source: src, Dest: dest, Body: text, FragmentKey: key}); err != nil {
		log.Warn().Err(err).Msg("delivering a reassembled message failed; the sweep will retry")
	}
	return smpp.StatusOK
}

// accept hands in, a message from a phone that came in d from SMSC smsc,
// to the inbox, naming d's bind so that the store knows a resend
// (in.Duplicate), and the sender's address and SMSC, so that a short code
// can be answered the way it came.
func (g *Gateway) accept(ctx context.Context, log zerolog.Logger, smsc string, d *smpp.Deliver, in *store.Inbound) error {
	in.Session, in.Ended = g.session(d), g.ended
	in.SourceTON, in.SourceNPI, in.SMSC = d.Source.TON, d.Source.NPI, smsc
	if err := g.inbox.Inbound(ctx, in); err != nil {
		return err
	}
	if in.Duplicate {
		log.Info().Int64("msg", in.ID).Msg("message from a phone sent again after a new bind: acknowledged, not delivered twice")
	}
	return nil
}

// session names the bind that carried d, across instances, and the
// stretch of its responses d's belongs to: instance/bind/stretch.
func (g *Gateway) session(d *smpp.Deliver) string {
	return g.cfg.Instance + "/" + strconv.FormatUint(d.Session, 10) + "/" + strconv.FormatUint(d.Stretch, 10)
}

// ended tells whether the response to a message stored from session (see
// session) may not have reached the SMSC, so that the same message on
// another bind is taken for a resend: its bind is down, and was lost before
// the SMSC was known to have read that response (smpp.ResponseMayBeUnread).
// A response the SMSC read makes the same text again a person writing it
// again ("Yes", "OK"), delivered. Only this instance's binds are known;
// another's count as read: a message is rather delivered twice than taken
// for a resend and dropped. A name without a stretch (stored before
// stretches were recorded) counts from the bind's first.
func (g *Gateway) ended(session string) bool {
	rest, ok := strings.CutPrefix(session, g.cfg.Instance+"/")
	if !ok {
		return false
	}
	bind, stretch, _ := strings.Cut(rest, "/")
	n, err := strconv.ParseUint(bind, 10, 64)
	if err != nil {
		return false
	}
	k := uint64(0)
	if stretch != "" {
		if k, err = strconv.ParseUint(stretch, 10, 64); err != nil {
			return false
		}
	}
	return g.cfg.Unread(n, k)
}

func (g *Gateway) inboundError(log zerolog.Logger, err error) smpp.Status {
	if g.cfg.NoRecipient != nil && errors.Is(err, g.cfg.NoRecipient) {
		return g.refuseNoRecipient(log)
	}
	log.Error().Err(err).Msg("storing message from a phone failed; asking the SMSC to retry")
	return smpp.StatusRxTAppn
}

// refuseNoRecipient answers a message, or a part of one, from a phone to a
// number nobody has.
func (g *Gateway) refuseNoRecipient(log zerolog.Logger) smpp.Status {
	log.Info().Msg("message from a phone to a number nobody has: refused")
	g.cfg.OnMessage(store.In, store.RouteSMS, "refused")
	return smpp.StatusInvDstAdr
}

// sweepFragments delivers concatenated messages whose missing parts did not
// come within the reassembly time, with the gaps marked.
func (g *Gateway) sweepFragments(ctx context.Context) {
	groups, err := g.outbox.StaleFragments(ctx, time.Now().Add(-g.cfg.Reassembly))
	if err != nil {
		g.sweepFailed(ctx, err, "reading stale fragments failed")
		return
	}
	for _, frags := range groups {
		k := frags[0].FragmentKey
		if g.repeated(ctx, frags) {
			if err := g.outbox.DropFragments(ctx, k); err != nil {
				g.sweepFailed(ctx, err, "dropping parts failed; the next sweep will retry")
				continue
			}
			g.log.Info().Str("source", k.Source).Int("parts", len(frags)).Int("total", k.Total).Msg("dropped parts sent again after their message was complete")
			continue
		}
		err := g.inbox.Inbound(ctx, incomplete(frags))
		if g.cfg.NoRecipient != nil && errors.Is(err, g.cfg.NoRecipient) {
			// The number was released meanwhile; keep nothing for nobody
			// (kept, the parts would be read again at every sweep).
			if err := g.outbox.DropFragments(ctx, k); err != nil {
				g.sweepFailed(ctx, err, "dropping parts failed; the next sweep will retry")
				continue
			}
			g.log.Warn().Str("dest", k.Dest).Int("parts", len(frags)).Msg("dropped parts for a number nobody has any more")
			continue
		}
		if err != nil {
			g.sweepFailed(ctx, err, "delivering incomplete message failed")
			continue
		}
		msg := "delivered incomplete concatenated message"
		if len(frags) == k.Total {
			// Every part came; storing the whole failed (a bind lost as
			// it was stored), and the sweep finished it.
			msg = "delivered concatenated message whose parts were all kept but not yet put together"
		}
		g.log.Info().Str("source", k.Source).Int("parts", len(frags)).Int("total", k.Total).Msg(msg)
	}
}

// incomplete is the message frags (the stored parts of one message from a
// phone, at least one) make as they stand, the gaps marked, with the
// sender's address and SMSC as the last part came.
func incomplete(frags []store.Fragment) *store.Inbound {
	k, last := frags[0].FragmentKey, frags[len(frags)-1]
	return &store.Inbound{Source: k.Source, Dest: k.Dest, Body: assemble(frags), FragmentKey: &k,
		SourceTON: last.SourceTON, SourceNPI: last.SourceNPI, SMSC: last.SMSC}
}

// repeated tells whether frags, the parts of a message that never came
// whole, are parts of one already reassembled and delivered (an SMSC sent
// them again): their text, each decoded alone, is in it.
func (g *Gateway) repeated(ctx context.Context, frags []store.Fragment) bool {
	texts := make([]string, 0, len(frags))
	for _, f := range frags {
		t, err := coding.Decode(f.DataCoding, f.Payload)
		if err != nil || t == "" || strings.ContainsRune(t, utf8.RuneError) {
			return false // a character split across parts: not known
		}
		texts = append(texts, t)
	}
	yes, err := g.outbox.Reassembled(ctx, frags[0].FragmentKey, texts)
	if err != nil {
		g.log.Warn().Err(err).Msg("checking parts against delivered messages failed; delivering them")
	}
	return yes
}

// assemble joins stored parts in order, marking missing ones with "[…]".
// Runs of parts with the same data coding are decoded together, so a
// character split across parts (a UCS-2 surrogate pair) survives.
func assemble(frags []store.Fragment) string {
	var b strings.Builder
	next := 1
	var run []byte
	var runDC byte
	flush := func() {
		if len(run) > 0 {
			t, err := coding.Decode(runDC, run)
			if err != nil {
				t = "[undecodable part]"
			}
			b.WriteString(t)
			run = run[:0]
		}
	}
	for _, f := range frags {
		if f.Seq != next || (len(run) > 0 && f.DataCoding != runDC) {
			flush()
		}
		for ; next < f.Seq; next++ {
			b.WriteString("[…]")
		}
		runDC = f.DataCoding
		run = append(run, f.Payload...)
		next = f.Seq + 1
	}
	flush()
	if total := frags[0].Total; next <= total {
		b.WriteString("[…]")
	}
	return b.String()
}

// warnReplaced logs a message from a phone whose text holds U+FFFD, the
// character decoding puts for octets its coding does not define (above 0x7F
// in GSM 7-bit or IA5, a lone surrogate or an odd octet in UCS-2): it is
// delivered so, the rest of its text being worth more than a refusal, and
// the operator learns that the SMSC sends such text.
func warnReplaced(log zerolog.Logger, text string, dc byte) {
	if n := strings.Count(text, string(utf8.RuneError)); n > 0 {
		log.Warn().Uint8("data_coding", dc).Int("replaced", n).
			Msg("message from a phone with octets its coding does not define: delivered with U+FFFD in their place")
	}
}

// sar reads a deliver_sm's sar_msg_ref_num, sar_total_segments and
// sar_segment_seqnum: ok with all three, well formed; none, neither ok nor
// bad; else bad, the status to refuse it with.
func sar(tlvs map[uint16][]byte) (ref, total, seq int, ok bool, bad smpp.Status) {
	r, ok1 := tlvs[tlvSarMsgRefNum]
	t, ok2 := tlvs[tlvSarTotalSegments]
	s, ok3 := tlvs[tlvSarSegmentSeqnum]
	switch {
	case !ok1 && !ok2 && !ok3:
		return 0, 0, 0, false, smpp.StatusOK
	case !ok1 || !ok2 || !ok3:
		return 0, 0, 0, false, smpp.StatusMissingOptParam
	case len(t) != 1 || len(s) != 1 || len(r) != 1 && len(r) != 2:
		return 0, 0, 0, false, smpp.StatusInvParLen
	}
	if len(r) == 1 {
		ref = int(r[0])
	} else {
		ref = int(binary.BigEndian.Uint16(r))
	}
	return ref, int(t[0]), int(s[0]), true, smpp.StatusOK
}

// phoneAddr renders an SMPP source address: numbers as E.164 (see
// phoneNumber), anything else (alphanumeric senders, short codes) as given.
func phoneAddr(a smpp.Address, region string) string {
	if n, ok := phoneNumber(a, region); ok {
		return n.String()
	}
	return strings.TrimSpace(a.Addr)
}

// phoneNumber reads an SMPP address as a phone number: international (TON
// 1) as it is; national (TON 2) in region, the gateway's default; unknown
// (TON 0) as national in region when it is a valid number there (which a
// number written with its country code, or after the region's international
// prefix, also is: libphonenumber reads them), else as international (as a
// number too new for libphonenumber's metadata may be). An international
// prefix 00 left in an international or unknown address is dropped. Shorter
// than 7 digits (short codes), not digits, or, read as international,
// starting with 0 (no country code does), it is no number.
func phoneNumber(a smpp.Address, region string) (number.E164, bool) {
	digits := strings.TrimSpace(a.Addr)
	bare := strings.TrimPrefix(digits, "+")
	if len(bare) <= 6 || strings.Trim(bare, "0123456789") != "" {
		return "", false
	}
	if (a.TON == 0 || a.TON == 1) && strings.HasPrefix(digits, "00") {
		// The international prefix most of the world dials (ITU-T's
		// recommended one), left in by the SMSC: 0044… is +44….
		digits = "+" + digits[2:]
	}
	intl, err := number.FromDigits(digits)
	if a.TON == 1 {
		return intl, err == nil
	}
	if (a.TON == 0 || a.TON == 2) && region != "" {
		if n, err := number.Parse(digits, region); err == nil {
			return n, true
		}
	}
	return intl, a.TON == 0 && err == nil
}

// sweepFailed logs a failed step of a sweep, unless the gateway is
// stopping: its context ending fails whatever the sweep was doing, which is
// no error to alert an operator on (the next start sweeps again).
func (g *Gateway) sweepFailed(ctx context.Context, err error, msg string) {
	if ctx.Err() == nil {
		g.log.Error().Err(err).Msg(msg)
	}
}

// sweepStore has the store delete what nothing will claim any more
// (receipts for SMSC ids never recorded, old SMS counts; see store.Sweep),
// and end as sent the SMS whose receipts did not come within ReceiptWait.
func (g *Gateway) sweepStore(ctx context.Context) {
	n, err := g.outbox.Sweep(ctx)
	switch {
	case err != nil:
		g.sweepFailed(ctx, err, "sweeping the store failed; the next sweep will retry")
	case n > 0:
		g.log.Info().Int64("receipts", n).Msg("dropped receipts for SMSC ids never recorded")
	}
	n, err = g.outbox.EndReceiptWaits(ctx, time.Now().Add(-g.cfg.ReceiptWait))
	switch {
	case err != nil:
		g.sweepFailed(ctx, err, "ending waits for receipts failed; the next sweep will retry")
	case n > 0:
		g.log.Warn().Int64("messages", n).Stringer("waited", g.cfg.ReceiptWait).Msg("no receipt came for SMS submitted long ago; ended as sent, delivery not confirmed")
		for range n {
			g.cfg.OnMessage(store.Out, store.RouteSMS, "unconfirmed")
		}
	}
}
