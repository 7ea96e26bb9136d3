package api

// SyncStore is what the station sync protocol needs (issue 3 fills it in).
type SyncStore interface{}

func (s *Server) syncRoutes() {}
