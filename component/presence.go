package component

import (
	"sync"

	"mellium.im/xmpp/jid"
)

// presences tracks which users have an available resource, from the
// presence the server forwards under an XEP-0356 presence privilege.
type presences struct {
	mu    sync.Mutex
	avail map[string]map[string]bool // bare JID → available resources
}

// observe records a forwarded presence: available adds the resource,
// unavailable removes it.
func (p *presences) observe(from jid.JID, typ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.avail == nil {
		p.avail = make(map[string]map[string]bool)
	}
	bare := from.Bare().String()
	switch typ {
	case "":
		if p.avail[bare] == nil {
			p.avail[bare] = make(map[string]bool)
		}
		p.avail[bare][from.Resourcepart()] = true
	case "unavailable":
		delete(p.avail[bare], from.Resourcepart())
		if len(p.avail[bare]) == 0 || from.Resourcepart() == "" {
			delete(p.avail, bare)
		}
	}
}

func (p *presences) reset() {
	p.mu.Lock()
	p.avail = nil
	p.mu.Unlock()
}

func (p *presences) available(bare string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.avail[bare]) > 0
}

// Available tells whether user has an available resource. known is false
// unless the user's server granted the component presence privilege
// (XEP-0356), since only then does the component see users' presence.
func (c *Component) Available(user jid.JID) (known, available bool) {
	_, _, perm := c.Privileges(user.Domainpart())
	if perm != "managed_entity" && perm != "roster" {
		return false, false
	}
	return true, c.pres.available(user.Bare().String())
}
