package store_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"keystation"
	"keystation/store"
)

var testBy = store.AuditBy{User: "tester", Role: store.RoleSuperAdmin, IP: "192.0.2.7", Via: store.ViaAPI}

// bindN activates a key on n machines (serials prefix0..) with hardware
// and returns their binding ids and keys.
func (f *fixture) bindN(prefix string, n int, mdl string) ([]int64, []keystation.KeyID) {
	f.t.Helper()
	var ids []int64
	var keys []keystation.KeyID
	for i := range n {
		sn := prefix + string(rune('A'+i))
		m := keystation.Machine{SN: sn, Model: mdl}
		a, err := f.s.Acquire(ctx, store.AcquireRequest{Actor: store.Actor{Name: "op"}, Machine: m, OSVersion: osPro})
		if err != nil {
			f.t.Fatal(err)
		}
		hw := &keystation.Hardware{CPU: "Intel Core i5", UUID: "UUID-SECRET-" + sn, Baseboard: "BOARD-X",
			Disks: []keystation.Disk{{Size: 256 << 30, InterfaceType: "NVMe", Model: "DISKMODEL-SECRET", Serial: "DISKSERIAL-" + sn}},
			MACs:  []string{"0A:0B:0C:0D:0E:" + string(rune('A'+i)) + "F"}}
		if _, err := f.s.Report(ctx, keystation.Report{KeyID: a.KeyID, Machine: m, OSVersion: osPro, Success: true,
			Message: "ok", Hardware: hw}, store.ReportOptions{Actor: store.Actor{Name: "op"}}); err != nil {
			f.t.Fatal(err)
		}
		id, err := f.s.MachineIDByKey(ctx, a.KeyID)
		if err != nil {
			f.t.Fatal(err)
		}
		ids, keys = append(ids, id), append(keys, a.KeyID)
	}
	return ids, keys
}

// TestAdminDataAtRest: after everything the admin API writes (the model
// search index, a block with its audit entry, revokes, sign-ins, the token
// secret), the database file and its WAL still hold no serial number, model,
// hardware detail, product key or token secret in the clear.
func TestAdminDataAtRest(t *testing.T) {
	f := newFixture(t, store.Options{})
	keys := f.importN("pro", 6)
	const mdl = "SECRETMODEL Z9"
	ids, kids := f.bindN("PLAINSN-", 3, mdl)
	list, n, err := f.s.MachineBindings(ctx, store.BindingFilter{Search: "secretmodel"})
	if err != nil || n != 3 || len(list) != 3 {
		t.Fatalf("search by model: %d %v", n, err)
	}
	if err := f.s.BlockMachineBinding(ctx, 0, ids[0], "", testBy); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RevokeKey(ctx, 0, kids[1], "leaked", testBy); err != nil {
		t.Fatal(err)
	}
	if err := f.s.RecordSignIn(ctx, "tester", 1, true, testBy); err != nil {
		t.Fatal(err)
	}
	secret, err := f.s.TokenSecret(ctx)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{mdl, strings.ToUpper(mdl), "PLAINSN-A", "PLAINSN-B", "PLAINSN-C", "UUID-SECRET", "DISKMODEL-SECRET",
		"DISKSERIAL-", "0A:0B:0C:0D:0E", base64.StdEncoding.EncodeToString(secret), string(secret)}
	for _, k := range keys {
		secrets = append(secrets, k.Plain(), strings.ReplaceAll(k.Plain(), "-", ""))
	}
	scan := func(when string) {
		t.Helper()
		for _, suffix := range []string{"", "-wal"} {
			data, err := os.ReadFile(f.path + suffix)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range secrets {
				if bytes.Contains(data, []byte(s)) || bytes.Contains(data, utf16le(s)) {
					t.Errorf("%s: db%s holds %q in the clear", when, suffix, s)
				}
			}
		}
	}
	scan("open")
	f.raw.Close()
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	scan("closed")
}

// TestAuditChain: every audited change is chained; any change, removal or
// truncation of the log is found, naming where it breaks.
func TestAuditChain(t *testing.T) {
	cases := []struct {
		name    string
		tamper  []string // SQL run on the raw file
		ok      bool
		broken  int64
		problem string
	}{
		{name: "intact", ok: true},
		{name: "detail changed", tamper: []string{`DROP TRIGGER audit_log_no_update`,
			`UPDATE audit_log SET detail = '{"reason":"nothing to see"}' WHERE id = 3`}, broken: 3, problem: "was changed"},
		{name: "actor changed", tamper: []string{`DROP TRIGGER audit_log_no_update`,
			`UPDATE audit_log SET actor = 'someone else' WHERE id = 2`}, broken: 2, problem: "was changed"},
		{name: "entry removed", tamper: []string{`DROP TRIGGER audit_log_no_delete`, `DELETE FROM audit_log WHERE id = 4`},
			broken: 5, problem: "missing"},
		{name: "last entries removed", tamper: []string{`DROP TRIGGER audit_log_no_delete`, `DELETE FROM audit_log WHERE id >= 5`},
			broken: 5, problem: "removed"},
		{name: "entry rehashed alone", tamper: []string{`DROP TRIGGER audit_log_no_update`,
			`UPDATE audit_log SET prev_hash = '` + strings.Repeat("1", 64) + `' WHERE id = 3`}, broken: 3, problem: "previous hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			f.importN("home", 2) // entry 1: key.import
			hash := "$2a$04$abcdefghijklmnopqrstuuO2wPcbCSu9rHS3hy3XJ9ZQTdTR3RDVK"
			if _, err := f.s.CreateUserBy(ctx, store.User{Username: "alice", PasswordHash: hash, Role: store.RoleOperator}, testBy); err != nil {
				t.Fatal(err) // 2
			}
			if err := f.s.SetDisabledBy(ctx, "alice", true, testBy); err != nil {
				t.Fatal(err) // 3
			}
			if _, err := f.s.CreateTenant(ctx, "north", testBy); err != nil {
				t.Fatal(err) // 4
			}
			if err := f.s.RecordSignIn(ctx, "alice", 1, false, testBy); err != nil {
				t.Fatal(err) // 5
			}
			if err := f.s.SetPasswordBy(ctx, "alice", hash, testBy); err != nil {
				t.Fatal(err) // 6
			}
			for _, q := range c.tamper {
				f.exec(q)
			}
			got, err := f.s.VerifyAudit(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.OK != c.ok || got.BrokenAt != c.broken || !strings.Contains(got.Problem, c.problem) {
				t.Fatalf("VerifyAudit = %+v, want ok %v broken at %d (%q)", got, c.ok, c.broken, c.problem)
			}
			if c.ok && got.Entries != 6 {
				t.Errorf("entries %d, want 6", got.Entries)
			}
		})
	}
	t.Run("append-only", func(t *testing.T) {
		f := newFixture(t, store.Options{})
		f.importN("home", 1)
		for _, q := range []string{`UPDATE audit_log SET actor = 'x'`, `DELETE FROM audit_log`} {
			if _, err := f.raw.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
}

// TestSupervisorKeyChanges: revoke and return follow the key lifecycle,
// write history and audit in the same transaction, and never reach into
// another tenant.
func TestSupervisorKeyChanges(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 4)
	f.importN("pro", 1)
	_, activated := f.bindN("ACT-", 1, "PC")
	assigned := f.mustAcquire("ASSIGNED-1", osHome).KeyID
	failed := f.mustAcquire("FAILED-1", osHome).KeyID
	if _, err := f.report(failure(failed, "FAILED-1", osHome, "0xC004C003", "blocked key")); err != nil {
		t.Fatal(err)
	}
	other, err := f.s.CreateTenant(ctx, "other", testBy)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		ret    bool
		tenant int64
		key    keystation.KeyID
		note   string
		code   string
		state  keystation.KeyState
	}{
		{"return an activated key is refused", true, 0, activated[0], "why", keystation.EILLEGALSTATE, keystation.StateActivated},
		{"return without a reason", true, 0, failed, "", keystation.EINVALID, keystation.StateFailed},
		{"another tenant's key is not found", true, other.ID, failed, "x", keystation.ENOTFOUND, keystation.StateFailed},
		{"return a failed key", true, 1, failed, "checked: the PC was at fault", "", keystation.StateAvailable},
		{"return an assigned key", true, 0, assigned, "PC scrapped", "", keystation.StateAvailable},
		{"revoke an activated key", false, 0, activated[0], "", "", keystation.StateRevoked},
		{"revoke twice is refused", false, 0, activated[0], "", keystation.EILLEGALSTATE, keystation.StateRevoked},
		{"unknown key", false, 0, 1234567890123, "", keystation.ENOTFOUND, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			if c.ret {
				err = f.s.ReturnKey(ctx, c.tenant, c.key, c.note, testBy)
			} else {
				err = f.s.RevokeKey(ctx, c.tenant, c.key, c.note, testBy)
			}
			if keystation.ErrorCode(err) != c.code {
				t.Fatalf("error %v, want code %q", err, c.code)
			}
			if c.state == "" {
				return
			}
			ki := f.keyInfo(c.key)
			if ki.State != c.state {
				t.Fatalf("state %s, want %s", ki.State, c.state)
			}
			if c.code == "" {
				last := ki.History[len(ki.History)-1]
				if last.To != c.state || last.Actor != "tester" {
					t.Errorf("last history %+v", last)
				}
				if c.ret && ki.MachineID != 0 {
					t.Errorf("returned key still on machine %d", ki.MachineID)
				}
				es, _, err := f.s.AuditEntries(ctx, store.AuditFilter{ObjectType: "key", ObjectID: c.key.String()})
				if err != nil || len(es) == 0 {
					t.Fatalf("no audit entry: %v", err)
				}
			}
		})
	}
	f.checkHistory()
}

// TestBindingStatusIsComputed: inactive is a binding not seen for the
// configured time; blocked wins.
func TestBindingStatusIsComputed(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("pro", 3)
	ids, _ := f.bindN("ST-", 3, "PC")
	now := time.Now()
	if err := f.s.SetMachineSeen(ctx, ids[1], now.Add(-100*24*time.Hour), now.Add(-10*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetMachineSeen(ctx, ids[2], now.Add(-100*24*time.Hour), now.Add(-10*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.s.BlockMachineBinding(ctx, 0, ids[2], "x", testBy); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		after time.Duration
		want  map[string]int
	}{
		{"default 30 days", 0, map[string]int{"active": 2, "inactive": 0, "blocked": 1}},
		{"7 days", 7 * 24 * time.Hour, map[string]int{"active": 1, "inactive": 1, "blocked": 1}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for status, want := range c.want {
				_, n, err := f.s.MachineBindings(ctx, store.BindingFilter{Status: status, InactiveAfter: c.after})
				if err != nil || n != want {
					t.Errorf("%s: %d (%v), want %d", status, n, err, want)
				}
			}
			b, err := f.s.MachineBinding(ctx, 0, ids[1], c.after)
			if err != nil {
				t.Fatal(err)
			}
			if wantSt := map[bool]string{true: "inactive", false: "active"}[c.after > 0]; b.Status != wantSt {
				t.Errorf("status %s, want %s", b.Status, wantSt)
			}
		})
	}
}
