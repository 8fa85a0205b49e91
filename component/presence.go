package component

import (
	"context"
	"encoding/xml"
	"fmt"
	"strconv"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/store"
)

// Presences records users' presence, as the server forwards it under an
// XEP-0356 presence privilege. *store.Store shares it among instances:
// ejabberd spreads a component's stanzas over its connections, so a user's
// coming online may reach one instance and a message for them another.
//
// The record outlives streams: ejabberd does not send users' presence
// again to a component that connects (Prosody does, which refreshes it), so
// forgetting it at a new stream would take every online user for offline
// until they change presence.
//
// It also shares the servers' privilege advertisements (XEP-0356):
// ejabberd addresses one to the component's domain, so the advertisement
// for one instance's connection may reach another instance.
type Presences interface {
	SetPresences(ctx context.Context, changes []store.PresenceChange) error
	UserAvailable(ctx context.Context, bare, resource string) (bool, error)
	SetGrant(ctx context.Context, domain string, g store.Grant) error
	EndPresencesBefore(ctx context.Context, before time.Time) (int64, error)
	GrantOf(ctx context.Context, domain string) (g store.Grant, ok bool, err error)
}

// presenceBatch bounds the changes written in one transaction.
const presenceBatch = 512

// presenceQueue writes presence changes in the order they were read, off
// the stream's read loop (a server restarting sends every user's presence
// at once), and lets a reader wait for the changes read before it. Its
// writer is run by Component.Run.
type presenceQueue struct {
	mu      sync.Mutex
	ops     []store.PresenceChange
	queued  uint64
	applied uint64
	changed chan struct{} // closed when applied grows
	wake    chan struct{} // a change was queued
}

func (q *presenceQueue) init() {
	q.changed = make(chan struct{})
	q.wake = make(chan struct{}, 1)
}

// observe queues a user's presence, forwarded under the privilege (or an
// unavailable broadcast to a number): available ("") or unavailable.
func (c *Component) observe(from jid.JID, typ string) {
	if c.cfg.Presences == nil || typ != "" && typ != "unavailable" {
		return
	}
	c.presq.add(store.PresenceChange{
		JID: from.Bare().String(), Resource: from.Resourcepart(), Available: typ == "", At: time.Now(),
	})
}

func (q *presenceQueue) add(ch store.PresenceChange) {
	q.mu.Lock()
	if n := len(q.ops); n > 0 {
		if last := &q.ops[n-1]; last.JID == ch.JID && last.Resource == ch.Resource && last.Available == ch.Available {
			// The same change again, as a user's presence broadcast comes
			// once for every number in their roster: one write, at the
			// later time (which must win over another instance's write
			// in between, as the copy would have).
			last.At = ch.At
			q.mu.Unlock()
			return
		}
	}
	q.ops = append(q.ops, ch)
	q.queued++
	q.mu.Unlock()
	q.poke()
}

// poke wakes the writer (run) for what was just queued.
func (q *presenceQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// advanceLocked counts n more changes written, or given up, and wakes the
// readers waiting in settled. q.mu is held.
func (q *presenceQueue) advanceLocked(n int) {
	q.applied += uint64(n)
	close(q.changed)
	q.changed = make(chan struct{})
}

// reserve takes a place for a change not known yet (see
// unavailableToNumber): readers waiting for what was read before them
// (settled) wait for it too. fill gives the change, or nil for none; it
// must be called once.
func (q *presenceQueue) reserve() (fill func(*store.PresenceChange)) {
	q.mu.Lock()
	q.queued++
	q.mu.Unlock()
	return func(ch *store.PresenceChange) {
		q.mu.Lock()
		if ch == nil {
			q.advanceLocked(1)
			q.mu.Unlock()
			return
		}
		q.ops = append(q.ops, *ch)
		q.mu.Unlock()
		q.poke()
	}
}

// run writes what is queued with apply until ctx ends, and then what was
// queued by then.
func (q *presenceQueue) run(ctx context.Context, apply func([]store.PresenceChange)) {
	for {
		select {
		case <-q.wake:
		case <-ctx.Done():
			q.drain(apply)
			return
		}
		q.drain(apply)
	}
}

func (q *presenceQueue) drain(apply func([]store.PresenceChange)) {
	for {
		q.mu.Lock()
		ops := q.ops
		q.ops = nil
		q.mu.Unlock()
		if len(ops) == 0 {
			return
		}
		apply(ops)
		q.mu.Lock()
		q.advanceLocked(len(ops))
		q.mu.Unlock()
	}
}

// settled waits until the changes queued before the call are written, or
// ctx ends.
func (q *presenceQueue) settled(ctx context.Context) {
	q.mu.Lock()
	target := q.queued
	for q.applied < target {
		ch := q.changed
		q.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
		q.mu.Lock()
	}
	q.mu.Unlock()
}

// applyPresence writes changes in order, in batches. Presence is soft
// state: a failed write is logged and dropped (the message then goes over
// XMPP, with the SMS fallback timer, or as SMS at once, as if the presence
// had not come).
func (c *Component) applyPresence(ops []store.PresenceChange) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(ops) > 0 {
		n := min(len(ops), presenceBatch)
		if err := c.cfg.Presences.SetPresences(ctx, ops[:n]); err != nil {
			c.log.Warn().Err(err).Int("changes", n).Msg("recording users' presence failed")
		}
		ops = ops[n:]
	}
}

// Available tells whether user (a bare JID: any of its resources; a full
// JID: that resource) is available. known is false unless the user's
// server granted the component presence privilege (XEP-0356), since only
// then does the component see users' presence; and when the component
// keeps no record (Config.Presences nil) or the record cannot be read.
func (c *Component) Available(user jid.JID) (known, available bool) {
	_, perm := c.presenceGrant(user.Domainpart())
	if c.cfg.Presences == nil || perm != "managed_entity" && perm != "roster" {
		return false, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.presq.settled(ctx) // what this instance read before the message
	avail, err := c.cfg.Presences.UserAvailable(ctx, user.Bare().String(), user.Resourcepart())
	if err != nil {
		c.log.Warn().Err(err).Msg("reading users' presence failed")
		return false, false
	}
	return true, avail
}

// Reachable asks user's client (a full JID) for its disco#info: its
// answer, or any error but service-unavailable, says it is there; the
// server answers service-unavailable for a resource that has gone (RFC 6120
// §10.5.3.1), as would the rare client that serves no disco. known is false
// without an answer within reachWait.
func (c *Component) Reachable(ctx context.Context, user jid.JID) (known, reachable bool) {
	s, err := c.live()
	if err != nil {
		return false, false
	}
	ctx, cancel := context.WithTimeout(ctx, reachWait)
	defer cancel()
	resp, err := c.sendIQ(ctx, s, stanza.IQ{Type: stanza.GetIQ, From: c.cfg.JID, To: user},
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsDiscoInfo, Local: "query"}}))
	if err != nil {
		return false, false
	}
	defer resp.Close()
	var reply struct {
		Type  string        `xml:"type,attr"`
		Error *stanza.Error `xml:"error"`
	}
	if err := xml.NewTokenDecoder(resp).Decode(&reply); err != nil {
		return false, false
	}
	gone := reply.Type == "error" && reply.Error != nil && reply.Error.Condition == stanza.ServiceUnavailable
	return true, !gone
}

// reachWait bounds Reachable's wait for an answer.
const reachWait = 5 * time.Second

// presenceGrant is the presence privilege the server for domain granted,
// and the XEP-0356 namespace it advertised it in: as advertised to this
// instance in its session, or else as another instance recorded an
// advertisement since this session started (give or take grantSkew, for
// the instances' clocks), which ejabberd may have meant for this
// instance's connection.
func (c *Component) presenceGrant(domain string) (ns, perm string) {
	c.priv.mu.Lock()
	g, own := c.priv.grants[domain]
	started, connected := c.priv.started, c.priv.done != nil
	c.priv.mu.Unlock()
	if own {
		return g.ns, g.presence
	}
	if c.cfg.Presences == nil || !connected {
		return "", ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	sg, ok, err := c.cfg.Presences.GrantOf(ctx, domain)
	if err != nil {
		c.log.Warn().Err(err).Msg("reading the privileges other instances recorded failed")
		return "", ""
	}
	if !ok || sg.At.Before(started.Add(-grantSkew)) {
		return "", ""
	}
	return sg.NS, sg.Presence
}

// grantSkew is how much older than this session an advertisement another
// instance recorded may be and still count for it.
const grantSkew = 10 * time.Second

// unavailableToNumber handles, on ejabberd 23.01 (urn:xmpp:privilege:1),
// an unavailable presence from a user's resource to the number JID num. It
// is the user going offline when it is the server's broadcast to the
// contacts subscribed to the user's presence; but the server sends one too,
// from each of the user's resources, when the user removes the number from
// their roster or cancels its subscription, while staying online. Taken
// for going offline, that sent every message to the user as SMS at once.
// So the user's roster is read (a privileged roster get): the user goes
// offline only if the number still has the user's presence (subscription
// from or both), or if the roster cannot be read.
//
// The reads run on their own (a stanza handler may not wait for an
// answer), one resource's in turn: a session's end is broadcast to every
// number in the roster, and once a read finds the user gone the rest of
// the resource's queue is not read. Each change keeps the time it was
// read, so a later one recorded meanwhile wins, and takes its place in the
// presence queue at once, so that a message routed meanwhile waits for it.
func (c *Component) unavailableToNumber(ctx context.Context, from, num jid.JID) {
	if c.cfg.Presences == nil {
		return
	}
	key := from.String()
	chk := unavailCheck{num: num, at: time.Now(), fill: c.presq.reserve()}
	c.checkMu.Lock()
	if q, busy := c.checks[key]; busy {
		if len(q) >= maxUnavailChecks {
			c.checkMu.Unlock()
			chk.fill(nil) // a flood of them: the first ones decide
			return
		}
		c.checks[key] = append(q, chk)
		c.checkMu.Unlock()
		return
	}
	if c.checks == nil {
		c.checks = make(map[string][]unavailCheck)
	}
	c.checks[key] = nil // busy, nothing queued
	c.checkMu.Unlock()
	ctx = context.WithoutCancel(ctx) // the handler's ends as it returns
	c.checkWG.Go(func() {
		gone := false
		for {
			if gone {
				chk.fill(nil) // already recorded gone
			} else {
				gone = c.checkUnavailable(ctx, from, chk)
			}
			c.checkMu.Lock()
			q := c.checks[key]
			if len(q) == 0 {
				delete(c.checks, key)
				c.checkMu.Unlock()
				return
			}
			chk, c.checks[key] = q[0], q[1:]
			c.checkMu.Unlock()
		}
	})
}

// maxUnavailChecks bounds the unavailable presences of one resource
// waiting for their roster read.
const maxUnavailChecks = 64

// unavailCheck is an unavailable presence to a number JID waiting for the
// roster read that tells what it means (see unavailableToNumber).
type unavailCheck struct {
	num  jid.JID
	at   time.Time
	fill func(*store.PresenceChange) // its place in the presence queue
}

// checkUnavailable reads from's roster for chk and fills chk's place in
// the presence queue; it reports whether from is now recorded gone.
func (c *Component) checkUnavailable(ctx context.Context, from jid.JID, chk unavailCheck) bool {
	ctx, cancel := context.WithTimeout(ctx, rosterIQTimeout)
	defer cancel()
	sub, err := c.rosterSubscription(ctx, from.Bare(), chk.num)
	if err == nil && sub != "from" && sub != "both" {
		c.log.Debug().Str("user", from.String()).Str("number", chk.num.String()).Str("subscription", sub).
			Msg("unavailable for a subscription the user ended, not the user going offline")
		chk.fill(nil)
		return false
	}
	chk.fill(&store.PresenceChange{JID: from.Bare().String(), Resource: from.Resourcepart(), At: chk.at})
	return true
}

// serverRestarts ends, after a connection, the presence recorded before the
// XMPP server last started: a server that restarted ended every user's
// session, and need not tell the component (ejabberd does not), so users
// who did not come back would count as online for good, and messages to
// them go over XMPP into offline storage and, after the fallback wait, as
// SMS too. The server's uptime comes from XEP-0012 (jabber:iq:last, sent
// to its domain: Prosody's mod_uptime, ejabberd's mod_last); a server that
// does not answer it changes nothing. What the gateway read since the
// connection is newer than the server's start, and kept.
func (c *Component) serverRestarts(ctx context.Context) {
	if c.cfg.Presences == nil {
		return
	}
	asked := time.Now()
	up, err := c.uptime(ctx)
	if err != nil {
		c.log.Debug().Err(err).Msg("the XMPP server's uptime is unknown (XEP-0012); presence recorded before a restart is kept")
		return
	}
	started := asked.Add(-up)
	n, err := c.cfg.Presences.EndPresencesBefore(ctx, started)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			c.log.Warn().Err(err).Msg("ending the presence recorded before the XMPP server started failed")
		}
	case n > 0:
		c.log.Info().Time("server_started", started).Int64("resources", n).
			Msg("the XMPP server started since the users' presence was recorded: those resources are taken offline")
	}
}

// uptime asks the XMPP server how long it has been running (XEP-0012).
func (c *Component) uptime(ctx context.Context) (time.Duration, error) {
	s, err := c.live()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.PingTimeout)
	defer cancel()
	resp, err := c.sendIQ(ctx, s, stanza.IQ{Type: stanza.GetIQ, From: c.cfg.JID, To: c.server().Domain()},
		xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsLast, Local: "query"}}))
	if err != nil {
		return 0, err
	}
	defer resp.Close()
	var reply struct {
		Type  string `xml:"type,attr"`
		Query *struct {
			Seconds string `xml:"seconds,attr"`
		} `xml:"jabber:iq:last query"`
	}
	if err := xml.NewTokenDecoder(resp).Decode(&reply); err != nil {
		return 0, err
	}
	if reply.Type != "result" || reply.Query == nil {
		return 0, fmt.Errorf("no uptime in the answer (type %q)", reply.Type)
	}
	sec, err := strconv.ParseUint(reply.Query.Seconds, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("uptime %q: %w", reply.Query.Seconds, err)
	}
	return time.Duration(sec) * time.Second, nil
}
