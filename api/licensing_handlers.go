package api

func (s *Server) licensingRoutes() {}
