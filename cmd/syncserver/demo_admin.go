package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"keystation"
	"keystation/store"
)

// Demo data of the supervisors' admin API: a super-admin, a second tenant
// with its tenant-admin, and a few dozen machine bindings with realistic
// hardware in both tenants. Everything is found again by name on a second
// run, so running demo twice changes nothing but the printed passwords'
// hashes.
const (
	demoAdmin          = "demo-admin"
	demoTenantAdmin    = "demo-tenant-admin"
	demoTenantName     = "Demo Factory 2"
	demoBindingsMain   = 24
	demoBindingsTenant = 12
	demoSpareKeys      = 5 // available keys left in each demo binding pool
)

// TenantCredential is a tenant-admin's username, password and tenant.
type TenantCredential struct {
	Username string `json:"username"`
	Password string `json:"password"`
	TenantID int64  `json:"tenantId"`
}

func ensureDemoAdmin(ctx context.Context, st *store.Server, creds *DemoCredentials, log *slog.Logger) error {
	if creds.Admin == nil || creds.Admin.Password == "" {
		creds.Admin = &Credential{Username: demoAdmin, Password: randomPassword(20)}
	}
	if err := ensureUser(ctx, st, *creds.Admin, store.RoleSuperAdmin, 1); err != nil {
		return err
	}
	by := store.AuditBy{User: "demo", Via: store.ViaDemo}
	t, err := st.TenantByName(ctx, demoTenantName)
	if keystation.ErrorCode(err) == keystation.ENOTFOUND {
		t, err = st.CreateTenant(ctx, demoTenantName, by)
	}
	if err != nil {
		return err
	}
	if creds.TenantAdmin == nil || creds.TenantAdmin.Password == "" {
		creds.TenantAdmin = &TenantCredential{Username: demoTenantAdmin, Password: randomPassword(20)}
	}
	creds.TenantAdmin.TenantID = t.ID
	if err := ensureUser(ctx, st, Credential{Username: creds.TenantAdmin.Username, Password: creds.TenantAdmin.Password},
		store.RoleTenantAdmin, t.ID); err != nil {
		return err
	}
	if err := ensureDemoPools(ctx, st, by); err != nil {
		return err
	}
	// Like every pool of the default tenant, the demo pools get demo's
	// generated keys (so that a second demo run finds them full).
	if err := fillDemoPools(ctx, st, log, by, isDemoPool); err != nil {
		return err
	}
	n1, err := demoBindings(ctx, st, 1, "CN1", demoBindingsMain)
	if err != nil {
		return err
	}
	n2, err := demoBindings(ctx, st, t.ID, "VN2", demoBindingsTenant)
	if err != nil {
		return err
	}
	log.Info("demo machine bindings", "tenant1", n1, "tenant"+fmt.Sprint(t.ID), n2)
	return nil
}

type demoPC struct {
	manufacturer, model, board, bios, cpu, gpu string
	memGB                                      []uint64
	disks                                      []keystation.Disk
	os                                         keystation.OSInfo
}

const gb = 1 << 30

var demoPCs = []demoPC{
	{"LENOVO", "ThinkCentre M70q Gen 3", "LENOVO 3330", "LENOVO M3CKT3AA", "12th Gen Intel(R) Core(TM) i5-12400T", "Intel(R) UHD Graphics 730",
		[]uint64{8, 8}, []keystation.Disk{{Size: 512 * gb, InterfaceType: "NVMe", Model: "SAMSUNG MZVL2512HCJQ"}},
		keystation.OSInfo{Caption: "Microsoft Windows 11 Pro for Workstations", Version: "23H2", Build: "22631.3296", Architecture: "x64", EditionID: "ProfessionalWorkstation"}},
	{"HP", "HP EliteDesk 800 G6 Desktop Mini", "HP 8715", "HP S21 Ver. 02.17.00", "Intel(R) Core(TM) i7-10700T CPU @ 2.00GHz", "Intel(R) UHD Graphics 630",
		[]uint64{16, 16}, []keystation.Disk{{Size: 1024 * gb, InterfaceType: "NVMe", Model: "KIOXIA KXG60ZNV1T02"}},
		keystation.OSInfo{Caption: "Microsoft Windows 11 Education", Version: "22H2", Build: "22621.2428", Architecture: "x64", EditionID: "Education"}},
	{"Dell Inc.", "OptiPlex 7090", "Dell Inc. 0K0G7R", "Dell Inc. 1.21.0", "11th Gen Intel(R) Core(TM) i7-11700 @ 2.50GHz", "Intel(R) UHD Graphics 750",
		[]uint64{16}, []keystation.Disk{{Size: 256 * gb, InterfaceType: "NVMe", Model: "PC SN530 NVMe WDC 256GB"}, {Size: 1024 * gb, InterfaceType: "SATA", Model: "ST1000DM010-2EP102"}},
		keystation.OSInfo{Caption: "Microsoft Windows 10 Pro for Workstations", Version: "22H2", Build: "19045.4170", Architecture: "x64", EditionID: "ProfessionalWorkstation"}},
	{"ASUSTeK COMPUTER INC.", "VivoBook 15 X1502ZA", "ASUSTeK X1502ZA", "American Megatrends International, LLC. X1502ZA.306", "12th Gen Intel(R) Core(TM) i5-1235U", "Intel(R) Iris(R) Xe Graphics",
		[]uint64{8}, []keystation.Disk{{Size: 512 * gb, InterfaceType: "NVMe", Model: "Micron 2450 512GB"}},
		keystation.OSInfo{Caption: "Microsoft Windows 11 Education", Version: "23H2", Build: "22631.3155", Architecture: "x64", EditionID: "Education"}},
	{"Acer", "Aspire TC-1780", "Acer Aspire TC-1780", "Insyde Corp. R01-A2", "13th Gen Intel(R) Core(TM) i5-13400", "Intel(R) UHD Graphics 730",
		[]uint64{16}, []keystation.Disk{{Size: 512 * gb, InterfaceType: "NVMe", Model: "WD PC SN740 512GB"}, {Size: 1024 * gb, InterfaceType: "SATA", Model: "TOSHIBA DT01ACA100"}},
		keystation.OSInfo{Caption: "Microsoft Windows 11 Education", Version: "23H2", Build: "22631.3447", Architecture: "x64", EditionID: "Education"}},
	{"Micro-Star International Co., Ltd.", "MS-7D43", "MSI PRO B660M-A DDR4", "American Megatrends International, LLC. 1.B0", "AMD Ryzen 7 5700G with Radeon Graphics", "AMD Radeon(TM) Graphics",
		[]uint64{16, 16}, []keystation.Disk{{Size: 1024 * gb, InterfaceType: "NVMe", Model: "CT1000P3SSD8"}},
		keystation.OSInfo{Caption: "Microsoft Windows 11 Pro for Workstations", Version: "23H2", Build: "22631.3593", Architecture: "x64", EditionID: "ProfessionalWorkstation"}},
}

// demoPools are the pools of the demo bindings: supervisor-added editions,
// so that the Home and Pro pools keep only the keys demo generates for them.
var demoPools = []keystation.Edition{
	{Slug: "pro-workstations", Name: "Pro for Workstations", Patterns: []string{"pro for workstations"}, LowStock: 10},
	{Slug: "education", Name: "Education", Patterns: []string{"education"}, LowStock: 10},
}

func isDemoPool(slug string) bool {
	for _, e := range demoPools {
		if e.Slug == slug {
			return true
		}
	}
	return false
}

func ensureDemoPools(ctx context.Context, st *store.Server, by store.AuditBy) error {
	eds, err := st.Editions(ctx)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, e := range eds {
		have[e.Slug] = true
	}
	for _, e := range demoPools {
		if !have[e.Slug] {
			e.Patterns = append([]string(nil), e.Patterns...)
			if err := st.CreatePool(ctx, e, by); err != nil {
				return err
			}
		}
	}
	return nil
}

// demoBindings activates n demo machines in tenant (serials prefix0004200…),
// each with its hardware, and ages some of them so the list shows active and
// inactive bindings. Machines already bound are left as they are; keys are
// imported for the new ones only (plus a few spare on the first run).
func demoBindings(ctx context.Context, st *store.Server, tenant int64, prefix string, n int) (int, error) {
	type todo struct {
		i  int
		pc demoPC
		m  keystation.Machine
	}
	var missing []todo
	need := map[string]int{}
	for i := range n {
		pc := demoPCs[i%len(demoPCs)]
		m := keystation.Machine{SN: fmt.Sprintf("%s%07d", prefix, 4200+i*37), Model: pc.model}
		_, found, err := st.MachineBindings(ctx, store.BindingFilter{Tenant: tenant, Search: m.ID(), Limit: 1})
		if err != nil {
			return 0, err
		}
		if found > 0 {
			continue
		}
		ed, err := st.MatchEdition(ctx, pc.os.OSVersion())
		if err != nil {
			return 0, err
		}
		missing = append(missing, todo{i, pc, m})
		need[ed.Slug]++
	}
	if len(missing) == 0 {
		return 0, nil
	}
	counts, err := st.PoolCounts(ctx, tenant)
	if err != nil {
		return 0, err
	}
	for _, c := range counts {
		k := need[c.Edition]
		if k == 0 {
			continue
		}
		if avail := c.States[keystation.StateAvailable]; avail >= k {
			continue
		} else {
			k += demoSpareKeys - avail
		}
		entries := make([]store.ImportEntry, k)
		for j := range entries {
			entries[j] = store.ImportEntry{Line: j + 1, Key: randomKey(), Edition: c.Edition}
		}
		if _, err := st.ImportKeys(ctx, entries, store.ImportOptions{Source: demoSourcePrefix, Tenant: tenant, Actor: "demo",
			Demo: true, By: store.AuditBy{User: "demo", Via: store.ViaDemo}}); err != nil {
			return 0, err
		}
	}
	now := time.Now()
	for _, td := range missing {
		i, pc, m := td.i, td.pc, td.m
		actor := store.Actor{Name: "demo", Tenant: tenant, IP: fmt.Sprintf("10.%d.%d.%d", tenant, 20+i/200, 10+i%200)}
		a, err := st.Acquire(ctx, store.AcquireRequest{Actor: actor, Machine: m, OSVersion: pc.os.OSVersion()})
		if err != nil {
			return 0, fmt.Errorf("demo machine %d: %w", i+1, err)
		}
		hw := &keystation.Hardware{SerialNumber: m.SN, Model: m.Model, Manufacturer: pc.manufacturer, Baseboard: pc.board,
			BIOS: pc.bios, CPU: pc.cpu, Graphics: pc.gpu, OS: pc.os,
			UUID: fmt.Sprintf("4C4C4544-%04d-4B10-8052-%012d", tenant, 100000+i)}
		for j, g := range pc.memGB {
			hw.Memory = append(hw.Memory, keystation.MemoryModule{ID: j, Size: g * gb, Speed: "3200", Manufacturer: "Samsung"})
		}
		for j, d := range pc.disks {
			d.ID, d.Serial = j, fmt.Sprintf("S%sNX0R%06d", prefix, i*10+j)
			hw.Disks = append(hw.Disks, d)
		}
		if _, err := st.Report(ctx, keystation.Report{KeyID: a.KeyID, Machine: m, OSVersion: pc.os.OSVersion(), Success: true,
			Message: "Product activated successfully.", Hardware: hw, Operator: "demo"}, store.ReportOptions{Actor: actor}); err != nil {
			return 0, fmt.Errorf("demo machine %d: %w", i+1, err)
		}
		id, err := st.MachineIDByKey(ctx, a.KeyID)
		if err != nil {
			return 0, err
		}
		// Spread first/last seen over the last 90 days; every fourth binding
		// has not been seen for more than 30 days (inactive).
		first := now.Add(-time.Duration(90-i%60) * 24 * time.Hour)
		last := now.Add(-time.Duration(i%7) * time.Hour * 5)
		if i%4 == 3 {
			last = now.Add(-time.Duration(31+i%20) * 24 * time.Hour)
		}
		if err := st.SetMachineSeen(ctx, id, first, last); err != nil {
			return 0, err
		}
	}
	return len(missing), nil
}
