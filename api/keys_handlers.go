package api

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"keystation"
	"keystation/store"
)

// Seed 000's station key API.

// KeyStore is what the station key API needs.
type KeyStore interface {
	Acquire(ctx context.Context, req store.AcquireRequest) (store.Assignment, error)
	Report(ctx context.Context, r keystation.Report, opt store.ReportOptions) (store.ReportResult, error)
}

func (s *Server) keyRoutes() {
	s.handle("POST", "/api/v1/keys/acquire", s.handleAcquire)
	s.handle("POST", "/api/v1/keys/report", s.handleReport)
}

// credentials are seed 000's username and password fields.
type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// acquireRequest is seed 000's "get a key" body.
type acquireRequest struct {
	credentials
	SN        string `json:"sn"`
	Model     string `json:"model"`
	OSVersion string `json:"osVersion"`
}

// keyData is seed 000's answer: always {keyId, key}.
type keyData struct {
	KeyID int64  `json:"keyId"`
	Key   string `json:"key"`
}

func grantData(g *keystation.Grant) any {
	if g == nil {
		return nil
	}
	return keyData{KeyID: int64(g.KeyID), Key: g.Key.Plain()}
}

// reportRequest is seed 000's report body: a failure, or a success with the
// PC's hardware. resultCode (the raw error code) and reportId (a UUID that
// makes a retried report apply once) are optional additions.
type reportRequest struct {
	credentials
	KeyID         flexKeyID     `json:"keyId"`
	SN            string        `json:"sn"`
	Model         string        `json:"model"`
	OSVersion     string        `json:"osVersion"`
	ResultStatus  *bool         `json:"resultStatus"`
	ResultMessage *string       `json:"resultMessage"`
	ResultCode    string        `json:"resultCode"`
	ReportID      string        `json:"reportId"`
	CPU           string        `json:"cpu"`
	Memory        []memoryEntry `json:"memory"`
	Disk          []diskEntry   `json:"disk"`
}

type memoryEntry struct {
	ID           int        `json:"id"`
	Size         uint64     `json:"size"`
	Speed        flexString `json:"speed"`
	Manufacturer string     `json:"manufacturer"`
}

type diskEntry struct {
	ID            int    `json:"id"`
	Size          uint64 `json:"size"`
	InterfaceType string `json:"interfaceType"`
	Model         string `json:"model"`
}

const maxHardwareItems = 64

// authenticate checks seed 000's credentials; only operators and
// super-admins use the station key API.
func (s *Server) authenticate(r *http.Request, c credentials) (store.User, error) {
	f := map[string]string{}
	keystation.CheckText(f, "username", c.Username, keystation.MaxUsernameLen, true)
	if c.Password == "" {
		f["password"] = "required"
	} else if len(c.Password) > 1024 {
		f["password"] = "too long"
	}
	if len(f) > 0 {
		return store.User{}, keystation.FieldError(f)
	}
	u, err := s.Auth.Authenticate(r.Context(), c.Username, c.Password, clientIP(r))
	if err != nil {
		return u, err
	}
	if u.Role != store.RoleOperator && u.Role != store.RoleSuperAdmin {
		return u, keystation.Errorf(keystation.EFORBIDDEN, "the station key API is for operators")
	}
	return u, nil
}

func machineFields(f map[string]string, sn, model, osVersion string) {
	keystation.Machine{SN: sn, Model: model}.Validate(f)
	keystation.CheckText(f, "osVersion", osVersion, keystation.MaxOSVersionLen, true)
}

// handleAcquire answers POST /api/v1/keys/acquire with the machine's key.
func (s *Server) handleAcquire(w http.ResponseWriter, r *http.Request) {
	var req acquireRequest
	if err := decodeJSON(w, r, &req, MaxBodyBytes); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.authenticate(r, req.credentials)
	if err != nil {
		s.error(w, r, err)
		return
	}
	f := map[string]string{}
	machineFields(f, req.SN, req.Model, req.OSVersion)
	if len(f) > 0 {
		s.error(w, r, keystation.FieldError(f))
		return
	}
	a, err := s.Store.Acquire(r.Context(), store.AcquireRequest{
		Actor:     store.Actor{Name: u.Username, Tenant: u.TenantID, IP: clientIP(r)},
		Machine:   keystation.Machine{SN: req.SN, Model: req.Model},
		OSVersion: req.OSVersion,
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	msg := "a " + a.Edition + " key was assigned to this machine"
	if a.Reused {
		msg = "this machine already holds this key"
	}
	respond(w, keystation.EOK, msg, grantData(&a.Grant))
}

// Codes of a report's answer beyond OK.
const (
	CodeKeyReplaced = "KEY_REPLACED" // key fault: the key was burnt, data is a new key
	CodeKeyKept     = "KEY_KEPT"     // PC fault: fix the PC, data is the same key
	CodeDuplicate   = "DUPLICATE"    // already applied; data is the machine's key now
)

// handleReport answers POST /api/v1/keys/report.
func (s *Server) handleReport(w http.ResponseWriter, r *http.Request) {
	var req reportRequest
	if err := decodeJSON(w, r, &req, MaxBodyBytes); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.authenticate(r, req.credentials)
	if err != nil {
		s.error(w, r, err)
		return
	}
	rep, err := req.report()
	if err != nil {
		s.error(w, r, err)
		return
	}
	rep.Operator = u.Username
	res, err := s.Store.Report(r.Context(), rep, store.ReportOptions{
		Actor: store.Actor{Name: u.Username, Tenant: u.TenantID, IP: clientIP(r)},
	})
	if err != nil {
		// The failure may have been recorded though no next key can be given.
		s.errorWith(w, r, err, res.Failure)
		return
	}
	env := envelope{Code: keystation.EOK, Data: grantData(res.Next), Failure: res.Failure}
	switch res.Outcome {
	case store.OutcomeActivated:
		env.Message = "activation recorded"
	case store.OutcomeReplaced:
		env.Code, env.Message = CodeKeyReplaced, "the key was burnt; use the new key"
	case store.OutcomeKept:
		env.Code, env.Message = CodeKeyKept, "the PC or its network is at fault; fix it and try again with the same key"
		if res.Failure != nil {
			env.Message += ": " + res.Failure.Fix
		}
	case store.OutcomeDuplicate:
		env.Code, env.Message = CodeDuplicate, "this report was already applied"
	}
	writeJSON(w, http.StatusOK, env)
}

// report validates a report body and turns it into a domain report.
func (req reportRequest) report() (keystation.Report, error) {
	f := map[string]string{}
	if req.KeyID == 0 {
		f["keyId"] = "required"
	}
	machineFields(f, req.SN, req.Model, req.OSVersion)
	if req.ResultStatus == nil {
		f["resultStatus"] = "required (true or false)"
	}
	if req.ResultMessage == nil {
		f["resultMessage"] = "required"
	} else if len(*req.ResultMessage) > keystation.MaxMessageLen {
		f["resultMessage"] = "too long"
	}
	if len(req.ResultCode) > 64 {
		f["resultCode"] = "too long"
	}
	if req.ReportID != "" {
		if _, err := uuid.Parse(req.ReportID); err != nil {
			f["reportId"] = "must be a UUID"
		}
	}
	success := req.ResultStatus != nil && *req.ResultStatus
	if success {
		keystation.CheckText(f, "cpu", req.CPU, 256, true)
		if req.Memory == nil {
			f["memory"] = "required (an array, may be empty)"
		} else if len(req.Memory) > maxHardwareItems {
			f["memory"] = "too many entries"
		}
		if req.Disk == nil {
			f["disk"] = "required (an array, may be empty)"
		} else if len(req.Disk) > maxHardwareItems {
			f["disk"] = "too many entries"
		}
		for _, m := range req.Memory {
			if len(m.Speed) > 64 || len(m.Manufacturer) > 128 {
				f["memory"] = "entry fields too long"
			}
		}
		for _, d := range req.Disk {
			if len(d.InterfaceType) > 64 || len(d.Model) > 128 {
				f["disk"] = "entry fields too long"
			}
		}
	}
	if len(f) > 0 {
		return keystation.Report{}, keystation.FieldError(f)
	}
	rep := keystation.Report{
		ID:        req.ReportID,
		KeyID:     keystation.KeyID(req.KeyID),
		Machine:   keystation.Machine{SN: req.SN, Model: req.Model},
		OSVersion: req.OSVersion,
		Success:   success,
		Message:   *req.ResultMessage,
		Code:      req.ResultCode,
	}
	if success {
		hw := &keystation.Hardware{SerialNumber: req.SN, Model: req.Model, CPU: req.CPU, OS: keystation.OSInfo{Caption: req.OSVersion}}
		for _, m := range req.Memory {
			hw.Memory = append(hw.Memory, keystation.MemoryModule{ID: m.ID, Size: m.Size, Speed: string(m.Speed), Manufacturer: m.Manufacturer})
		}
		for _, d := range req.Disk {
			hw.Disks = append(hw.Disks, keystation.Disk{ID: d.ID, Size: d.Size, InterfaceType: d.InterfaceType, Model: d.Model})
		}
		rep.Hardware = hw
	}
	return rep, nil
}
