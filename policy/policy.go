// Package policy applies topic policies: rules chosen by a topic
// matcher (an exact topic or a URL Pattern) on who may subscribe to the
// topics they match. It implements server.SubscribePolicy.
//
// A subscription is subject to a policy when one of its selectors could
// deliver a topic of the policy: an exact selector when the policy
// matches it, a template, "*" or URL Pattern selector whenever the
// policy is a URL Pattern (whether two patterns overlap is not decided,
// so the policy applies), or when it matches the policy's exact topic.
package policy

import (
	"errors"
	"fmt"

	"github.com/ssekit/sse/hub"
	"github.com/ssekit/sse/server"
)

// Errors.
var (
	ErrInvalidPolicy = errors.New("policy: invalid")
)

// Policy is one rule.
type Policy struct {
	// Name identifies the policy in refusals and logs.
	Name string
	// Exact, when set, is the topic the policy is for; otherwise Pattern
	// matches its topics (a urlpattern.Matcher).
	Exact   string
	Pattern hub.Matcher
	// NoAnonymous refuses subscribers without a token or a hook's grant.
	NoAnonymous bool
	// RequireHook refuses subscribers not decided by the auth hook (those
	// with a token included).
	RequireHook bool
}

// Set is a list of policies; every one that applies must allow.
type Set struct{ policies []Policy }

// New checks the policies.
func New(ps []Policy) (*Set, error) {
	for _, p := range ps {
		if (p.Exact == "") == (p.Pattern == nil) {
			return nil, fmt.Errorf("%w: policy %q needs exactly one of an exact topic or a pattern", ErrInvalidPolicy, p.Name)
		}
	}
	return &Set{policies: ps}, nil
}

// applies reports whether a subscription with these selectors could
// receive a topic of p.
func (p *Policy) applies(selectors []*hub.Selector) bool {
	for _, s := range selectors {
		switch {
		case p.Exact != "":
			if s.Match(p.Exact) {
				return true
			}
		case s.Exact():
			if p.Pattern.Match(s.String()) {
				return true
			}
		default: // two patterns: assume they overlap
			return true
		}
	}
	return false
}

// CheckSubscribe implements server.SubscribePolicy.
func (ps *Set) CheckSubscribe(selectors []*hub.Selector, how server.Authorization) error {
	for i := range ps.policies {
		p := &ps.policies[i]
		if !(p.NoAnonymous && how == server.Anonymous || p.RequireHook && how != server.ByHook) || !p.applies(selectors) {
			continue
		}
		if p.RequireHook {
			return fmt.Errorf("%w: topics of policy %q are for subscribers the application admits", server.ErrPolicyRefused, p.Name)
		}
		return fmt.Errorf("%w: topics of policy %q need a token", server.ErrPolicyRefused, p.Name)
	}
	return nil
}

var _ server.SubscribePolicy = (*Set)(nil)
