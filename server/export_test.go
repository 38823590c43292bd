package server

// DepartureWakeups is how many times the departure watcher woke up, for
// tests that check bytes from a client do not make it spin.
func DepartureWakeups(s *Server) int64 { return s.pool.departures.wakeups.Load() }

// RawSockets is how many taken-over connections the writer pool holds as
// a bare socket descriptor (rawSock) rather than a net.Conn.
func RawSockets(s *Server) int {
	s.pool.connsMu.Lock()
	defer s.pool.connsMu.Unlock()
	n := 0
	for _, c := range s.pool.conns {
		if c.bare() {
			n++
		}
	}
	return n
}
