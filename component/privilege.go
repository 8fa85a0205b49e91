package component

// The component side of users' rosters: XEP-0356 (Privileged Entity) where the
// server grants roster access, XEP-0144 (Roster Item Exchange) suggestions where
// it does not or where privileged sets fail, and presence from number JIDs.

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/roster"
	"switchboard/store"
)

const (
	// nsPrivilege1 is XEP-0356 0.2/0.3 (ejabberd 23.01); nsPrivilege2 is
	// XEP-0356 0.4 (Prosody's mod_privilege). Both advertise permissions as
	// <perm access='…' type='…'/> children of <privilege/>.
	nsPrivilege1 = "urn:xmpp:privilege:1"
	nsPrivilege2 = "urn:xmpp:privilege:2"
	nsRoster     = "jabber:iq:roster"
)

const (
	// privilegeGrace is how long after connecting PushRoster waits for the
	// server's privilege advertisement before it takes "no privilege" for an
	// answer. Prosody and ejabberd send it right after the handshake.
	privilegeGrace = 2 * time.Second
	// rosterIQTimeout bounds the wait for the answer to one roster set.
	rosterIQTimeout = 10 * time.Second
	// rosterAllowance is what a roster get's answer may take beyond the
	// stanza bound: some 150,000 items.
	rosterAllowance = 16 << 20
	// lateAnswer is how long the allowance stays for a roster get's answer
	// that did not come in time.
	lateAnswer = 5 * time.Minute
	// suggestBatch is the most items one XEP-0144 message carries.
	suggestBatch = 100
)

// grant is what one server domain granted the component (XEP-0356).
type grant struct {
	ns                        string
	roster, message, presence string // "none" when not granted
}

func (g grant) rosterSet() bool { return g.roster == "set" || g.roster == "both" }
func (g grant) rosterGet() bool { return g.roster == "get" || g.roster == "both" }

// privState keeps the privileges of the current session. reset starts a new
// generation at each connection: grants and learned failures do not survive
// a reconnect (the server may have been reconfigured or upgraded).
type privState struct {
	mu      sync.Mutex
	gen     uint64
	started time.Time
	done    chan struct{}    // closed when the session of gen ends
	grants  map[string]grant // by server domain
	setOK   map[string]bool  // a privileged roster set succeeded on the domain
	setFail map[string]bool  // privileged roster sets fail on the domain: suggest instead
	changed chan struct{}    // closed and replaced when grants change
}

// reset starts a session: no grants until the server advertises them.
func (p *privState) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	p.started = time.Now()
	p.done = make(chan struct{})
	p.grants = map[string]grant{}
	p.setOK = map[string]bool{}
	p.setFail = map[string]bool{}
	p.notifyLocked()
}

// end marks the session ended, waking roster sets waiting for answers.
func (p *privState) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		close(p.done)
		p.done = nil
	}
	p.grants = nil
	p.notifyLocked()
}

func (p *privState) notifyLocked() {
	if p.changed != nil {
		close(p.changed)
	}
	p.changed = make(chan struct{})
}

// recordPrivilege records a XEP-0356 advertisement. It reports whether s
// carries a <privilege/> element, which no other handler wants: one from
// anything but a server domain is dropped.
func (c *Component) recordPrivilege(s *inStanza) bool {
	var el *element
	for i := range s.Payload {
		n := s.Payload[i].XMLName
		if n.Local == "privilege" && (n.Space == nsPrivilege1 || n.Space == nsPrivilege2) {
			el = &s.Payload[i]
			break
		}
	}
	if el == nil {
		return false
	}
	from, err := jid.Parse(s.From)
	if err != nil || from.Localpart() != "" || from.Resourcepart() != "" || s.Type == "error" {
		c.log.Warn().Str("from", s.From).Str("type", s.Type).Msg("privilege advertisement not from a server dropped")
		return true
	}
	if !c.router.Served(from) {
		// Another host of the server (its users are not the gateway's), or
		// a remote server: nothing to use, nor to store for the other
		// instances.
		c.log.Debug().Str("from", s.From).Msg("privilege advertisement for a domain not served ignored")
		return true
	}
	var adv struct {
		Perms []struct {
			Access string `xml:"access,attr"`
			Type   string `xml:"type,attr"`
		} `xml:"perm"`
	}
	if err := el.decode(&adv); err != nil {
		c.log.Warn().Err(err).Str("from", s.From).Msg("unreadable privilege advertisement")
		return true
	}
	g := grant{ns: el.XMLName.Space, roster: "none", message: "none", presence: "none"}
	for _, p := range adv.Perms {
		switch p.Access {
		case "roster":
			g.roster = p.Type
		case "message":
			g.message = p.Type
		case "presence":
			g.presence = p.Type
		}
	}
	domain := from.Domainpart()
	c.priv.mu.Lock()
	if c.priv.grants != nil {
		c.priv.grants[domain] = g
		c.priv.notifyLocked()
	}
	c.priv.mu.Unlock()
	c.log.Info().Str("domain", domain).Str("ns", g.ns).Str("roster", g.roster).
		Str("message_perm", g.message).Str("presence", g.presence).Msg("server granted privileges")
	if c.cfg.Presences != nil {
		// For the other instances (see Presences). Rare: once a connection.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := c.cfg.Presences.SetGrant(ctx, domain, store.Grant{
			NS: g.ns, Roster: g.roster, Message: g.message, Presence: g.presence, At: time.Now()})
		cancel()
		if err != nil {
			c.log.Warn().Err(err).Msg("recording the privileges for the other instances failed")
		}
	}
	return true
}

// Privileges returns what the server for domain granted in this session
// (XEP-0356 permission types such as "both", "outgoing", "roster", or
// "none"); all empty if it advertised nothing.
func (c *Component) Privileges(domain string) (rosterPerm, message, presence string) {
	c.priv.mu.Lock()
	defer c.priv.mu.Unlock()
	g, ok := c.priv.grants[domain]
	if !ok {
		return "", "", ""
	}
	return g.roster, g.message, g.presence
}

// current returns the session and its privilege generation; s is nil while
// disconnected.
func (c *Component) current() (s *xmpp.Session, gen uint64, done <-chan struct{}) {
	c.priv.mu.Lock()
	gen, done = c.priv.gen, c.priv.done
	c.priv.mu.Unlock()
	c.mu.RLock()
	s = c.sess
	c.mu.RUnlock()
	if done == nil {
		return nil, gen, nil
	}
	return s, gen, done
}

// grantFor returns what the server for domain granted in session gen (a
// zero grant if nothing), and whether privileged roster sets failed there.
// Just after connecting it waits (up to privilegeGrace) for the server's
// advertisement.
func (c *Component) grantFor(ctx context.Context, gen uint64, domain string) (g grant, setFailed bool) {
	for {
		c.priv.mu.Lock()
		if c.priv.gen != gen {
			c.priv.mu.Unlock()
			return grant{}, false
		}
		g, granted := c.priv.grants[domain]
		failed := c.priv.setFail[domain]
		wait := privilegeGrace - time.Since(c.priv.started)
		changed := c.priv.changed
		c.priv.mu.Unlock()
		if granted || failed || wait <= 0 {
			return g, failed
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		if ctx.Err() != nil {
			return grant{}, false
		}
	}
}

// PushRoster sets or removes items in owner's roster. Where owner's server
// granted the component roster access (XEP-0356 "set" or "both") each item
// goes in its own privileged roster set; added items carry
// subscription='both' so that presence flows between owner and the number.
// Where no access was granted, or privileged sets fail on that server
// (ejabberd 23.01 answers them with internal-server-error), the items are
// suggested with XEP-0144 messages instead, and the failure is remembered
// for the domain until the next connection. It returns ErrDisconnected while
// the session is down, and the error of a set nobody answered.
//
// Where the server lets the component read rosters ("get" or "both"), new
// items (neither Changed nor Remove) are first looked up in owner's roster
// (see users): one there already, made by the user, is left as it is and
// returned among users.
func (c *Component) PushRoster(ctx context.Context, owner jid.JID, items []roster.Item) (users []jid.JID, err error) {
	owner = owner.Bare()
	if owner.Localpart() == "" {
		return nil, fmt.Errorf("component: roster owner %q is not a user", owner)
	}
	if len(items) == 0 {
		return nil, nil
	}
	s, gen, done := c.current()
	if s == nil {
		return nil, ErrDisconnected
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	disconnected := func(err error) error {
		select {
		case <-done:
			return ErrDisconnected
		default:
			return err
		}
	}

	domain := owner.Domainpart()
	g, setFailed := c.grantFor(ctx, gen, domain)
	if err := ctx.Err(); err != nil {
		return nil, disconnected(err)
	}
	if g.rosterGet() {
		items, users, err = c.users(ctx, owner, items)
		if err != nil {
			return nil, disconnected(err)
		}
	}
	suggest := items
	if g.rosterSet() && !setFailed {
		suggest, err = c.setRoster(ctx, s, gen, owner, items)
		if err != nil {
			return nil, disconnected(err)
		}
	}
	if len(suggest) == 0 {
		return users, nil
	}
	if err := c.suggestRoster(ctx, owner, suggest); err != nil {
		return nil, disconnected(err)
	}
	return users, nil
}

// users reads owner's roster (a privileged get) for the new items (neither
// Changed nor Remove) of items, and returns the items still to push and the
// JIDs of those that are the user's own: in the roster already, outside the
// item's group (the gateway puts its items in that group; a user who adds
// a contact by hand does not). Such an item keeps the name and group the
// user gave it, and stays when the number leaves the address book. An item
// in the group is one the gateway pushed before (a push whose record a
// crash lost): pushed again only if its name changed. Where the server
// refuses the read, every item is pushed, as before rosters were read.
func (c *Component) users(ctx context.Context, owner jid.JID, items []roster.Item) (rest []roster.Item, users []jid.JID, err error) {
	fresh := func(it roster.Item) bool { return !it.Changed && !it.Remove }
	if !slices.ContainsFunc(items, fresh) {
		return items, nil, nil
	}
	have, err := c.readRoster(ctx, owner)
	var se stanza.Error
	switch {
	case errors.As(err, &se):
		c.log.Warn().Err(err).Str("owner", owner.String()).
			Msg("reading the roster refused; pushing the contacts without looking for items the user made")
		return items, nil, nil
	case err != nil:
		return nil, nil, err
	}
	rest = items[:0:0]
	for _, it := range items {
		e, ok := have[it.JID.Bare().String()]
		switch {
		case !fresh(it) || !ok:
			rest = append(rest, it)
		case !slices.Contains(e.groups, it.Group):
			users = append(users, it.JID)
		case e.name != it.Name:
			rest = append(rest, it)
		}
	}
	if len(users) > 0 {
		c.log.Info().Str("owner", owner.String()).Int("items", len(users)).
			Msg("contacts already in the roster as the user made them: left as they are")
	}
	return rest, users, nil
}

// setRoster sends one privileged roster set per item and returns the items
// to suggest instead: all that remain if the server refuses the first set on
// a domain where none has worked yet, else the ones it refused.
func (c *Component) setRoster(ctx context.Context, s *xmpp.Session, gen uint64, owner jid.JID, items []roster.Item) (suggest []roster.Item, err error) {
	domain := owner.Domainpart()
	for i, it := range items {
		err := c.rosterSet(ctx, s, owner, it)
		var se stanza.Error
		switch {
		case err == nil:
			c.priv.mu.Lock()
			if c.priv.gen == gen {
				c.priv.setOK[domain] = true
			}
			c.priv.mu.Unlock()
			continue
		case !errors.As(err, &se):
			return nil, err
		case it.Remove && se.Condition == stanza.ItemNotFound:
			continue // Prosody: the item was not there
		}
		c.priv.mu.Lock()
		worked := c.priv.setOK[domain]
		if !worked && c.priv.gen == gen {
			c.priv.setFail[domain] = true
		}
		c.priv.mu.Unlock()
		if !worked {
			c.log.Warn().Err(err).Str("domain", domain).
				Msg("privileged roster set refused; suggesting roster items with XEP-0144 for this domain until reconnected")
			return append(suggest, items[i:]...), nil
		}
		c.log.Warn().Err(err).Str("item", it.JID.String()).Msg("privileged roster set refused; suggesting the item")
		suggest = append(suggest, it)
	}
	return suggest, nil
}

// rosterEntry is an item of a user's roster.
type rosterEntry struct {
	name, subscription string
	groups             []string
}

// readRoster reads owner's roster by a privileged roster get: its items by
// bare JID. A type='error' answer is returned as a stanza.Error.
func (c *Component) readRoster(ctx context.Context, owner jid.JID) (map[string]rosterEntry, error) {
	s, err := c.live()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, rosterIQTimeout)
	defer cancel()
	// A whole roster may be larger than a stanza a peer would send (10,000
	// number contacts take about 1 MiB). An answer that comes after the
	// wait (a busy server) is still read off the stream, and dropped: the
	// allowance stays a while longer for it, lest it end the session.
	if cc := c.capped.Load(); cc != nil {
		release := cc.allow(rosterAllowance)
		defer func() {
			if ctx.Err() != nil {
				time.AfterFunc(lateAnswer, release)
				return
			}
			release()
		}()
	}
	query := xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: nsRoster, Local: "query"}})
	resp, err := c.sendIQ(ctx, s, stanza.IQ{From: c.cfg.JID, To: owner, Type: stanza.GetIQ}, query)
	if err != nil {
		return nil, err
	}
	defer resp.Close()
	var reply struct {
		Type  string        `xml:"type,attr"`
		Error *stanza.Error `xml:"error"`
		Items []struct {
			JID          string   `xml:"jid,attr"`
			Name         string   `xml:"name,attr"`
			Subscription string   `xml:"subscription,attr"`
			Groups       []string `xml:"group"`
		} `xml:"jabber:iq:roster query>item"`
	}
	if err := xml.NewTokenDecoder(resp).Decode(&reply); err != nil {
		return nil, fmt.Errorf("component: reading the roster get answer: %w", err)
	}
	if err := answerError(reply.Type, reply.Error, "roster get"); err != nil {
		return nil, err
	}
	out := make(map[string]rosterEntry, len(reply.Items))
	for _, it := range reply.Items {
		if j, err := jid.Parse(it.JID); err == nil {
			out[j.Bare().String()] = rosterEntry{name: it.Name, subscription: cmp.Or(it.Subscription, "none"), groups: it.Groups}
		}
	}
	return out, nil
}

// rosterSubscription reads, by a privileged roster get, the subscription
// of item in owner's roster: "" when the roster has no such item.
func (c *Component) rosterSubscription(ctx context.Context, owner, item jid.JID) (string, error) {
	have, err := c.readRoster(ctx, owner)
	if err != nil {
		return "", err
	}
	return have[item.Bare().String()].subscription, nil
}

// rosterSet sends one privileged roster set and waits for the answer. A
// type='error' answer is returned as a stanza.Error.
func (c *Component) rosterSet(ctx context.Context, s *xmpp.Session, owner jid.JID, it roster.Item) error {
	ctx, cancel := context.WithTimeout(ctx, rosterIQTimeout)
	defer cancel()
	attr := []xml.Attr{{Name: xml.Name{Local: "jid"}, Value: it.JID.Bare().String()}}
	if it.Name != "" {
		attr = append(attr, xml.Attr{Name: xml.Name{Local: "name"}, Value: it.Name})
	}
	var groups xml.TokenReader
	if it.Remove {
		attr = append(attr, xml.Attr{Name: xml.Name{Local: "subscription"}, Value: "remove"})
	} else {
		// Prosody's mod_privilege stores both, to, from or none as given
		// (anything else keeps the item's current subscription).
		attr = append(attr, xml.Attr{Name: xml.Name{Local: "subscription"}, Value: "both"})
		if it.Group != "" {
			groups = textElem(xml.Name{Local: "group"}, it.Group)
		}
	}
	query := xmlstream.Wrap(
		xmlstream.Wrap(groups, xml.StartElement{Name: xml.Name{Local: "item"}, Attr: attr}),
		xml.StartElement{Name: xml.Name{Space: nsRoster, Local: "query"}})
	resp, err := c.sendIQ(ctx, s, stanza.IQ{From: c.cfg.JID, To: owner, Type: stanza.SetIQ}, query)
	if err != nil {
		return err
	}
	defer resp.Close()
	var reply struct {
		Type  string        `xml:"type,attr"`
		Error *stanza.Error `xml:"error"`
	}
	if err := xml.NewTokenDecoder(resp).Decode(&reply); err != nil {
		return fmt.Errorf("component: reading the roster set answer: %w", err)
	}
	return answerError(reply.Type, reply.Error, "roster set")
}

// suggestRoster sends owner XEP-0144 messages of up to suggestBatch items,
// with a body listing them for clients that do not implement it. Items
// without Remove are suggested with action 'modify' when they were
// suggested before (Changed: a rename), else 'add' (clients skip an add of
// a JID their roster has).
func (c *Component) suggestRoster(ctx context.Context, owner jid.JID, items []roster.Item) error {
	for len(items) > 0 {
		batch := items[:min(suggestBatch, len(items))]
		items = items[len(batch):]
		var xitems []xml.TokenReader
		for _, it := range batch {
			action := "add"
			switch {
			case it.Remove:
				action = "delete"
			case it.Changed:
				action = "modify"
			}
			attr := []xml.Attr{
				{Name: xml.Name{Local: "action"}, Value: action},
				{Name: xml.Name{Local: "jid"}, Value: it.JID.Bare().String()},
			}
			if it.Name != "" {
				attr = append(attr, xml.Attr{Name: xml.Name{Local: "name"}, Value: it.Name})
			}
			var group xml.TokenReader
			if it.Group != "" && !it.Remove {
				group = textElem(xml.Name{Local: "group"}, it.Group)
			}
			xitems = append(xitems, xmlstream.Wrap(group, xml.StartElement{Name: xml.Name{Local: "item"}, Attr: attr}))
		}
		payload := xmlstream.MultiReader(
			textElem(xml.Name{Local: "body"}, suggestText(batch)),
			xmlstream.Wrap(xmlstream.MultiReader(xitems...), xml.StartElement{Name: xml.Name{Space: nsRosterX, Local: "x"}}),
		)
		msg := stanza.Message{From: c.cfg.JID, To: owner, Type: stanza.NormalMessage}
		if err := c.send(ctx, msg.Wrap(payload)); err != nil {
			return err
		}
	}
	return nil
}

// suggestText is the human-readable body of a XEP-0144 suggestion.
func suggestText(items []roster.Item) string {
	var add, del []string
	for _, it := range items {
		line := it.JID.Bare().String()
		if it.Name != "" {
			line = it.Name + " <" + line + ">"
		}
		if it.Remove {
			del = append(del, "- "+line)
		} else {
			add = append(add, "+ "+line)
		}
	}
	var b strings.Builder
	switch {
	case len(del) == 0:
		fmt.Fprintf(&b, "Switchboard suggests adding %s from your address book to your contact list:", contacts(len(add)))
	case len(add) == 0:
		fmt.Fprintf(&b, "Switchboard suggests removing %s from your contact list:", contacts(len(del)))
	default:
		fmt.Fprintf(&b, "Switchboard suggests changes to %s in your contact list, from your address book: %d to add, %d to remove.",
			contacts(len(items)), len(add), len(del))
	}
	for _, l := range append(add, del...) {
		b.WriteString("\n" + l)
	}
	return b.String()
}

func contacts(n int) string {
	if n == 1 {
		return "1 contact"
	}
	return fmt.Sprintf("%d contacts", n)
}

// ContactPresence sends presence from a number JID on the component's domain
// to owner's bare JID: available with an optional status, or unavailable.
func (c *Component) ContactPresence(ctx context.Context, from, owner jid.JID, available bool, status string) error {
	if from.Domainpart() != c.cfg.JID.Domainpart() || from.Localpart() == "" {
		// The server would close the stream for a from outside the component's domain.
		return fmt.Errorf("component: presence from %q: not a number JID on %s", from, c.cfg.JID.Domainpart())
	}
	p := stanza.Presence{From: from.Bare(), To: owner.Bare()}
	if !available {
		p.Type = stanza.UnavailablePresence
	}
	var payload xml.TokenReader
	if status != "" {
		payload = textElem(xml.Name{Local: "status"}, status)
	}
	return c.send(ctx, p.Wrap(payload))
}
