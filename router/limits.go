package router

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"switchboard/roster/number"
)

// Forbidden says, in words for a user, why no SMS may go to dest (E.164):
// the country and prefix limits; "" when it may. Verification codes obey
// it too.
func (r *Router) Forbidden(dest string) string {
	_, why := r.forbidden(dest)
	return why
}

// forbidden says why SMS may not go to dest — a label for metrics and a
// text for the sender — or "", "".
func (r *Router) forbidden(dest string) (reason, why string) {
	for _, p := range r.cfg.Limits.BlockedPrefixes {
		if strings.HasPrefix(dest, p) {
			return "prefix", fmt.Sprintf("SMS to %s… numbers are blocked by this gateway (premium-rate or otherwise barred).", p)
		}
	}
	if allowed := r.cfg.Limits.AllowedRegions; len(allowed) > 0 {
		region := number.E164(dest).Region()
		if !slices.Contains(allowed, region) {
			if region == "" {
				region = "an unknown region"
			}
			return "country", fmt.Sprintf("This gateway does not send SMS to %s (%s); it sends to %s.", dest, region, strings.Join(allowed, ", "))
		}
	}
	return "", ""
}

// quota tracks one batch's SMS against the users' and the global limits.
type quota struct {
	l      Limits
	users  map[string]*[2]int // minute, day
	global int
}

func (r *Router) newQuota(ctx context.Context, jids []string) (*quota, error) {
	l := r.cfg.Limits
	q := &quota{l: l, users: make(map[string]*[2]int)}
	if l.PerUserMinute == 0 && l.PerUserDay == 0 && l.GlobalMinute == 0 {
		return q, nil
	}
	if l.PerUserMinute == 0 && l.PerUserDay == 0 {
		jids = nil // users' SMS are not counted (see New)
	}
	now := time.Now()
	counts, global, err := r.store.SMSSent(ctx, jids, now.Add(-time.Minute), now.Add(-24*time.Hour))
	if err != nil {
		return nil, err
	}
	q.global = global
	for j, c := range counts {
		q.users[j] = &[2]int{c.Minute, c.Day}
	}
	return q, nil
}

// take counts the parts of one message as SMS for user, or says which
// limit refuses them: a label for metrics and a text for the sender. The
// limits count SMS as the carrier bills them, a part each.
func (q *quota) take(user string, parts int) (reason, why string) {
	parts = max(parts, 1)
	c := q.users[user]
	if c == nil {
		c = new([2]int)
		q.users[user] = c
	}
	over := func(used, limit int) bool { return limit > 0 && used+parts > limit }
	switch {
	case over(q.global, q.l.GlobalMinute):
		return "quota_global", "The gateway is sending too many SMS right now; try again in a minute."
	case over(c[0], q.l.PerUserMinute):
		return "quota_user_minute", userOver(c[0], q.l.PerUserMinute, parts, "in the last minute", "try again in a minute")
	case over(c[1], q.l.PerUserDay):
		return "quota_user_day", userOver(c[1], q.l.PerUserDay, parts, "in the last 24 hours", "try again tomorrow")
	}
	c[0] += parts
	c[1] += parts
	q.global += parts
	return "", ""
}

// userOver says why a user's limit refuses a message of parts SMS, with
// used of limit gone in the window.
func userOver(used, limit, parts int, window, retry string) string {
	if used >= limit {
		return fmt.Sprintf("You have sent %d SMS %s, the most allowed; %s.", used, window, retry)
	}
	return fmt.Sprintf("This message takes %d SMS, and %d of the %d allowed %s are left; %s, or send a shorter message.",
		parts, limit-used, limit, window, retry)
}
