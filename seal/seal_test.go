package seal_test

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"keystation/seal"
)

func TestLoadCreatesKeyFileOnce(t *testing.T) {
	dir := t.TempDir()
	b1, created, err := seal.Load(dir, "")
	if err != nil || !created {
		t.Fatalf("first Load: created=%v err=%v", created, err)
	}
	st, err := os.Stat(filepath.Join(dir, seal.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	b2, created, err := seal.Load(dir, "")
	if err != nil || created {
		t.Fatalf("second Load: created=%v err=%v", created, err)
	}
	ct := b1.SealString("W7PY2-N837X-89C72-4PPXP-D69QR", "key")
	got, err := b2.OpenString(ct, "key")
	if err != nil || got != "W7PY2-N837X-89C72-4PPXP-D69QR" {
		t.Fatalf("round trip across loads: %q %v", got, err)
	}
	if b1.Check() != b2.Check() {
		t.Fatal("check values differ for the same key")
	}
}

func TestLoadFromEnv(t *testing.T) {
	k := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	tests := []struct {
		name    string
		env     string
		wantErr bool
	}{
		{"valid", k, false},
		{"not base64", "%%%", true},
		{"short", base64.StdEncoding.EncodeToString([]byte("short")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			_, created, err := seal.Load(dir, tt.env)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if created {
				t.Fatal("a key file was created although the key came from the environment")
			}
			if _, err := os.Stat(filepath.Join(dir, seal.KeyFileName)); err == nil {
				t.Fatal("key file exists")
			}
		})
	}
}

func TestSealBindsPurposeAndDetectsTampering(t *testing.T) {
	b, err := seal.New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := seal.New(bytes.Repeat([]byte{2}, 32))
	ct := b.SealString("secret", "a")
	if bytes.Contains(ct, []byte("secret")) {
		t.Fatal("ciphertext contains the plain text")
	}
	if _, err := b.Open(ct, "b"); err == nil {
		t.Fatal("opened with the wrong purpose")
	}
	if _, err := other.Open(ct, "a"); err == nil {
		t.Fatal("opened with the wrong key")
	}
	ct[len(ct)-1] ^= 1
	if _, err := b.Open(ct, "a"); err == nil {
		t.Fatal("opened a tampered value")
	}
	if _, err := b.Open([]byte{1, 2}, "a"); err == nil {
		t.Fatal("opened a truncated value")
	}
	if b.Hash("key", "x") == b.Hash("sn", "x") {
		t.Fatal("hash namespaces collide")
	}
	if b.Hash("key", "x") == other.Hash("key", "x") {
		t.Fatal("hash does not depend on the key")
	}
}

func TestDamagedKeyFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, seal.KeyFileName), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := seal.Load(dir, ""); err == nil {
		t.Fatal("loaded a damaged key file")
	}
}

// TestHashStable pins a keyed hash: stores look rows up by these hashes, so
// a change would lose every row hashed before it. Concurrent callers, which
// share the Box's HMAC states, all get it.
func TestHashStable(t *testing.T) {
	b, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	const want = "49187ad6dcfe5a8acdfb81b5a4c799876d234cdf4f5a1b64c89b089a4313e82a"
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				if got := b.Hash("key", "BCDFG-HJKMN-PQRTV-WXY23-46789"); got != want {
					errs <- got
					return
				}
				b.Hash("sn", "other value")
			}
		})
	}
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Fatalf("Hash = %s, want %s", got, want)
	}
}
