package smsc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
)

const (
	maxAttempts  = 5                     // per PDU, for temporary failures (a message from a phone, whose caller waits)
	firstBackoff = 25 * time.Millisecond // doubled after each attempt
	maxBackoff   = 5 * time.Second       // the longest wait between attempts
	receiptTTL   = 10 * time.Minute      // a receipt waits this long for a receiver to bind, or to be taken
)

// outbound is a deliver_sm or data_sm the simulator sends until accepted.
type outbound struct {
	what     string   // "receipt" or "mo", for logs
	systemID string   // only sessions bound with this system_id; "" = any
	prefer   *session // tried first while it can receive
	frame    []byte   // sequence number patched in per attempt
	waitBind bool     // with no receiver bound, wait for one instead of failing
	// persist: temporary failures are retried until ctx ends (a receipt,
	// as an SMSC retries one for hours), not maxAttempts times.
	persist bool
}

type attempt struct {
	ss  *session
	seq uint32
	ch  <-chan response
	err error
}

// pick chooses a bound session, round-robin; receive limits it to receivers
// and transceivers.
func (s *Server) pick(systemID string, prefer *session, receive bool) *session {
	if prefer != nil && prefer.bound().canReceive() {
		return prefer
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.sessions)
	var fallback *session
	for i := range n {
		ss := s.sessions[(s.rr+i)%n]
		mode := ss.bound()
		if mode == bindNone || (systemID != "" && ss.sysID() != systemID) {
			continue
		}
		if mode.canReceive() {
			s.rr = (s.rr + i + 1) % n
			return ss
		}
		if fallback == nil {
			fallback = ss
		}
	}
	if receive {
		return nil
	}
	return fallback
}

func (s *Server) try(ob *outbound) *attempt {
	ss := s.pick(ob.systemID, ob.prefer, true)
	if ss == nil {
		return &attempt{err: ErrNoSession}
	}
	seq, ch, err := ss.request(append([]byte(nil), ob.frame...), 0)
	return &attempt{ss: ss, seq: seq, ch: ch, err: err}
}

func (s *Server) await(ctx context.Context, a *attempt, timeout time.Duration) (Status, []byte, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-a.ch:
		if r.err != nil {
			return 0, nil, r.err
		}
		if r.id == pdu.GenericNACKID && r.status == 0 {
			return StatusInvCmdID, r.body, nil
		}
		return Status(r.status), r.body, nil
	case <-ctx.Done():
		a.ss.forget(a.seq)
		return 0, nil, ctx.Err()
	case <-t.C:
		a.ss.forget(a.seq)
		return 0, nil, errRespTimeout
	}
}

// deliver sends ob until the ESME answers ESME_ROK. Temporary statuses, lost
// sessions and timeouts are retried with backoff (up to maxBackoff), up to
// maxAttempts or, for ob.persist, until ctx ends; a permanent status is
// returned at once. first is an attempt already made.
func (s *Server) deliver(ctx context.Context, ob *outbound, first *attempt) error {
	timeout := s.settings().ResponseTimeout
	if first != nil && first.err != nil {
		first = nil // made before bindCh below was taken: a bind since then would be missed
	}
	var last error
	for n := 1; ; n++ {
		s.mu.Lock()
		bindCh := s.bindCh
		s.mu.Unlock()
		a := first
		first = nil
		if a == nil {
			a = s.try(ob)
		}
		err := a.err
		var status Status
		if err == nil {
			status, _, err = s.await(ctx, a, timeout)
		}
		switch {
		case err == nil && status == StatusOK:
			return nil
		case err == nil && !status.Temporary():
			return status
		case err == nil:
			last = status
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrNoSession) && ob.waitBind:
			select {
			case <-bindCh:
				n--
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		case errors.Is(err, ErrNoSession) && n == 1:
			return ErrNoSession
		default:
			last = err
		}
		if n >= maxAttempts && !ob.persist {
			return last
		}
		select {
		case <-time.After(min(firstBackoff<<min(n-1, 16), maxBackoff)):
		case <-ctx.Done():
			if last != nil {
				return last
			}
			return ctx.Err()
		}
	}
}

// runReceipt delivers a receipt; it runs on a goroutine the server owns.
func (s *Server) runReceipt(ob *outbound, first *attempt, m *Message) {
	ctx, cancel := context.WithTimeout(s.ctx, receiptTTL)
	defer cancel()
	err := s.deliver(ctx, ob, first)
	if err != nil && s.ctx.Err() == nil {
		s.settings().log.Warn().Err(err).Str("id", m.ID).Str("system_id", m.SystemID).Msg("receipt not delivered")
	}
}

// join returns ctx that also ends when the server closes.
func (s *Server) join(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// address maps a number typed by a person to SMPP TON/NPI: "+E164" is
// international (1/1) without the '+', other digit strings of 8 or more are
// taken as international too, shorter ones are unknown/ISDN (0/1), and
// anything else is alphanumeric (5/0).
func address(a string) (ton, npi byte, addr string) {
	a = strings.TrimSpace(a)
	if rest, ok := strings.CutPrefix(a, "+"); ok {
		return 1, 1, rest
	}
	for _, r := range a {
		if r < '0' || r > '9' {
			return 5, 0, a
		}
	}
	if len(a) >= 8 {
		return 1, 1, a
	}
	return 0, 1, a
}

// SendMO sends text from a phone to a number served by the ESME, as
// deliver_sm over a bound receiver or transceiver. Text is GSM 03.38 when it
// fits, else UCS-2, split into concatenated parts (8-bit reference UDH) when
// long. Temporary statuses in deliver_sm_resp (0x64, 0x58, 0x14, 0x08) are
// retried a few times with short backoff; a permanent one is returned as a
// Status wrapped in the error. With nobody bound it returns ErrNoSession.
func (s *Server) SendMO(ctx context.Context, from, to, text string) error {
	if strings.TrimSpace(from) == "" || strings.TrimSpace(to) == "" {
		return errors.New("smsc: mo: from and to are required")
	}
	parts, coding, err := splitText(text)
	if err != nil {
		return err
	}
	if s.ctx.Err() != nil {
		return ErrClosed
	}
	ss := s.pick("", nil, true)
	if ss == nil {
		return ErrNoSession
	}
	ctx, cancel := s.join(ctx)
	defer cancel()
	ref := byte(s.nextRef.Add(1))
	o := DeliverOpts{DataCoding: coding}
	o.SourceTON, o.SourceNPI, o.Source = address(from)
	o.DestTON, o.DestNPI, o.Dest = address(to)
	for i, p := range parts {
		o.ShortMessage = p
		if len(parts) > 1 {
			o.ESMClass = esmUDHI
			o.ShortMessage = append([]byte{5, 0x00, 3, ref, byte(len(parts)), byte(i + 1)}, p...)
		}
		frame, err := o.encode()
		if err != nil {
			return err
		}
		if err := s.deliver(ctx, &outbound{what: "mo", prefer: ss, frame: frame}, nil); err != nil {
			if s.ctx.Err() != nil {
				return ErrClosed
			}
			return fmt.Errorf("smsc: mo %s to %s, part %d/%d: %w", from, to, i+1, len(parts), err)
		}
	}
	log := s.settings().log
	log.Info().Str("from", o.Source).Str("to", o.Dest).Int("parts", len(parts)).Uint8("data_coding", coding).Msg("mo sent")
	log.Debug().Str("from", o.Source).Str("text", text).Msg("mo text")
	return nil
}

// SendDeliver sends one crafted deliver_sm or data_sm, once, and returns the
// command_status the ESME answered. It is the hook for tests that need
// exact PDUs: a chosen sequence number, odd UDH, SAR TLVs, fake receipts.
func (s *Server) SendDeliver(ctx context.Context, o DeliverOpts) (status uint32, err error) {
	st, err := s.SendDelivers(ctx, []DeliverOpts{o})
	if err != nil {
		return 0, err
	}
	return st[0], nil
}

// SendDelivers sends crafted PDUs on one session, in order, each without
// waiting for the previous one's response (as an SMSC with a window does),
// then waits for every response, and returns their command_status in the
// order of os. The session is the one os[0].SystemID picks.
func (s *Server) SendDelivers(ctx context.Context, os []DeliverOpts) (status []uint32, err error) {
	if len(os) == 0 {
		return nil, nil
	}
	ss := s.pick(os[0].SystemID, nil, true)
	if ss == nil {
		return nil, ErrNoSession
	}
	ctx, cancel := s.join(ctx)
	defer cancel()
	sent := make([]*attempt, 0, len(os))
	defer func() {
		for _, a := range sent[len(status):] {
			a.ss.forget(a.seq)
		}
	}()
	for _, o := range os {
		frame, err := o.encode()
		if err != nil {
			return nil, err
		}
		seq, ch, err := ss.request(frame, o.Seq)
		if err != nil {
			return nil, err
		}
		sent = append(sent, &attempt{ss: ss, seq: seq, ch: ch})
	}
	timeout := s.settings().ResponseTimeout
	for _, a := range sent {
		st, _, err := s.await(ctx, a, timeout)
		if err != nil {
			return nil, err
		}
		status = append(status, uint32(st))
	}
	return status, nil
}

// SendPDU writes a raw PDU with the given command_id, sequence number (0 =
// the session's next) and body to a bound session, preferring receivers,
// and for a request waits for the response. Responses (command_id with the
// high bit set) are written without waiting.
func (s *Server) SendPDU(ctx context.Context, cmdID, seq uint32, body []byte) (status uint32, resp []byte, err error) {
	ss := s.pick("", nil, false)
	if ss == nil {
		return 0, nil, ErrNoSession
	}
	frame := finish(append(newFrame(len(body), pdu.ID(cmdID), 0, seq), body...))
	if cmdID&0x80000000 != 0 {
		return 0, nil, ss.send(frame)
	}
	ctx, cancel := s.join(ctx)
	defer cancel()
	seq, ch, err := ss.request(frame, seq)
	if err != nil {
		return 0, nil, err
	}
	st, resp, err := s.await(ctx, &attempt{ss: ss, seq: seq, ch: ch}, s.settings().ResponseTimeout)
	return uint32(st), resp, err
}
