package queue

import (
	"bytes"
	"context"
	"fmt"

	"keystation"
	"keystation/syncfile"
)

// Air-gapped sync: the same round trip as SyncOnce, carried on a USB stick
// as sealed files (package syncfile). ExportRequest writes the station's next
// request; an operator takes it to the server (syncserver stations
// sync-file, or POST /api/v1/sync/file) and brings back the response, which
// ImportResponse applies. A response must answer the last exported request.

// ExportRequest builds the next sync request and returns it as a sealed
// request file.
func ExportRequest(ctx context.Context, out Outbox) ([]byte, keystation.SyncRequest, error) {
	_, cred, err := out.SyncEndpoint(ctx)
	if err != nil {
		return nil, keystation.SyncRequest{}, err
	}
	k, station, err := syncfile.DeriveKey(cred)
	if err != nil {
		return nil, keystation.SyncRequest{}, fmt.Errorf("this station has no usable credential: enrol it first")
	}
	req, err := out.NextSync(ctx, keystation.MaxSyncReports, 0)
	if err != nil {
		return nil, req, err
	}
	var b bytes.Buffer
	if err := syncfile.WriteRequest(&b, k, station, req); err != nil {
		return nil, req, err
	}
	return b.Bytes(), req, nil
}

// ImportResponse applies the server's response file to the request file it
// answers (the one ExportRequest returned), durably, like an online round
// trip. The clock skew cannot be measured through a USB stick: the last
// online measurement stays.
func ImportResponse(ctx context.Context, out Outbox, request, response []byte) (Summary, error) {
	var sum Summary
	_, cred, err := out.SyncEndpoint(ctx)
	if err != nil {
		return sum, err
	}
	k, station, err := syncfile.DeriveKey(cred)
	if err != nil {
		return sum, fmt.Errorf("this station has no usable credential: enrol it first")
	}
	req, err := syncfile.ReadRequest(request, k)
	if err != nil {
		return sum, fmt.Errorf("the last exported request: %w", err)
	}
	resp, err := syncfile.ReadResponse(response, k, station, request)
	if err != nil {
		return sum, err
	}
	if err := out.ApplySync(ctx, &req, &resp, 0); err != nil {
		return sum, fmt.Errorf("record the server's answer: %w", err)
	}
	sum.Rounds = 1
	sum.add(&req, &resp)
	return sum, nil
}
