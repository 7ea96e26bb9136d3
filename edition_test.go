package keystation_test

import (
	"strings"
	"testing"

	"keystation"
)

func TestEditionRulesMatch(t *testing.T) {
	withWorkstations := append(keystation.DefaultEditions(),
		keystation.Edition{Slug: "pro-workstations", Name: "Pro for Workstations", Patterns: []string{"pro for workstations", "ProfessionalWorkstation"}},
		keystation.Edition{Slug: "home-sl", Name: "Home Single Language", Patterns: []string{"Home Single Language"}},
	)
	withEducation := append(keystation.DefaultEditions(),
		keystation.Edition{Slug: "edu", Name: "Education", Patterns: []string{"edu"}})
	tests := []struct {
		name      string
		editions  []keystation.Edition
		osVersion string
		want      string
		wantCode  string
		wantMsg   []string
	}{
		{name: "seed 000 home", editions: keystation.DefaultEditions(), osVersion: "mircosoft window 11 home", want: "home"},
		{name: "seed 000 pro", editions: keystation.DefaultEditions(), osVersion: "mircosoft window 11 pro", want: "pro"},
		{name: "case insensitive", editions: keystation.DefaultEditions(), osVersion: "Microsoft Windows 11 HOME", want: "home"},
		{name: "professional", editions: keystation.DefaultEditions(), osVersion: "Windows 10 Professional", want: "pro"},
		{name: "home n", editions: keystation.DefaultEditions(), osVersion: "Windows Home N", want: "home"},
		{name: "default pools: workstations is pro", editions: keystation.DefaultEditions(), osVersion: "Windows 11 Pro for Workstations", want: "pro"},
		{name: "most specific wins", editions: withWorkstations, osVersion: "Windows 11 Pro for Workstations", want: "pro-workstations"},
		{name: "most specific wins, case", editions: withWorkstations, osVersion: "WINDOWS 11 PRO FOR WORKSTATIONS N", want: "pro-workstations"},
		{name: "added pattern from EditionID", editions: withWorkstations, osVersion: "ProfessionalWorkstation", want: "pro-workstations"},
		{name: "plain pro still pro", editions: withWorkstations, osVersion: "Windows 11 Pro", want: "pro"},
		{name: "home single language", editions: withWorkstations, osVersion: "Windows 11 Home Single Language", want: "home-sl"},
		{name: "plain home still home", editions: withWorkstations, osVersion: "Windows 11 Home", want: "home"},
		{name: "longer pattern wins over shorter of another pool", editions: keystation.DefaultEditions(), osVersion: "Windows Home Pro", want: "home"},
		{name: "no match", editions: keystation.DefaultEditions(), osVersion: "Windows 11 Enterprise",
			wantCode: keystation.EUNKNOWNEDITION, wantMsg: []string{`"Windows 11 Enterprise"`, "no key pool"}},
		{name: "no match chinese caption", editions: keystation.DefaultEditions(), osVersion: "Microsoft Windows 11 家庭中文版",
			wantCode: keystation.EUNKNOWNEDITION, wantMsg: []string{"家庭中文版"}},
		{name: "equal specificity is ambiguous", editions: withEducation, osVersion: "Windows 11 Pro Education",
			wantCode: keystation.EUNKNOWNEDITION, wantMsg: []string{`"Windows 11 Pro Education"`, `"edu"`, `"pro"`, "equally"}},
		{name: "education alone", editions: withEducation, osVersion: "Windows 11 Education", want: "edu"},
		{name: "empty", editions: keystation.DefaultEditions(), osVersion: "", wantCode: keystation.EINVALID, wantMsg: []string{"osVersion"}},
		{name: "blank", editions: keystation.DefaultEditions(), osVersion: "  \t", wantCode: keystation.EINVALID, wantMsg: []string{"osVersion"}},
		{name: "no pools", editions: nil, osVersion: "Windows 11 Home", wantCode: keystation.EUNKNOWNEDITION},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keystation.NewEditionRules(tc.editions).Match(tc.osVersion)
			if tc.wantCode != "" {
				if err == nil {
					t.Fatalf("Match(%q) = %q, want %s", tc.osVersion, got, tc.wantCode)
				}
				if c := keystation.ErrorCode(err); c != tc.wantCode {
					t.Fatalf("code = %s (%v), want %s", c, err, tc.wantCode)
				}
				if got != "" {
					t.Errorf("a slug %q came with the error", got)
				}
				for _, m := range tc.wantMsg {
					if !strings.Contains(err.Error(), m) {
						t.Errorf("error %q does not mention %s", err, m)
					}
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Match(%q) = %q, %v; want %q", tc.osVersion, got, err, tc.want)
			}
		})
	}
}

func TestEditionRulesEmptyOSVersionNamesField(t *testing.T) {
	_, err := keystation.NewEditionRules(keystation.DefaultEditions()).Match("")
	if f := keystation.ErrorFields(err); f["osVersion"] == "" {
		t.Fatalf("fields = %v, want osVersion", f)
	}
}

func TestEditionValidate(t *testing.T) {
	tests := []struct {
		name   string
		ed     keystation.Edition
		fields []string
	}{
		{"ok", keystation.Edition{Slug: "pro-workstations", Name: "Pro for Workstations", Patterns: []string{"pro for workstations"}}, nil},
		{"bad slug", keystation.Edition{Slug: "Pro WS", Name: "x", Patterns: []string{"x"}}, []string{"slug"}},
		{"slug too long", keystation.Edition{Slug: strings.Repeat("a", 41), Name: "x", Patterns: []string{"x"}}, []string{"slug"}},
		{"no name", keystation.Edition{Slug: "x", Name: " ", Patterns: []string{"x"}}, []string{"name"}},
		{"no patterns", keystation.Edition{Slug: "x", Name: "x"}, []string{"patterns"}},
		{"blank pattern", keystation.Edition{Slug: "x", Name: "x", Patterns: []string{"x", " "}}, []string{"patterns"}},
		{"negative low stock", keystation.Edition{Slug: "x", Name: "x", Patterns: []string{"x"}, LowStock: -1}, []string{"lowStock"}},
		{"all wrong", keystation.Edition{Slug: "", LowStock: -1}, []string{"slug", "name", "patterns", "lowStock"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ed.Validate()
			if len(tc.fields) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			f := keystation.ErrorFields(err)
			if keystation.ErrorCode(err) != keystation.EINVALID || len(f) != len(tc.fields) {
				t.Fatalf("Validate = %v (fields %v), want fields %v", err, f, tc.fields)
			}
			for _, name := range tc.fields {
				if f[name] == "" {
					t.Errorf("field %s not named in %v", name, f)
				}
			}
		})
	}
}

func TestOSVersionFromEdition(t *testing.T) {
	rules := keystation.NewEditionRules(keystation.DefaultEditions())
	tests := []struct {
		name      string
		editionID string
		sku       uint32
		want      string
		pool      string // the default pool it lands in; "" for none
	}{
		{"Core", "Core", 0, "Windows Home", "home"},
		{"core lower case", "core", 0, "Windows Home", "home"},
		{"CoreN", "CoreN", 0, "Windows Home N", "home"},
		{"China", "CoreCountrySpecific", 0, "Windows Home China", "home"},
		{"single language", "CoreSingleLanguage", 0, "Windows Home Single Language", "home"},
		{"Professional", "Professional", 0, "Windows Pro", "pro"},
		{"ProfessionalN", "ProfessionalN", 0, "Windows Pro N", "pro"},
		{"workstation", "ProfessionalWorkstation", 0, "Windows Pro for Workstations", "pro"},
		{"pro education", "ProfessionalEducation", 0, "Windows Pro Education", "pro"},
		{"Enterprise", "Enterprise", 0, "Windows Enterprise", ""},
		{"EditionID wins over SKU", "Core", 48, "Windows Home", "home"},
		{"SKU 48 pro", "", 48, "Windows Pro", "pro"},
		{"SKU 101 home", "", 101, "Windows Home", "home"},
		{"SKU 100 single language", "", 100, "Windows Home Single Language", "home"},
		{"SKU 99 China", "", 99, "Windows Home China", "home"},
		{"SKU 161 workstations", "", 161, "Windows Pro for Workstations", "pro"},
		{"SKU 4 enterprise", "", 4, "Windows Enterprise", ""},
		{"unknown EditionID kept", "ServerRdsh", 0, "Windows ServerRdsh", ""},
		{"unknown EditionID, known SKU", "Whatever", 101, "Windows Home", "home"},
		{"nothing known", "", 0, "", ""},
		{"unknown SKU", "", 9999, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := keystation.OSVersionFromEdition(tc.editionID, tc.sku)
			if got != tc.want {
				t.Fatalf("OSVersionFromEdition(%q, %d) = %q, want %q", tc.editionID, tc.sku, got, tc.want)
			}
			if got == "" {
				return
			}
			slug, err := rules.Match(got)
			if tc.pool == "" {
				if err == nil {
					t.Fatalf("%q matched pool %q, want none", got, slug)
				}
				return
			}
			if slug != tc.pool {
				t.Fatalf("%q matched pool %q (%v), want %q", got, slug, err, tc.pool)
			}
		})
	}
}

func TestOSInfoOSVersion(t *testing.T) {
	tests := []struct {
		name string
		os   keystation.OSInfo
		want string
	}{
		{"registry wins over localized caption", keystation.OSInfo{Caption: "Microsoft Windows 11 家庭中文版", EditionID: "CoreCountrySpecific"}, "Windows Home China"},
		{"SKU wins over caption", keystation.OSInfo{Caption: "Microsoft Windows 11 專業版", SKU: 48}, "Windows Pro"},
		{"caption when nothing else", keystation.OSInfo{Caption: "Microsoft Windows 11 Pro"}, "Microsoft Windows 11 Pro"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.os.OSVersion(); got != tc.want {
				t.Fatalf("OSVersion() = %q, want %q", got, tc.want)
			}
		})
	}
}
