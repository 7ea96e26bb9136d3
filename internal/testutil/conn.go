package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Conn is one keep-alive HTTP/1.1 connection to the server, for one caller
// at a time: it writes each request itself and reads the answer with
// http.ReadResponse, without net/http's Transport (its connection pool and
// the two goroutines per connection it hands each request through). A load
// generator sharing the machine with the server then takes less of the CPU
// the server is measured on. It speaks the same HTTP as Client.
type Conn struct {
	c    *Client
	host string
	nc   net.Conn
	br   *bufio.Reader
	buf  []byte
	body []byte
}

// Dial returns a Conn to c's server; it connects on first use.
func (c *Client) Dial() *Conn {
	return &Conn{c: c, host: strings.TrimPrefix(c.BaseURL, "http://")}
}

// Close closes the connection.
func (k *Conn) Close() error {
	if k.nc == nil {
		return nil
	}
	err := k.nc.Close()
	k.nc, k.br = nil, nil
	return err
}

// Acquire is Client.Acquire over this connection.
func (k *Conn) Acquire(ctx context.Context, m Machine) (Answer, error) {
	k.body = k.c.acquireBody(k.body[:0], m)
	status, body, err := k.post(ctx, "/api/v1/keys/acquire", k.body)
	if err != nil {
		return Answer{}, err
	}
	return decodeAnswer(status, body)
}

// post sends one request and reads its answer, connecting first if need
// be. After an error the connection is closed (the next call dials again).
func (k *Conn) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	if k.nc == nil {
		var d net.Dialer
		nc, err := d.DialContext(ctx, "tcp", k.host)
		if err != nil {
			return 0, nil, err
		}
		k.nc, k.br = nc, bufio.NewReaderSize(nc, 4096)
	}
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	k.nc.SetDeadline(deadline)
	b := append(k.buf[:0], "POST "...)
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, k.host...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, body...)
	k.buf = b
	if _, err := k.nc.Write(b); err != nil {
		k.Close()
		return 0, nil, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		k.Close()
		return 0, nil, err
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err == nil && resp.Close {
		err = errors.New("the server closed the connection")
	}
	if err != nil {
		k.Close()
		if len(out) == 0 {
			return 0, nil, fmt.Errorf("read answer (status %d): %w", resp.StatusCode, err)
		}
	}
	return resp.StatusCode, out, nil
}
