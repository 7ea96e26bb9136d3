package keystation

import (
	"regexp"
	"sort"
	"strings"
)

// Edition is a key pool: Home and Pro exist from the start; a supervisor can
// add more. Patterns are matched case-insensitively against a PC's osVersion;
// the longest matching pattern wins (most specific first).
type Edition struct {
	Slug     string   `json:"slug"` // "home", "pro", "pro-workstations"
	Name     string   `json:"name"` // "Home", "Pro", "Pro for Workstations"
	Patterns []string `json:"patterns"`
	LowStock int      `json:"lowStock"` // warn when available keys fall below
}

// DefaultEditions are the pools every server and station starts with (seed
// 000: "home" in osVersion means a Home key, "pro" a Pro key).
func DefaultEditions() []Edition {
	return []Edition{
		{Slug: "home", Name: "Home", Patterns: []string{"home"}, LowStock: 50},
		{Slug: "pro", Name: "Pro", Patterns: []string{"pro"}, LowStock: 50},
	}
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// Validate checks an edition a supervisor defines.
func (e Edition) Validate() error {
	f := map[string]string{}
	if !slugRE.MatchString(e.Slug) {
		f["slug"] = "lower-case letters, digits and dashes, at most 40"
	}
	if strings.TrimSpace(e.Name) == "" {
		f["name"] = "required"
	}
	if len(e.Patterns) == 0 {
		f["patterns"] = "at least one pattern"
	}
	for _, p := range e.Patterns {
		if strings.TrimSpace(p) == "" {
			f["patterns"] = "patterns must not be empty"
		}
	}
	if e.LowStock < 0 {
		f["lowStock"] = "must not be negative"
	}
	if len(f) > 0 {
		return FieldError(f)
	}
	return nil
}

// EditionRules picks the edition pool for an osVersion string.
type EditionRules struct {
	rules []rule
}

type rule struct {
	pattern string
	slug    string
}

// NewEditionRules builds the rules of the given pools, most specific first.
func NewEditionRules(editions []Edition) *EditionRules {
	r := &EditionRules{}
	for _, e := range editions {
		for _, p := range e.Patterns {
			r.rules = append(r.rules, rule{pattern: strings.ToLower(strings.TrimSpace(p)), slug: e.Slug})
		}
	}
	sort.SliceStable(r.rules, func(i, j int) bool { return len(r.rules[i].pattern) > len(r.rules[j].pattern) })
	return r
}

// Match returns the slug of the edition for osVersion. No match, or two pools
// matching equally specifically, is an EUNKNOWNEDITION error naming the
// string: never a key from a guessed pool.
func (r *EditionRules) Match(osVersion string) (string, error) {
	s := strings.ToLower(osVersion)
	if strings.TrimSpace(s) == "" {
		return "", &Error{Code: EINVALID, Message: "osVersion is required", Fields: map[string]string{"osVersion": "required"}}
	}
	for i, ru := range r.rules {
		if !strings.Contains(s, ru.pattern) {
			continue
		}
		for _, other := range r.rules[i+1:] {
			if len(other.pattern) < len(ru.pattern) {
				break
			}
			if other.slug != ru.slug && strings.Contains(s, other.pattern) {
				return "", Errorf(EUNKNOWNEDITION, "osVersion %q matches both the %q and %q pools equally; no key issued", osVersion, ru.slug, other.slug)
			}
		}
		return ru.slug, nil
	}
	return "", Errorf(EUNKNOWNEDITION, "osVersion %q matches no key pool; no key issued", osVersion)
}

// OSVersionFromEdition turns the registry EditionID (or, when that is empty,
// OperatingSystemSKU) of a Windows installation into the osVersion string the
// edition rules understand. It prefers them over the localized caption, which
// on a Chinese Windows does not contain "home" or "pro". It returns "" when
// neither is known.
func OSVersionFromEdition(editionID string, sku uint32) string {
	if n, ok := editionIDs[strings.ToLower(editionID)]; ok {
		return n
	}
	if n, ok := skus[sku]; ok {
		return n
	}
	if editionID != "" {
		return "Windows " + editionID
	}
	return ""
}

var editionIDs = map[string]string{
	"core":                     "Windows Home",
	"coren":                    "Windows Home N",
	"corecountryspecific":      "Windows Home China",
	"coresinglelanguage":       "Windows Home Single Language",
	"professional":             "Windows Pro",
	"professionaln":            "Windows Pro N",
	"professionalworkstation":  "Windows Pro for Workstations",
	"professionalworkstationn": "Windows Pro for Workstations N",
	"professionaleducation":    "Windows Pro Education",
	"professionaleducationn":   "Windows Pro Education N",
	"education":                "Windows Education",
	"educationn":               "Windows Education N",
	"enterprise":               "Windows Enterprise",
	"enterprisen":              "Windows Enterprise N",
	"iotenterprise":            "Windows IoT Enterprise",
	"serverstandard":           "Windows Server Standard",
	"serverdatacenter":         "Windows Server Datacenter",
}

var skus = map[uint32]string{
	4:   "Windows Enterprise",
	27:  "Windows Enterprise N",
	48:  "Windows Pro",
	49:  "Windows Pro N",
	98:  "Windows Home N",
	99:  "Windows Home China",
	100: "Windows Home Single Language",
	101: "Windows Home",
	121: "Windows Education",
	122: "Windows Education N",
	161: "Windows Pro for Workstations",
	162: "Windows Pro for Workstations N",
	164: "Windows Pro Education",
	165: "Windows Pro Education N",
}
