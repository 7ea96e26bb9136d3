package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Client speaks the station key API (seed 000) of one sync server.
type Client struct {
	BaseURL string // "http://127.0.0.1:PORT"
	HTTP    *http.Client

	acquireURL string
	creds      []byte // `{"username":"…","password":"…"`
}

// NewClient returns a client for the server at addr ("HOST:PORT") signing in
// as username. Its transport keeps up to conns idle connections to the
// server, so that conns concurrent callers each reuse their own.
func NewClient(addr, username, password string, conns int) *Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	u, _ := json.Marshal(username)
	p, _ := json.Marshal(password)
	creds := append(append(append(append([]byte(`{"username":`), u...), `,"password":`...), p...), ',')
	base := "http://" + addr
	return &Client{
		BaseURL:    base,
		HTTP:       &http.Client{Transport: tr, Timeout: 10 * time.Second},
		acquireURL: base + "/api/v1/keys/acquire",
		creds:      creds,
	}
}

// CloseIdle closes the client's idle connections.
func (c *Client) CloseIdle() { c.HTTP.CloseIdleConnections() }

// Machine is a PC as the station key API names it.
type Machine struct {
	SN, Model, OSVersion string
}

// Answer is the server's answer to an acquire: the HTTP status, the
// envelope's code and message, and seed 000's {keyId, key} when given.
type Answer struct {
	Status  int
	Code    string
	Message string
	KeyID   int64
	Key     string
}

// OK reports whether the answer carries a key.
func (a Answer) OK() bool {
	return a.Status == http.StatusOK && a.Code == "OK" && a.KeyID != 0 && a.Key != ""
}

func (a Answer) String() string {
	if a.OK() {
		return fmt.Sprintf("%d %s keyId %d", a.Status, a.Code, a.KeyID)
	}
	return fmt.Sprintf("%d %s: %s", a.Status, a.Code, a.Message)
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Acquire asks for the key of machine m. An error means no answer was read
// (the server may still have acted on the request); any HTTP answer, error
// statuses included, is returned as an Answer.
func (c *Client) Acquire(ctx context.Context, m Machine) (Answer, error) {
	body := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(body)
	body.Reset()
	body.Write(c.acquireBody(body.AvailableBuffer(), m))

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.acquireURL, bytes.NewReader(body.Bytes()))
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	out := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(out)
	out.Reset()
	if _, err := out.ReadFrom(io.LimitReader(resp.Body, 1<<20)); err != nil {
		return Answer{}, fmt.Errorf("read answer (status %d): %w", resp.StatusCode, err)
	}
	return decodeAnswer(resp.StatusCode, out.Bytes())
}

// acquireBody appends the JSON body of an acquire for machine m to b.
func (c *Client) acquireBody(b []byte, m Machine) []byte {
	b = append(b, c.creds...)
	b = append(b, `"sn":`...)
	b = appendJSONString(b, m.SN)
	b = append(b, `,"model":`...)
	b = appendJSONString(b, m.Model)
	b = append(b, `,"osVersion":`...)
	b = appendJSONString(b, m.OSVersion)
	return append(b, '}')
}

// decodeAnswer decodes the server's envelope around seed 000's answer.
func decodeAnswer(status int, body []byte) (Answer, error) {
	var env struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Data    *struct {
			KeyID int64  `json:"keyId"`
			Key   string `json:"key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return Answer{}, fmt.Errorf("decode answer (status %d): %w: %q", status, err, body)
	}
	a := Answer{Status: status, Code: env.Code, Message: env.Message}
	if env.Data != nil {
		a.KeyID, a.Key = env.Data.KeyID, env.Data.Key
	}
	return a, nil
}

// appendJSONString appends s as a JSON string. strconv's Go quoting is valid
// JSON for printable ASCII; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			j, _ := json.Marshal(s)
			return append(b, j...)
		}
	}
	return strconv.AppendQuote(b, s)
}

// Healthy reports whether GET /healthz answers 200.
func (c *Client) Healthy(ctx context.Context) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
