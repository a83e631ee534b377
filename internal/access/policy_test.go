package access

import "testing"

func TestDecide(t *testing.T) {
	const prov, other = "SE9999990001-VG01", "SE9999990002-VG02"
	const unitA, unitB = "SE9999990001-VE0A", "SE9999990001-VE0B"
	nurseA := &Principal{HSAID: "SE9999990001-N0A1", CareProvider: prov, CareUnit: unitA, Roles: []Role{RoleClinician}}
	nurseB := &Principal{HSAID: "SE9999990001-N0B1", CareProvider: prov, CareUnit: unitB, Roles: []Role{RoleClinician}}
	nurseOther := &Principal{HSAID: "SE9999990002-N0C1", CareProvider: other, CareUnit: "SE9999990002-VE0C", Roles: []Role{RoleClinician}}
	capture := &Principal{HSAID: "SE9999990001-CAP1", CareProvider: prov, CareUnit: unitA, Roles: []Role{RoleCapture}}
	admin := &Principal{HSAID: "SE9999990001-ADM1", CareProvider: prov, CareUnit: unitA, Roles: []Role{RoleAdmin}}
	auditor := &Principal{HSAID: "SE9999990001-AUD1", CareProvider: prov, CareUnit: unitA, Roles: []Role{RoleAuditor}}
	records := &Principal{HSAID: "SE9999990001-REC1", CareProvider: prov, CareUnit: unitA, Roles: []Role{RoleRecords}}
	recA := Facts{CareProvider: prov, CareUnit: unitA, Staff: []string{nurseA.HSAID}}
	recAWithB := Facts{CareProvider: prov, CareUnit: unitA, Staff: []string{nurseA.HSAID, nurseB.HSAID}}
	blocked := recA
	blocked.BlockedForUnit = true

	tests := []struct {
		name string
		req  Request
		want Decision
	}{
		{"capture adds for own provider", Request{Action: ActionIngest, Principal: capture, Facts: Facts{CareProvider: prov, CareUnit: unitA, UnitKnown: true}},
			Decision{Allowed: true, Reason: ReasonCaptureProvider}},
		{"capture adds for other provider", Request{Action: ActionIngest, Principal: capture, Facts: Facts{CareProvider: other, CareUnit: unitA, UnitKnown: true}},
			Decision{Reason: ReasonTenant}},
		{"capture adds to unknown unit", Request{Action: ActionIngest, Principal: capture, Facts: Facts{CareProvider: prov, CareUnit: unitA}},
			Decision{Reason: ReasonUnknownUnit}},
		{"nurse cannot ingest", Request{Action: ActionIngest, Principal: nurseA, Facts: Facts{CareProvider: prov, UnitKnown: true}},
			Decision{Reason: ReasonRole}},
		{"capture cannot play", Request{Action: ActionPlay, Principal: capture, Purpose: PurposeCare, Facts: recA}, Decision{Reason: ReasonRole}},
		{"capture cannot search", Request{Action: ActionSearch, Principal: capture, Purpose: PurposeCare}, Decision{Reason: ReasonRole}},
		{"admin cannot play", Request{Action: ActionPlay, Principal: admin, Purpose: PurposeCare, Facts: recA}, Decision{Reason: ReasonRole}},
		{"admin cannot read metadata", Request{Action: ActionReadMetadata, Principal: admin, Purpose: PurposeCare, Facts: recA}, Decision{Reason: ReasonRole}},
		{"auditor cannot play", Request{Action: ActionPlay, Principal: auditor, Purpose: PurposeCare, EmergencyReason: "x", Facts: recA}, Decision{Reason: ReasonRole}},
		{"nurse without purpose", Request{Action: ActionPlay, Principal: nurseA, Facts: recA}, Decision{Reason: ReasonPurpose}},
		{"nurse own unit", Request{Action: ActionPlay, Principal: nurseA, Purpose: PurposeCare, Facts: recA}, Decision{Allowed: true, Reason: ReasonOwnUnit}},
		{"nurse B other unit", Request{Action: ActionPlay, Principal: nurseB, Purpose: PurposeCare, Facts: recA}, Decision{Reason: ReasonOtherUnit}},
		{"nurse B emergency", Request{Action: ActionPlay, Principal: nurseB, Purpose: PurposeCare, EmergencyReason: "unconscious", Facts: recA},
			Decision{Allowed: true, Reason: ReasonEmergency, Emergency: true}},
		{"nurse B was staff on the call", Request{Action: ActionPlay, Principal: nurseB, Purpose: PurposeComplaint, Facts: recAWithB},
			Decision{Allowed: true, Reason: ReasonStaffOnCall}},
		{"other provider, concealed", Request{Action: ActionPlay, Principal: nurseOther, Purpose: PurposeCare, EmergencyReason: "x", Facts: recA},
			Decision{Reason: ReasonTenant, Conceal: true}},
		{"block denies own unit", Request{Action: ActionPlay, Principal: nurseA, Purpose: PurposeCare, Facts: blocked}, Decision{Reason: ReasonBlocked}},
		{"block passed by emergency", Request{Action: ActionReadMetadata, Principal: nurseA, Purpose: PurposeCare, EmergencyReason: "x", Facts: blocked},
			Decision{Allowed: true, Reason: ReasonEmergency, Emergency: true}},
		{"nurse search", Request{Action: ActionSearch, Principal: nurseA, Purpose: PurposeCare}, Decision{Allowed: true, Reason: ReasonSearch}},
		{"unknown action", Request{Action: "delete", Principal: nurseA, Purpose: PurposeCare, Facts: recA}, Decision{Reason: ReasonRole}},
		{"records officer, own provider", Request{Action: ActionLifecycle, Principal: records, Facts: recA}, Decision{Allowed: true, Reason: ReasonRecordsOfficer}},
		{"records officer, other provider, concealed", Request{Action: ActionLifecycle, Principal: records, Facts: Facts{CareProvider: other, CareUnit: "SE9999990002-VE0C"}},
			Decision{Reason: ReasonTenant, Conceal: true}},
		{"nurse cannot set holds or delete", Request{Action: ActionLifecycle, Principal: nurseA, Purpose: PurposeCare, Facts: recA}, Decision{Reason: ReasonRole}},
		{"admin cannot delete", Request{Action: ActionLifecycle, Principal: admin, Facts: recA}, Decision{Reason: ReasonRole}},
		{"auditor cannot delete", Request{Action: ActionLifecycle, Principal: auditor, Facts: recA}, Decision{Reason: ReasonRole}},
		{"records officer cannot play", Request{Action: ActionPlay, Principal: records, Purpose: PurposeCare, Facts: recA}, Decision{Reason: ReasonRole}},
		{"records officer cannot search", Request{Action: ActionSearch, Principal: records, Purpose: PurposeCare}, Decision{Reason: ReasonRole}},
		{"capture verifies own provider", Request{Action: ActionVerify, Principal: capture, Facts: recA}, Decision{Allowed: true, Reason: ReasonVerify}},
		{"capture verifies other provider, concealed", Request{Action: ActionVerify, Principal: capture, Facts: Facts{CareProvider: other, CareUnit: "SE9999990002-VE0C"}},
			Decision{Reason: ReasonTenant, Conceal: true}},
		{"nurse cannot verify", Request{Action: ActionVerify, Principal: nurseA, Purpose: PurposeCare, Facts: recA}, Decision{Reason: ReasonRole}},
		{"records officer cannot verify", Request{Action: ActionVerify, Principal: records, Facts: recA}, Decision{Reason: ReasonRole}},
		{"admin cannot verify", Request{Action: ActionVerify, Principal: admin, Facts: recA}, Decision{Reason: ReasonRole}},
	}
	for _, tc := range tests {
		if got := Decide(tc.req); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestParsePurpose(t *testing.T) {
	for _, s := range []string{"care", "complaint", "adverse-event", "patient-request", "supervision"} {
		if p, err := ParsePurpose(s); err != nil || string(p) != s {
			t.Errorf("ParsePurpose(%q) = %q, %v", s, p, err)
		}
	}
	for _, s := range []string{"", "Care", "curiosity"} {
		if _, err := ParsePurpose(s); err == nil {
			t.Errorf("ParsePurpose(%q) accepted", s)
		}
	}
}
