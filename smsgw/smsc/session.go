package smsc

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/fiorix/go-smpp/smpp/pdu"
	"github.com/rs/zerolog"
)

type bindMode int

const (
	bindNone bindMode = iota
	bindTX
	bindRX
	bindTRX
)

func (b bindMode) String() string {
	return [...]string{"none", "transmitter", "receiver", "transceiver"}[b]
}

func (b bindMode) canSubmit() bool  { return b == bindTX || b == bindTRX }
func (b bindMode) canReceive() bool { return b == bindRX || b == bindTRX }

var (
	errSessionClosed = errors.New("smsc: session closed")
	errSeqInUse      = errors.New("smsc: sequence number already awaiting a response on this session")
	errRespTimeout   = errors.New("smsc: no response in time")
)

// response is what the ESME answered to a request the simulator sent.
type response struct {
	id     pdu.ID
	status uint32
	body   []byte
	err    error
}

// session is one SMPP connection. The reader goroutine handles requests and
// resolves responses; the writer goroutine is the only one that writes.
type session struct {
	srv  *Server
	conn net.Conn
	log  zerolog.Logger
	out  chan []byte // frames to write; a nil frame means flush and close
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	mode     bindMode
	systemID string
	seq      uint32
	pending  map[uint32]chan response
	closed   bool
}

func newSession(s *Server, conn net.Conn, id uint64, log zerolog.Logger) *session {
	return &session{
		srv:     s,
		conn:    conn,
		log:     log.With().Uint64("session", id).Str("remote", conn.RemoteAddr().String()).Logger(),
		out:     make(chan []byte, 256),
		done:    make(chan struct{}),
		pending: make(map[uint32]chan response),
	}
}

func (ss *session) bound() bindMode {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.mode
}

func (ss *session) sysID() string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.systemID
}

// close ends the session at once: the connection closes, pending requests fail.
func (ss *session) close() {
	ss.once.Do(func() {
		close(ss.done)
		ss.conn.Close()
		ss.mu.Lock()
		ss.closed = true
		wasBound := ss.mode != bindNone
		ss.mode = bindNone
		for seq, ch := range ss.pending {
			ch <- response{err: errSessionClosed}
			delete(ss.pending, seq)
		}
		log := ss.log
		ss.mu.Unlock()
		ss.srv.removeSession(ss)
		if wasBound {
			log.Info().Msg("session closed")
		}
	})
}

// send queues a frame for the writer.
func (ss *session) send(frame []byte) error {
	select {
	case ss.out <- frame:
		return nil
	case <-ss.done:
		return errSessionClosed
	}
}

// closeAfterWrite closes the session once the frames queued so far are written.
func (ss *session) closeAfterWrite() { ss.send(nil) }

// request sends a request frame and returns where its response will arrive.
// seq 0 takes the session's next sequence number.
func (ss *session) request(frame []byte, seq uint32) (uint32, <-chan response, error) {
	ch := make(chan response, 1)
	ss.mu.Lock()
	if ss.closed {
		ss.mu.Unlock()
		return 0, nil, errSessionClosed
	}
	if seq == 0 {
		for {
			ss.seq = ss.seq%0x7FFFFFFF + 1
			if _, busy := ss.pending[ss.seq]; !busy {
				break
			}
		}
		seq = ss.seq
	} else if _, busy := ss.pending[seq]; busy {
		ss.mu.Unlock()
		return 0, nil, errSeqInUse
	}
	ss.pending[seq] = ch
	ss.mu.Unlock()
	setSeq(frame, seq)
	if err := ss.send(frame); err != nil {
		ss.forget(seq)
		return 0, nil, err
	}
	return seq, ch, nil
}

func (ss *session) forget(seq uint32) {
	ss.mu.Lock()
	delete(ss.pending, seq)
	ss.mu.Unlock()
}

func (ss *session) resolve(h header, body []byte) {
	ss.mu.Lock()
	ch, ok := ss.pending[h.Seq]
	delete(ss.pending, h.Seq)
	ss.mu.Unlock()
	if !ok {
		ss.log.Debug().Stringer("command", h.ID).Uint32("seq", h.Seq).Msg("response to nothing pending; ignored")
		return
	}
	ch <- response{id: h.ID, status: h.Status, body: body}
}

// unbind asks the ESME to unbind; its unbind_resp closes the session.
func (ss *session) unbind() {
	if _, _, err := ss.request(finish(newFrame(0, pdu.UnbindID, 0, 0)), 0); err != nil {
		ss.close()
	}
}

func (ss *session) writeLoop() {
	bw := bufio.NewWriterSize(ss.conn, 64<<10)
	for {
		var frame []byte
		select {
		case frame = <-ss.out:
		case <-ss.done:
			return
		}
		closeNow := false
	batch:
		for {
			if frame == nil {
				closeNow = true
				break
			}
			if _, err := bw.Write(frame); err != nil {
				ss.close()
				return
			}
			select {
			case frame = <-ss.out:
			default:
				break batch
			}
		}
		if err := bw.Flush(); err != nil || closeNow {
			ss.close()
			return
		}
	}
}

func (ss *session) readLoop() {
	defer ss.close()
	br := bufio.NewReaderSize(ss.conn, 64<<10)
	var hb [headerLen]byte
	for {
		if _, err := io.ReadFull(br, hb[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				ss.log.Debug().Err(err).Msg("read")
			}
			return
		}
		h := parseHeader(hb[:])
		if h.Len < headerLen || h.Len > maxPDU {
			ss.log.Warn().Uint32("command_length", h.Len).Msg("bad command_length; closing")
			ss.send(respFrame(pdu.GenericNACKID, StatusInvCmdLen, h.Seq, "", false))
			ss.closeAfterWrite()
			return
		}
		frame := make([]byte, h.Len)
		copy(frame, hb[:])
		if _, err := io.ReadFull(br, frame[headerLen:]); err != nil {
			return
		}
		if !ss.waitStall() {
			return
		}
		if !ss.handle(h, frame) {
			// The writer closes the session once the last answer is out.
			select {
			case <-ss.done:
			case <-time.After(5 * time.Second):
			}
			return
		}
	}
}

// stallPoll is how often a stalled session looks whether Stall was cleared.
const stallPoll = 10 * time.Millisecond

// waitStall blocks while the configuration says Stall. It reports false
// when the session was closed (by Close or DropSessions) meanwhile.
func (ss *session) waitStall() bool {
	for ss.srv.settings().Stall {
		select {
		case <-ss.done:
			return false
		case <-time.After(stallPoll):
		}
	}
	return true
}

// handle answers one PDU; false ends the read loop.
func (ss *session) handle(h header, frame []byte) bool {
	body := frame[headerLen:]
	if h.ID&0x80000000 != 0 {
		switch h.ID {
		case pdu.UnbindRespID:
			ss.resolve(h, body)
			ss.close()
			return false
		default:
			ss.resolve(h, body)
		}
		return true
	}
	mode := ss.bound()
	switch h.ID {
	case pdu.BindTransmitterID, pdu.BindReceiverID, pdu.BindTransceiverID:
		return ss.handleBind(h, frame)
	case pdu.EnquireLinkID:
		ss.send(respFrame(pdu.EnquireLinkRespID, StatusOK, h.Seq, "", false))
	case pdu.UnbindID:
		ss.send(respFrame(pdu.UnbindRespID, StatusOK, h.Seq, "", false))
		ss.log.Info().Msg("unbind")
		ss.closeAfterWrite()
		return false
	case pdu.SubmitSMID, pdu.DataSMID:
		resp := pdu.SubmitSMRespID
		if h.ID == pdu.DataSMID {
			resp = pdu.DataSMRespID
		}
		if !mode.canSubmit() {
			ss.send(respFrame(resp, StatusInvBndSts, h.Seq, "", false))
			return true
		}
		m, err := parseSM(body, h.ID == pdu.DataSMID)
		if err != nil {
			ss.log.Warn().Err(err).Stringer("command", h.ID).Msg("undecodable; rejected")
			ss.send(respFrame(resp, StatusInvMsgLen, h.Seq, "", false))
			return true
		}
		ss.srv.submit(ss, h, resp, m)
	case pdu.QuerySMID, pdu.CancelSMID, pdu.ReplaceSMID, pdu.SubmitMultiID:
		ss.send(respFrame(h.ID|0x80000000, StatusInvCmdID, h.Seq, "", false))
	default:
		ss.send(respFrame(pdu.GenericNACKID, StatusInvCmdID, h.Seq, "", false))
	}
	return true
}

func (ss *session) handleBind(h header, frame []byte) bool {
	respID := h.ID | 0x80000000
	if ss.bound() != bindNone {
		ss.send(respFrame(respID, StatusAlyBnd, h.Seq, "", false))
		return true
	}
	b, err := decodeBind(frame)
	if err != nil {
		ss.log.Warn().Err(err).Msg("undecodable bind; closing")
		ss.send(respFrame(respID, StatusSysErr, h.Seq, "", false))
		ss.closeAfterWrite()
		return false
	}
	st := ss.srv.settings()
	var status Status
	switch {
	case st.SystemID == "":
	case b.SystemID != st.SystemID:
		status = StatusInvSysID
	case b.Password != st.Password:
		status = StatusInvPaswd
	}
	mode := map[pdu.ID]bindMode{pdu.BindTransmitterID: bindTX, pdu.BindReceiverID: bindRX, pdu.BindTransceiverID: bindTRX}[h.ID]
	if status != StatusOK {
		ss.log.Warn().Str("system_id", b.SystemID).Stringer("mode", mode).Stringer("status", status).Msg("bind refused; closing")
		ss.send(respFrame(respID, status, h.Seq, "", false))
		ss.closeAfterWrite()
		return false
	}
	resp := newFrame(32, respID, 0, h.Seq)
	resp = appendCString(resp, "switchboard-smsc")
	if b.Version >= 0x34 {
		resp = appendTLV(resp, TagSCInterfaceVersion, []byte{0x34})
	}
	ss.mu.Lock()
	ss.mode, ss.systemID = mode, b.SystemID
	ss.log = ss.log.With().Str("system_id", b.SystemID).Logger() // others read it under mu
	ss.mu.Unlock()
	if err := ss.send(finish(resp)); err != nil {
		return false
	}
	ss.log.Info().Stringer("mode", mode).Msg("bound")
	ss.srv.notifyBind()
	return true
}

// submit builds the Message for a submit_sm or data_sm, answers it, and
// starts its receipt. It runs on the session's reader goroutine.
func (s *Server) submit(ss *session, h header, respID pdu.ID, p *smPDU) {
	st := s.settings()
	m := &Message{
		SystemID:           ss.sysID(),
		Source:             p.Source,
		Dest:               p.Dest,
		SourceTON:          p.SourceTON,
		SourceNPI:          p.SourceNPI,
		DestTON:            p.DestTON,
		DestNPI:            p.DestNPI,
		ESMClass:           p.ESMClass,
		DataCoding:         p.DataCoding,
		RegisteredDelivery: p.RegisteredDelivery,
		ShortMessage:       p.ShortMessage,
		TLVs:               p.TLVs,
		Received:           time.Now(),
		Outcome:            st.Outcome,
	}
	if len(m.ShortMessage) == 0 && len(p.TLVs[TagMessagePayload]) > 0 {
		m.ShortMessage = p.TLVs[TagMessagePayload]
	}
	text := m.ShortMessage
	if m.ESMClass&esmUDHI != 0 {
		if hdr, rest, ok := udh(text); ok {
			m.Concat = concatFromUDH(hdr)
			text = rest
		}
	}
	if m.Concat == nil {
		m.Concat = concatFromSAR(p.TLVs)
	}
	m.Text = decodeText(m.DataCoding, text)

	if st.SubmitStatus != nil {
		if status := Status(st.SubmitStatus(m)); status != StatusOK {
			ss.log.Info().Str("from", m.Source).Str("to", m.Dest).Stringer("status", status).Msg("submit refused")
			ss.send(respFrame(respID, status, h.Seq, "", false))
			return
		}
	}
	var other string
	m.ID, other = s.newID(st.IDFormat)
	receiptID := m.ID
	if st.ReceiptIDOtherForm {
		receiptID = other
	}
	want := m.RegisteredDelivery&0x03 == 1 ||
		(m.RegisteredDelivery&0x03 == 2 && st.Outcome != OutcomeDelivered)
	if st.Outcome == OutcomeNone {
		want = false
	}
	delayed := want && !st.EarlyReceipt && st.ReceiptDelay > 0
	if !delayed {
		m.State = stat(m.Outcome)
	}
	if parts := s.store(m, st.MaxMessages); parts != nil {
		s.logMessage(st, parts)
	} else {
		ss.log.Debug().Str("id", m.ID).Str("from", m.Source).Str("to", m.Dest).
			Uint8("part", m.Concat.Seq).Uint8("parts", m.Concat.Total).Msg("submit part")
	}

	respMsgID := m.ID
	if st.NoMessageID {
		respMsgID = ""
	}
	resp := respFrame(respID, StatusOK, h.Seq, respMsgID, true)
	if !want {
		ss.send(resp)
		return
	}
	ob := &outbound{what: "receipt", systemID: m.SystemID, prefer: ss, waitBind: true, persist: true}
	if delayed {
		ss.send(resp)
		s.goOwned(func() {
			select {
			case <-time.After(st.ReceiptDelay):
			case <-s.ctx.Done():
				return
			}
			s.setState(m, stat(m.Outcome))
			ob.frame = receiptFrame(st, m, receiptID, time.Now())
			s.runReceipt(ob, nil, m)
		})
		return
	}
	ob.frame = receiptFrame(st, m, receiptID, time.Now())
	if !st.EarlyReceipt {
		ss.send(resp)
	}
	first := s.try(ob)
	if st.EarlyReceipt {
		ss.send(resp)
	}
	s.goOwned(func() { s.runReceipt(ob, first, m) })
}

func (s *Server) logMessage(st *settings, parts []*Message) {
	last := parts[len(parts)-1]
	if e := st.log.Info(); e.Enabled() {
		ids := make([]string, len(parts))
		for i, p := range parts {
			ids[i] = p.ID
		}
		e.Str("system_id", last.SystemID).Str("from", last.Source).Str("to", last.Dest).
			Strs("ids", ids).Int("parts", len(parts)).Int("chars", len([]rune(last.FullText))).
			Uint8("data_coding", last.DataCoding).Uint8("registered_delivery", last.RegisteredDelivery).
			Str("outcome", string(last.Outcome)).Msg("message")
	}
	st.log.Debug().Str("id", parts[0].ID).Str("text", last.FullText).Msg("message text")
}
