package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// SMPP command ids the tap looks at.
const (
	cmdSubmitSM          = 0x00000004
	cmdSubmitSMResp      = 0x80000004
	cmdDeliverSM         = 0x00000005
	cmdBindTransceiverOK = 0x80000009
)

// tapListener wraps the sink's listener so that every submit_sm the sink
// reads and every receipt it writes is timestamped on the bench's clock,
// without touching the simulator: the tap parses the byte streams.
type tapListener struct {
	net.Listener
	rec *recorder
}

func (l *tapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, rec: l.rec, seqs: make(map[uint32]int)}, nil
}

type tapConn struct {
	net.Conn
	rec   *recorder
	bound *atomic.Int32 // counts bind_transceiver_resp with status 0, for startProxy

	rmu  sync.Mutex
	rbuf []byte
	wmu  sync.Mutex
	wbuf []byte

	smu  sync.Mutex
	seqs map[uint32]int // submit_sm sequence number → message index, until its response
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		now := c.rec.now()
		c.rmu.Lock()
		c.rbuf = frames(append(c.rbuf, p[:n]...), func(id, seq uint32, body []byte) {
			if id != cmdSubmitSM {
				return
			}
			sm := shortMessage(body)
			idx, ok := markerIndex(sm, '#')
			if !ok {
				return
			}
			c.smu.Lock()
			c.seqs[seq] = idx
			c.smu.Unlock()
			c.rec.submitSM.Add(1)
			c.rec.submitted(idx, now)
		})
		c.rmu.Unlock()
	}
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	now := c.rec.now()
	c.wmu.Lock()
	c.wbuf = frames(append(c.wbuf, p...), func(id, seq uint32, body []byte) {
		switch id {
		case cmdBindTransceiverOK:
			if c.bound != nil {
				c.bound.Add(1) // frames hands no status; a refused bind is retried and fails the run by timeout
			}
		case cmdSubmitSMResp:
			c.smu.Lock()
			idx, ok := c.seqs[seq]
			delete(c.seqs, seq)
			c.smu.Unlock()
			if ok {
				if i := bytes.IndexByte(body, 0); i > 0 {
					c.rec.smscID(string(body[:i]), idx)
				}
			}
		case cmdDeliverSM:
			if esm, sm := deliverFields(body); esm&0x04 != 0 {
				if i := bytes.Index(sm, []byte("id:")); i >= 0 {
					v := sm[i+3:]
					if j := bytes.IndexByte(v, ' '); j >= 0 {
						v = v[:j]
					}
					c.rec.receiptSent(v, now)
				}
			}
		}
	})
	c.wmu.Unlock()
	return c.Conn.Write(p)
}

// frames calls fn for every complete PDU at the start of b and returns the
// incomplete rest, moved to the front of b.
func frames(b []byte, fn func(id, seq uint32, body []byte)) []byte {
	off := 0
	for len(b)-off >= 16 {
		n := int(binary.BigEndian.Uint32(b[off:]))
		if n < 16 || n > 1<<20 {
			return b[:0] // not SMPP; give up on this stream
		}
		if len(b)-off < n {
			break
		}
		f := b[off : off+n]
		fn(binary.BigEndian.Uint32(f[4:]), binary.BigEndian.Uint32(f[12:]), f[16:])
		off += n
	}
	return b[:copy(b, b[off:])]
}

// skipCString returns b after the first NUL.
func skipCString(b []byte) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[i+1:]
	}
	return nil
}

// deliverFields returns esm_class and short_message of a submit_sm or deliver_sm body.
func deliverFields(b []byte) (esm byte, sm []byte) {
	b = skipCString(b) // service_type
	if len(b) < 2 {
		return 0, nil
	}
	b = skipCString(b[2:]) // source ton, npi, addr
	if len(b) < 2 {
		return 0, nil
	}
	b = skipCString(b[2:]) // dest ton, npi, addr
	if len(b) < 3 {
		return 0, nil
	}
	esm = b[0]
	b = skipCString(skipCString(b[3:])) // esm, protocol_id, priority; schedule; validity
	if len(b) < 5 {
		return esm, nil
	}
	n := int(b[4])
	b = b[5:]
	if n > len(b) {
		n = len(b)
	}
	return esm, b[:n]
}

func shortMessage(b []byte) []byte {
	_, sm := deliverFields(b)
	return sm
}

// markerIndex parses the decimal number after the first mark in b.
func markerIndex(b []byte, mark byte) (int, bool) {
	i := bytes.IndexByte(b, mark)
	if i < 0 {
		return 0, false
	}
	n, digits := 0, 0
	for _, c := range b[i+1:] {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
		digits++
	}
	return n, digits > 0
}

// recorder holds the timestamps of one run, in nanoseconds since its base.
type recorder struct {
	base time.Time

	mu        sync.Mutex
	cond      *sync.Cond
	written   []int64 // stanza written to the component
	submit    []int64 // submit_sm read by the sink (first part)
	receipt   []int64 // receipt written by the sink
	received  []int64 // <received/> read from the component
	ids       map[string]int
	early     map[string]int64 // receipt written before its submit_sm_resp was seen (never, in practice)
	nSubmit   int
	nReceived int
	dupSubmit int
	errors    int
	lastErr   string
	mo        []int64      // MO: SendMO called
	moGot     []int64      // MO: message read from the component
	moLen     int          // MO: the length of every message from a phone; 0: not checked
	submitSM  atomic.Int64 // submit_sm of the run's messages seen at the sink
	nMO       int
	progress  int64 // rec.now() of the last event
	// quiet is how long nothing may happen before the run counts as
	// stalled: stallAfter, plus the sink's receipt delay (a full window
	// then waits that long for its first receipt).
	quiet time.Duration
}

func newRecorder(n, mo int) *recorder {
	r := &recorder{
		base:    time.Now(),
		written: make([]int64, n), submit: make([]int64, n), receipt: make([]int64, n), received: make([]int64, n),
		ids: make(map[string]int, n), early: make(map[string]int64),
		mo: make([]int64, mo), moGot: make([]int64, mo),
		quiet: stallAfter,
	}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) now() int64 { return int64(time.Since(r.base)) }

// progressed notes that something happened and wakes the waiters. Callers hold r.mu.
func (r *recorder) progressed() {
	r.progress = r.now()
	r.cond.Broadcast()
}

// wake wakes the waiters, so that they look at their context again.
func (r *recorder) wake() {
	r.mu.Lock()
	r.cond.Broadcast()
	r.mu.Unlock()
}

// record sets times[idx] to t unless idx is out of range or already set,
// counting it in *count; it reports whether it did. Callers hold r.mu.
func (r *recorder) record(times []int64, idx int, t int64, count *int) bool {
	if idx < 0 || idx >= len(times) || times[idx] != 0 {
		return false
	}
	times[idx] = t
	*count++
	r.progressed()
	return true
}

func (r *recorder) submitted(idx int, t int64) {
	if idx < 0 || idx >= len(r.submit) {
		return
	}
	r.mu.Lock()
	if !r.record(r.submit, idx, t, &r.nSubmit) {
		r.dupSubmit++
	}
	r.mu.Unlock()
}

func (r *recorder) smscID(id string, idx int) {
	r.mu.Lock()
	r.ids[id] = idx
	if t, ok := r.early[id]; ok {
		delete(r.early, id)
		if r.receipt[idx] == 0 {
			r.receipt[idx] = t
		}
	}
	r.mu.Unlock()
}

// receiptSent takes the id as bytes: looking it up needs no string.
func (r *recorder) receiptSent(id []byte, t int64) {
	r.mu.Lock()
	if idx, ok := r.ids[string(id)]; ok {
		if r.receipt[idx] == 0 {
			r.receipt[idx] = t
		}
	} else {
		r.early[string(id)] = t
	}
	r.mu.Unlock()
}

// receiptAt records that message idx's receipt was sent at t (a
// recipient's, for a relayed message).
func (r *recorder) receiptAt(idx int, t int64) {
	r.mu.Lock()
	if idx >= 0 && idx < len(r.receipt) && r.receipt[idx] == 0 {
		r.receipt[idx] = t
	}
	r.mu.Unlock()
}

func (r *recorder) gotReceipt(idx int, t int64) {
	r.mu.Lock()
	r.record(r.received, idx, t, &r.nReceived)
	r.mu.Unlock()
}

func (r *recorder) gotError(text string) {
	r.mu.Lock()
	r.errors++
	r.lastErr = text
	r.progressed()
	r.mu.Unlock()
}

// gotMO records message idx from a phone as read by its user, with body:
// whole, when its length is known (moLen), or else an error.
func (r *recorder) gotMO(idx int, body []byte, t int64) {
	if r.moLen > 0 && len(body) != r.moLen {
		r.gotError(fmt.Sprintf("message %d from a phone arrived with %d of its %d characters", idx, len(body), r.moLen))
		return
	}
	r.mu.Lock()
	r.record(r.moGot, idx, t, &r.nMO)
	r.mu.Unlock()
}

// startProxy is the tap in front of an SMSC of the caller's at addr: each
// connection Switchboard makes is forwarded to a new connection to addr,
// both byte streams parsed on the way as for the built-in sink. bound
// counts successful binds seen.
func startProxy(rec *recorder, addr string) (listen string, bound func() int, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	var (
		n     atomic.Int32
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			tc := &tapConn{Conn: c, rec: rec, seqs: make(map[uint32]int), bound: &n}
			wg.Go(func() { io.Copy(up, tc); up.Close(); c.Close() })
			wg.Go(func() { io.Copy(tc, up); up.Close(); c.Close() })
		}
	})
	return ln.Addr().String(), func() int { return int(n.Load()) }, func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}, nil
}
