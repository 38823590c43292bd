package server

// DepartureWakeups is how many times the departure watcher woke up, for
// tests that check bytes from a client do not make it spin.
func DepartureWakeups(s *Server) int64 { return s.pool.departures.wakeups.Load() }
