//go:build faults

package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"mellium.im/xmpp/jid"

	"switchboard/internal/testenv"
	"switchboard/smsgw/smsc"
)

// user is a test user with one fixed resource, so that outcomes sent to
// its full JID reach it again after a reconnect.
type user struct {
	i      int
	jid    jid.JID
	pass   string
	number string

	mu sync.Mutex
	c  *testenv.Client
}

func (u *user) client() *testenv.Client {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.c
}

// login connects every user (again), and collects what each receives.
func (e *env) login() {
	e.t.Helper()
	if e.users == nil {
		for i := range nUsers {
			e.users = append(e.users, &user{
				i:      i,
				jid:    jid.MustParse(fmt.Sprintf("u%d@%s/load", i, e.xmpp.Domain)),
				pass:   fmt.Sprintf("pass%d", i),
				number: userNumber(i),
			})
		}
	}
	for _, u := range e.users {
		c := testenv.Login(e.t, e.xmpp.C2SAddr, u.jid, u.pass)
		u.mu.Lock()
		u.c = c
		u.mu.Unlock()
		go e.collect(c)
	}
}

// collect sorts what a client receives into the tally until its session ends.
func (e *env) collect(c *testenv.Client) {
	phones := make(map[string]bool, nPhones)
	for j := range nPhones {
		phones[phoneNumber(j)+"@"+e.xmpp.Component] = true
	}
	for {
		st, err := c.Next(context.Background(), nil)
		if err != nil {
			return
		}
		if st.Name != "message" {
			continue
		}
		from, _, _ := strings.Cut(st.Attr["from"], "/")
		if !phones[from] {
			continue
		}
		if st.Attr["type"] == "error" {
			e.tally.outcome(st.Attr["id"], false, st.ErrorCondition())
			continue
		}
		var v struct {
			Received struct {
				ID string `xml:"id,attr"`
			} `xml:"urn:xmpp:receipts received"`
		}
		if st.Decode(&v) == nil && v.Received.ID != "" {
			e.tally.outcome(v.Received.ID, true, "")
			continue
		}
		if st.Body != "" {
			e.tally.moArrived(st.Body)
		}
	}
}

// tally counts every message of a scenario.
type tally struct {
	mu       sync.Mutex
	out      map[string]*outMsg // by stanza id
	byBody   map[string]string  // body → stanza id
	sendErrs int
	strays   int               // outcomes for ids nobody sent
	mo       map[string]*moMsg // by body
	moStray  int               // arrivals of bodies no phone sent
}

type outMsg struct {
	user     int
	seq      int
	at       time.Time
	wantFail bool
	receipts int
	errs     int
	cond     string // first error condition
}

type moMsg struct {
	attempts int
	accepted bool
	arrived  int
}

func newTally() *tally {
	return &tally{out: make(map[string]*outMsg), byBody: make(map[string]string), mo: make(map[string]*moMsg)}
}

func bodyOf(id string) string { return "fs " + id }

func (tl *tally) sending(id string, m *outMsg) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.out[id] = m
	tl.byBody[bodyOf(id)] = id
}

func (tl *tally) unsent(id string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	delete(tl.out, id)
	delete(tl.byBody, bodyOf(id))
	tl.sendErrs++
}

// wantFail says whether the carrier fails the message with this body.
func (tl *tally) wantFail(body string) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if m := tl.out[tl.byBody[body]]; m != nil {
		return m.wantFail
	}
	return false
}

func (tl *tally) outcome(id string, receipt bool, cond string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	m := tl.out[id]
	if m == nil {
		tl.strays++
		return
	}
	if receipt {
		m.receipts++
	} else {
		if m.errs == 0 && m.receipts == 0 {
			m.cond = cond
		}
		m.errs++
	}
}

func (tl *tally) moAttempt(body string, ok bool) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	m := tl.mo[body]
	if m == nil {
		m = &moMsg{}
		tl.mo[body] = m
	}
	m.attempts++
	m.accepted = m.accepted || ok
}

func (tl *tally) moArrived(body string) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	m := tl.mo[body]
	if m == nil {
		// Arrived before SendMO returned: count it, SendMO will find it.
		m = &moMsg{}
		tl.mo[body] = m
		if !strings.HasPrefix(body, "mo ") {
			tl.moStray++
		}
	}
	m.arrived++
}

// pending returns the ids without an outcome, and how many accepted phone
// messages have not arrived.
func (tl *tally) pending() (ids []string, mo int) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for id, m := range tl.out {
		if m.receipts+m.errs == 0 {
			ids = append(ids, id)
		}
	}
	for _, m := range tl.mo {
		if m.accepted && m.arrived == 0 {
			mo++
		}
	}
	return ids, mo
}

// runLoad sends user messages at rate for d, and phone messages at moRate,
// retrying each phone message until the SMSC got ESME_ROK for it (as a
// carrier does) or until retryUntil ends. It returns when the sending ends;
// phone retries go on in the background until retryUntil.
func (e *env) runLoad(ctx context.Context, d time.Duration, retryUntil context.Context) {
	var wg sync.WaitGroup
	end := time.Now().Add(d)
	every := time.Duration(float64(time.Second) * nUsers / rate)
	for _, u := range e.users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			time.Sleep(time.Duration(u.i) * every / nUsers) // spread the users
			for seq := 1; time.Now().Before(end); seq++ {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				e.sendOne(ctx, u, seq)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Duration(float64(time.Second) / moRate))
		defer t.Stop()
		for k := 1; time.Now().Before(end); k++ {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			body := fmt.Sprintf("mo %s %d", e.name, k)
			from, to := phoneNumber(k%nPhones), userNumber(k%nUsers)
			go e.sendMO(retryUntil, from, to, body)
		}
	}()
	wg.Wait()
}

func (e *env) sendOne(ctx context.Context, u *user, seq int) {
	id := fmt.Sprintf("%s-u%d-%d", e.name, u.i, seq)
	to := phoneNumber((seq+u.i)%nPhones) + "@" + e.xmpp.Component
	e.tally.sending(id, &outMsg{user: u.i, seq: seq, at: time.Now(), wantFail: seq%failEvery == 0})
	c := u.client()
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := c.Send(sctx, fmt.Sprintf(`<message to='%s' id='%s' type='chat'><body>%s</body><request xmlns='urn:xmpp:receipts'/></message>`,
		to, id, bodyOf(id)))
	if err != nil {
		e.tally.unsent(id)
	}
}

func (e *env) sendMO(ctx context.Context, from, to, body string) {
	for {
		sim := e.currentSim()
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		err := sim.SendMO(actx, from, to, body)
		cancel()
		e.tally.moAttempt(body, err == nil)
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// carrier plays the network behind the SMSC: for every submit it sends a
// delivery receipt (UNDELIV for the messages the tally says should fail,
// else DELIVRD) and sends it again until an ESME answers ESME_ROK, across
// gateway and SMSC restarts.
type carrier struct {
	e *env

	mu   sync.Mutex
	seen map[*smsc.Server]int // submits of each simulator already taken
	sent int                  // receipts acknowledged
	wg   sync.WaitGroup
}

func newCarrier(e *env) *carrier {
	return &carrier{e: e, seen: make(map[*smsc.Server]int)}
}

// run takes new submits every 20ms until ctx ends, and waits for its receipts to end.
func (c *carrier) run(ctx context.Context) {
	defer c.wg.Wait()
	for {
		c.take(ctx, c.e.currentSim())
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// drainSim takes the last submits of a simulator that is being replaced.
func (c *carrier) drainSim(sim *smsc.Server) { c.take(context.Background(), sim) }

func (c *carrier) take(ctx context.Context, sim *smsc.Server) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ms := sim.Messages()
	for _, m := range ms[c.seen[sim]:] {
		if m.SystemID != systemID {
			continue
		}
		outcome := smsc.OutcomeDelivered
		if c.e.tally.wantFail(m.FullText) {
			outcome = smsc.OutcomeFailed
		}
		text := smsc.FormatReceipt(m.ID, outcome, m.Received, time.Now(), m.Text)
		o := smsc.DeliverOpts{
			SystemID:  systemID,
			SourceTON: m.DestTON, SourceNPI: m.DestNPI, Source: m.Dest,
			DestTON: m.SourceTON, DestNPI: m.SourceNPI, Dest: m.Source,
			ESMClass:     0x04,
			ShortMessage: []byte(text),
		}
		c.wg.Add(1)
		go c.deliver(ctx, o)
	}
	c.seen[sim] = len(ms)
}

// receiptSem bounds the receipts in flight.
var receiptSem = make(chan struct{}, 16)

func (c *carrier) deliver(ctx context.Context, o smsc.DeliverOpts) {
	defer c.wg.Done()
	for {
		receiptSem <- struct{}{}
		st, err := c.e.currentSim().SendDeliver(ctx, o)
		<-receiptSem
		if err == nil && st == 0 {
			c.mu.Lock()
			c.sent++
			c.mu.Unlock()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(100+rand.IntN(200)) * time.Millisecond):
		}
	}
}

// result is a scenario's tally, computed once the drain is over.
type result struct {
	sent, accepted, delivered, failed, lost, inTransit int
	wrongOutcome, conflicting, strays                  int
	dupSMSC, dupReports, dupMO                         int
	receiptNoSubmit                                    int
	moAccepted, moArrived, moLost, moStray             int
	lostIDs, transitIDs                                []string
	carrierReceipts                                    int
	conds                                              map[string]int // error conditions at senders
	dupMOs                                             []string
	transitAt                                          []time.Time // when the messages in transit were sent
}

func (r result) duplicates() int { return r.dupSMSC + r.dupReports + r.dupMO }

// drain waits until every message sent has an outcome and every phone
// message accepted has arrived, or until deadline. A message sent more than
// transitAfter ago that is neither answered nor stored is given up as in
// transit at a fault (its fate is decided by the verdict).
func (e *env) drain(ctx context.Context, deadline time.Duration) {
	e.t.Helper()
	begin := time.Now()
	end := begin.Add(deadline)
	const transitAfter = 15 * time.Second
	lastLog := begin
	for {
		ids, mo := e.tally.pending()
		waiting := len(ids)
		if waiting > 0 {
			qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			stored, err := e.storedOut(qctx)
			cancel()
			if err == nil {
				waiting = 0
				e.tally.mu.Lock()
				for _, id := range ids {
					if _, ok := stored[id]; ok || time.Since(e.tally.out[id].at) < transitAfter {
						waiting++
					}
				}
				e.tally.mu.Unlock()
			}
		}
		if waiting == 0 && mo == 0 {
			e.t.Logf("drained in %v", time.Since(begin).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(end) {
			e.t.Logf("drain deadline (%v) passed: %d messages without an outcome, %d phone messages not arrived", deadline, waiting, mo)
			return
		}
		if time.Since(lastLog) > 15*time.Second {
			lastLog = time.Now()
			e.t.Logf("draining: %d messages without an outcome, %d phone messages not arrived", waiting, mo)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// verdict computes the tally. It stops the instances first (SIGTERM), so
// that the store can be read whatever the engine.
func (e *env) verdict() result {
	e.t.Helper()
	for _, i := range e.instances {
		i.signal(syscall.SIGTERM, 20*time.Second)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stored, err := e.storedOut(ctx)
	if err != nil {
		e.t.Fatalf("reading the store: %v", err)
	}

	submits := make(map[string]int)
	e.mu.Lock()
	for _, sim := range e.sims {
		for _, m := range sim.Messages() {
			if m.SystemID == systemID {
				submits[m.FullText]++
			}
		}
	}
	e.mu.Unlock()

	r := result{conds: make(map[string]int)}
	tl := e.tally
	tl.mu.Lock()
	defer tl.mu.Unlock()
	r.strays = tl.strays
	for id, m := range tl.out {
		r.sent++
		n := m.receipts + m.errs
		switch {
		case n == 0:
			if _, ok := stored[id]; ok {
				r.lost++
				r.lostIDs = append(r.lostIDs, id+" ("+stored[id]+")")
			} else {
				r.inTransit++
				r.transitIDs = append(r.transitIDs, id)
				r.transitAt = append(r.transitAt, m.at)
			}
			continue
		case m.receipts > 0 && m.errs > 0:
			r.conflicting++
		}
		r.dupReports += n - 1
		if m.receipts > 0 {
			r.delivered++
			if m.wantFail {
				r.wrongOutcome++
			}
			if submits[bodyOf(id)] == 0 {
				r.receiptNoSubmit++
			}
		} else {
			r.failed++
			r.conds[m.cond]++
		}
	}
	r.accepted = r.sent - r.inTransit
	for _, n := range submits {
		if n > 1 {
			r.dupSMSC += n - 1
		}
	}
	for body, m := range tl.mo {
		if !strings.HasPrefix(body, "mo ") {
			continue
		}
		if m.accepted {
			r.moAccepted++
			if m.arrived == 0 {
				r.moLost++
			}
		}
		if m.arrived > 0 {
			r.moArrived++
			r.dupMO += m.arrived - 1
		}
		if m.arrived > 1 && len(r.dupMOs) < 5 {
			r.dupMOs = append(r.dupMOs, fmt.Sprintf("%q arrived %d times after %d attempts", body, m.arrived, m.attempts))
		}
	}
	r.moStray = tl.moStray
	sort.Strings(r.lostIDs)
	sort.Strings(r.transitIDs)
	e.carrier.mu.Lock()
	r.carrierReceipts = e.carrier.sent
	e.carrier.mu.Unlock()
	return r
}

func (r result) String() string {
	return fmt.Sprintf("accepted=%d delivered=%d failed=%d lost=%d duplicates=%d "+
		"(smsc=%d reports=%d mo=%d) sent=%d in_transit=%d mo_accepted=%d mo_arrived=%d mo_lost=%d "+
		"wrong_outcome=%d conflicting=%d receipt_without_submit=%d strays=%d",
		r.accepted, r.delivered, r.failed, r.lost, r.duplicates(),
		r.dupSMSC, r.dupReports, r.dupMO, r.sent, r.inTransit, r.moAccepted, r.moArrived, r.moLost,
		r.wrongOutcome, r.conflicting, r.receiptNoSubmit, r.strays+r.moStray)
}

// bounds is what a scenario tolerates.
type bounds struct {
	// crash: a fault kills a holder of unacknowledged stream data, so
	// messages sent around it (transitBefore before it to transitAfter
	// after) may be neither stored nor answered.
	crash      bool
	dupSMSC    int
	dupReports int
	dupMO      int
}

// Around a crash: the gateway's intake may lag the stream (seconds on a
// loaded machine), and the XMPP server routes to a dead connection until it
// notices.
const (
	transitBefore = 5 * time.Second
	transitAfter  = 3 * time.Second
)

// check logs the summary line and fails the test when the tally does not balance.
func (e *env) check(r result, b bounds) {
	e.t.Helper()
	e.t.Logf("scenario %s: %s", e.name, r)
	e.t.Logf("error conditions at senders: %v; receipts acknowledged by the gateway: %d", r.conds, r.carrierReceipts)
	if len(r.dupMOs) > 0 {
		e.t.Logf("duplicate phone messages, for example: %s", strings.Join(r.dupMOs, "; "))
	}
	fmt.Printf("scenario %s: %s\n", e.name, r)
	fail := func(format string, args ...any) {
		e.t.Errorf("scenario %s: "+format, append([]any{e.name}, args...)...)
	}
	if r.sent == 0 || r.delivered == 0 || r.moAccepted == 0 {
		fail("no load went through (sent %d, delivered %d, phone messages %d)", r.sent, r.delivered, r.moAccepted)
	}
	if r.accepted != r.delivered+r.failed+r.lost {
		fail("accepted %d != delivered %d + failed %d + lost %d", r.accepted, r.delivered, r.failed, r.lost)
	}
	if r.lost > 0 {
		fail("%d accepted messages never reported to their senders: %s", r.lost, head(r.lostIDs, 10))
	}
	outside := 0
	for _, at := range r.transitAt {
		near := false
		for _, f := range e.faults {
			near = near || b.crash && at.After(f.Add(-transitBefore)) && at.Before(f.Add(transitAfter))
		}
		if !near {
			outside++
		}
	}
	if outside > 0 {
		fail("%d of %d messages neither stored nor answered were not sent around a crash: %s", outside, r.inTransit, head(r.transitIDs, 10))
	}
	if r.moLost > 0 {
		fail("%d phone messages acknowledged to the SMSC never reached their user", r.moLost)
	}
	if r.wrongOutcome > 0 || r.conflicting > 0 || r.receiptNoSubmit > 0 {
		fail("wrong outcomes: %d receipts for failed messages, %d messages with a receipt and an error, %d receipts for messages the SMSC never got",
			r.wrongOutcome, r.conflicting, r.receiptNoSubmit)
	}
	if r.dupSMSC > b.dupSMSC {
		fail("%d duplicate submits at the SMSC, bound %d", r.dupSMSC, b.dupSMSC)
	}
	if r.dupReports > b.dupReports {
		fail("%d duplicate outcomes at senders, bound %d", r.dupReports, b.dupReports)
	}
	if r.dupMO > b.dupMO {
		fail("%d duplicate phone messages at users, bound %d", r.dupMO, b.dupMO)
	}
}

func head(s []string, n int) string {
	if len(s) > n {
		return strings.Join(s[:n], ", ") + ", … (" + strconv.Itoa(len(s)) + ")"
	}
	return strings.Join(s, ", ")
}
