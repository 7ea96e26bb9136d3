// Package syncfile carries the sync protocol over a USB stick for air-gapped
// stations (DESIGN.md; the model is seed 003's offline request string and
// upgrade string). A station writes its SyncRequest to a request file; the
// server (an operator with the file) answers with a response file; the station
// reads it back. Both files are sealed with AES-256-GCM under a key derived
// from the station's own credential: nobody else can read them (the response
// carries product keys) or forge them, and each response is bound to the
// request it answers.
package syncfile

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"keystation"
)

// File formats.
const (
	RequestFormat  = "keystation-sync-request/1"
	ResponseFormat = "keystation-sync-response/1"
)

// MaxFileBytes bounds a sync file.
const MaxFileBytes = 32 << 20

// Key is the file key of one station.
type Key []byte

// DeriveKey derives a station's file key from the secret part of its
// credential ("ks1.<id>.<secret>"); the server keeps it sealed from enrolment.
func DeriveKey(credential string) (Key, int64, error) {
	parts := strings.SplitN(credential, ".", 3)
	if len(parts) != 3 {
		return nil, 0, fmt.Errorf("not a station credential")
	}
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("not a station credential")
	}
	return DeriveKeyFromSecret(parts[2]), id, nil
}

// DeriveKeyFromSecret derives the file key from a credential's secret.
func DeriveKeyFromSecret(secret string) Key {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte("keystation/sync-file/v1"))
	return h.Sum(nil)
}

// envelope is the file on the stick: everything but the format and the
// station is sealed.
type envelope struct {
	Format    string `json:"format"`
	StationID int64  `json:"stationId"`
	// Answers is the fingerprint of the request a response answers.
	Answers string `json:"answers,omitempty"`
	Sealed  string `json:"sealed"` // base64(nonce || AES-GCM ciphertext)
}

func aad(e envelope) []byte {
	return []byte(e.Format + "\x00" + strconv.FormatInt(e.StationID, 10) + "\x00" + e.Answers)
}

func seal(k Key, e envelope, plain []byte) (envelope, error) {
	block, err := aes.NewCipher(k)
	if err != nil {
		return e, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return e, err
	}
	nonce := make([]byte, g.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return e, err
	}
	e.Sealed = base64.StdEncoding.EncodeToString(g.Seal(nonce, nonce, plain, aad(e)))
	return e, nil
}

func open(k Key, e envelope) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(e.Sealed)
	if err != nil {
		return nil, keystation.Errorf(keystation.EINVALID, "the sync file is damaged (not base64)")
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if len(raw) < g.NonceSize()+g.Overhead() {
		return nil, keystation.Errorf(keystation.EINVALID, "the sync file is damaged (too short)")
	}
	p, err := g.Open(nil, raw[:g.NonceSize()], raw[g.NonceSize():], aad(e))
	if err != nil {
		return nil, keystation.Errorf(keystation.EUNAUTHORIZED, "the sync file was not made for this station or was altered")
	}
	return p, nil
}

// Fingerprint identifies a request file's content, for binding a response.
func Fingerprint(requestFile []byte) string {
	s := sha256.Sum256(requestFile)
	return hex.EncodeToString(s[:16])
}

// WriteRequest seals a station's SyncRequest into a request file.
func WriteRequest(w io.Writer, k Key, station int64, req keystation.SyncRequest) error {
	return write(w, k, envelope{Format: RequestFormat, StationID: station}, req)
}

// WriteResponse seals the server's answer to the request file requestFile.
func WriteResponse(w io.Writer, k Key, station int64, requestFile []byte, resp keystation.SyncResponse) error {
	return write(w, k, envelope{Format: ResponseFormat, StationID: station, Answers: Fingerprint(requestFile)}, resp)
}

func write(w io.Writer, k Key, e envelope, v any) error {
	plain, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if e, err = seal(k, e, plain); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(e)
}

// Peek reads a file's format and station without opening it, so the server
// can look up the station's key.
func Peek(file []byte) (format string, station int64, err error) {
	e, err := parse(file)
	return e.Format, e.StationID, err
}

func parse(file []byte) (envelope, error) {
	var e envelope
	if len(file) > MaxFileBytes {
		return e, keystation.Errorf(keystation.ETOOLARGE, "the sync file is larger than %d bytes", MaxFileBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(file))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, keystation.Errorf(keystation.EINVALID, "not a KeyStation sync file")
	}
	if e.Format != RequestFormat && e.Format != ResponseFormat {
		return e, keystation.Errorf(keystation.EINVALID, "not a KeyStation sync file (format %q)", e.Format)
	}
	if e.StationID <= 0 {
		return e, keystation.Errorf(keystation.EINVALID, "the sync file names no station")
	}
	return e, nil
}

// ReadRequest opens a request file sealed with k.
func ReadRequest(file []byte, k Key) (keystation.SyncRequest, error) {
	var req keystation.SyncRequest
	e, err := parse(file)
	if err != nil {
		return req, err
	}
	if e.Format != RequestFormat {
		return req, keystation.Errorf(keystation.EINVALID, "this is a response file, not a request file")
	}
	p, err := open(k, e)
	if err != nil {
		return req, err
	}
	if err := json.Unmarshal(p, &req); err != nil {
		return req, keystation.Errorf(keystation.EINVALID, "the sync request inside the file is malformed")
	}
	return req, nil
}

// ReadResponse opens a response file and checks it answers requestFile (nil
// skips that check, e.g. when the request file is gone).
func ReadResponse(file []byte, k Key, station int64, requestFile []byte) (keystation.SyncResponse, error) {
	var resp keystation.SyncResponse
	e, err := parse(file)
	if err != nil {
		return resp, err
	}
	if e.Format != ResponseFormat {
		return resp, keystation.Errorf(keystation.EINVALID, "this is a request file, not a response file")
	}
	if e.StationID != station {
		return resp, keystation.Errorf(keystation.EUNAUTHORIZED, "the response file is for station %d, not this one (%d)", e.StationID, station)
	}
	if requestFile != nil && e.Answers != Fingerprint(requestFile) {
		return resp, keystation.Errorf(keystation.ECONFLICT, "the response file answers another request file; take the newest request to the server again")
	}
	p, err := open(k, e)
	if err != nil {
		return resp, err
	}
	if err := json.Unmarshal(p, &resp); err != nil {
		return resp, keystation.Errorf(keystation.EINVALID, "the sync response inside the file is malformed")
	}
	return resp, nil
}
