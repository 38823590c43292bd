package hub

// Protocol names the hub and its HTTP surface (package server) share, so
// each is spelled once.
const (
	// Path is the URL path of the Mercure hub: subscribe (GET), publish
	// (POST); SubscriptionsPath is below it.
	Path = "/.well-known/mercure"

	// BatchPath is where ssekit's batch publishing extension takes many
	// updates in one request, or a stream of them (docs/publishing.md).
	BatchPath = Path + "/batch"

	// EarliestID is the Last-Event-ID that asks for the whole retained
	// history, and the ReplayInfo.ResumedAfter of a replay that did not
	// find the id asked for. A publisher may not use it as an update's id.
	EarliestID = "earliest"

	// HistoryGapEvent is the type of the event that tells a resuming
	// subscriber its Last-Event-ID is no longer retained: what follows is
	// the whole retained history, and updates in between may be missing.
	HistoryGapEvent = "ssekit-history-gap"

	// AuthCookie is the cookie Mercure clients carry their token in.
	AuthCookie = "mercureAuthorization"
)
