package access

import "fmt"

// Action is what a request wants to do.
type Action string

// The actions the policy decides.
const (
	ActionIngest       Action = "ingest"
	ActionSearch       Action = "search"
	ActionReadMetadata Action = "read-metadata"
	ActionPlay         Action = "play"
	// ActionLifecycle covers legal holds and deletion decisions.
	ActionLifecycle Action = "lifecycle"
	// ActionVerify compares a stored recording with a digest the caller
	// holds (a migration proving its source files are in the archive).
	// The answer is "matches" or "differs", never audio or metadata.
	ActionVerify Action = "verify"
)

// Purpose is the stated purpose of use of patient data (DOMAIN.md).
type Purpose string

// The purposes, with the codes used in the API's X-Purpose header.
const (
	PurposeCare           Purpose = "care"            // vård och behandling
	PurposeComplaint      Purpose = "complaint"       // klagomålsutredning
	PurposeAdverseEvent   Purpose = "adverse-event"   // lex Maria
	PurposePatientRequest Purpose = "patient-request" // the patient's own request
	PurposeSupervision    Purpose = "supervision"     // IVO / IMY
)

// ParsePurpose parses a purpose code; "" is ErrPurposeMissing's case and
// returns an error too.
func ParsePurpose(s string) (Purpose, error) {
	switch p := Purpose(s); p {
	case PurposeCare, PurposeComplaint, PurposeAdverseEvent, PurposePatientRequest, PurposeSupervision:
		return p, nil
	case "":
		return "", fmt.Errorf("access: purpose is required")
	}
	return "", fmt.Errorf("access: unknown purpose (want care, complaint, adverse-event, patient-request or supervision)")
}

// MaxEmergencyReason bounds the written reason for emergency access.
const MaxEmergencyReason = 1000

// Facts are what the policy needs to know about the recording a request
// touches. For ActionIngest they describe the recording to be added.
type Facts struct {
	CareProvider string
	CareUnit     string
	Staff        []string
	// BlockedForUnit: the patient has blocked (spärr) access from the
	// requesting principal's care unit.
	BlockedForUnit bool
	// UnitKnown: the care unit is registered in the directory for the provider.
	UnitKnown bool
}

// Request is one question to the policy.
type Request struct {
	Action          Action
	Principal       *Principal
	Purpose         Purpose // required for search, read and play
	EmergencyReason string  // non-empty asks for emergency access (nödåtkomst)
	Facts           Facts
}

// Decision is the policy's answer. Reason is a short code without personal
// data, stored in the audit log; for a denial it says why.
type Decision struct {
	Allowed bool
	Reason  string
	// Emergency is set when access was granted only by emergency access; the
	// audit event is flagged for log follow-up.
	Emergency bool
	// Conceal: the answer to the client must not reveal whether the
	// recording exists (another care provider's data).
	Conceal bool
}

// Decision reason codes.
const (
	ReasonRole            = "role-not-permitted"
	ReasonTenant          = "other-care-provider"
	ReasonUnknownUnit     = "unknown-care-unit"
	ReasonPurpose         = "purpose-missing"
	ReasonOtherUnit       = "other-care-unit-needs-emergency-access"
	ReasonBlocked         = "patient-block-needs-emergency-access"
	ReasonOwnUnit         = "own-care-unit"
	ReasonStaffOnCall     = "staff-on-call"
	ReasonEmergency       = "emergency-access"
	ReasonCaptureProvider = "capture-own-care-provider"
	ReasonSearch          = "search-own-care-provider"
	ReasonRecordsOfficer  = "records-officer-own-care-provider"
	ReasonVerify          = "capture-verify-own-care-provider"
)

// Decide applies the policy:
//
//   - capture systems may only add recordings, for their own care provider
//     and a care unit registered under it, and verify that a recording of
//     their own care provider matches a digest they hold (the answer is
//     match or mismatch; another provider's recordings are concealed);
//   - only clinicians read (search, metadata, audio), always with a purpose,
//     never across care providers (and then the recording's existence is
//     concealed);
//   - a clinician reads recordings of their own care unit or of calls they
//     took part in; other units of the same provider only by emergency access
//     with a written reason, which is allowed and flagged;
//   - a patient block against the clinician's unit denies unless emergency
//     access;
//   - admins and auditors never get recordings or their metadata;
//   - only records officers set legal holds and register or approve
//     deletions, for their own care provider's recordings (another
//     provider's are concealed); they never read recordings.
func Decide(req Request) Decision {
	p := req.Principal
	deny := func(reason string) Decision { return Decision{Reason: reason} }
	switch req.Action {
	case ActionLifecycle:
		switch {
		case !p.Has(RoleRecords):
			return deny(ReasonRole)
		case req.Facts.CareProvider != p.CareProvider:
			return Decision{Reason: ReasonTenant, Conceal: true}
		}
		return Decision{Allowed: true, Reason: ReasonRecordsOfficer}
	case ActionIngest:
		switch {
		case !p.Has(RoleCapture):
			return deny(ReasonRole)
		case req.Facts.CareProvider != p.CareProvider:
			return deny(ReasonTenant)
		case !req.Facts.UnitKnown:
			return deny(ReasonUnknownUnit)
		}
		return Decision{Allowed: true, Reason: ReasonCaptureProvider}
	case ActionVerify:
		switch {
		case !p.Has(RoleCapture):
			return deny(ReasonRole)
		case req.Facts.CareProvider != p.CareProvider:
			return Decision{Reason: ReasonTenant, Conceal: true}
		}
		return Decision{Allowed: true, Reason: ReasonVerify}
	case ActionSearch, ActionReadMetadata, ActionPlay:
	default:
		return deny(ReasonRole)
	}
	if !p.Has(RoleClinician) {
		return deny(ReasonRole)
	}
	if req.Purpose == "" {
		return deny(ReasonPurpose)
	}
	if req.Action == ActionSearch {
		// A search is scoped to the principal's own provider by the catalog
		// query; each hit is then decided on its own as a read.
		return Decision{Allowed: true, Reason: ReasonSearch}
	}
	f := req.Facts
	if f.CareProvider != p.CareProvider {
		return Decision{Reason: ReasonTenant, Conceal: true}
	}
	emergency := req.EmergencyReason != ""
	if f.BlockedForUnit {
		if !emergency {
			return deny(ReasonBlocked)
		}
		return Decision{Allowed: true, Reason: ReasonEmergency, Emergency: true}
	}
	if f.CareUnit == p.CareUnit {
		return Decision{Allowed: true, Reason: ReasonOwnUnit}
	}
	for _, s := range f.Staff {
		if s == p.HSAID {
			return Decision{Allowed: true, Reason: ReasonStaffOnCall}
		}
	}
	if !emergency {
		return deny(ReasonOtherUnit)
	}
	return Decision{Allowed: true, Reason: ReasonEmergency, Emergency: true}
}
