package api

// AdminStore is what the supervisors' admin API needs (issue 5 fills it in).
type AdminStore interface{}

func (s *Server) adminRoutes() {}
