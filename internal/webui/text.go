package webui

import (
	"errors"
	"time"

	"callvault/internal/access"
	"callvault/internal/archive"
	"callvault/internal/pnr"
)

// The pages' Swedish texts for what the archive answers. None echoes a
// value the user typed.

// stockholm is the time zone every page shows; the archive stores UTC.
var stockholm = func() *time.Location {
	if l, err := time.LoadLocation("Europe/Stockholm"); err == nil {
		return l
	}
	return time.FixedZone("CET", 3600)
}()

// purposes are the purposes a reader may state, in the API's codes, with
// their Swedish names, in the order the pages offer them.
var purposes = []struct{ Code, Text string }{
	{string(access.PurposeCare), "Vård och behandling"},
	{string(access.PurposeComplaint), "Klagomålsutredning"},
	{string(access.PurposeAdverseEvent), "Händelseanalys (lex Maria)"},
	{string(access.PurposePatientRequest), "Patientens egen begäran"},
	{string(access.PurposeSupervision), "Tillsyn (IVO/IMY)"},
}

func purposeText(code string) string {
	for _, p := range purposes {
		if p.Code == code {
			return p.Text
		}
	}
	return code
}

func deniedText(reason string) string {
	switch reason {
	case access.ReasonRole:
		return "Din roll ger inte behörighet till det här."
	case access.ReasonOtherUnit:
		return "Inspelningen tillhör en annan vårdenhet. Åtkomst kräver nödåtkomst med ett skriftligt skäl."
	case access.ReasonBlocked:
		return "Patienten har spärrat sina uppgifter för din vårdenhet. Åtkomst kräver nödåtkomst med ett skriftligt skäl."
	case access.ReasonPurpose:
		return "Ange ett syfte."
	case archive.ReasonSelfApproval:
		return "Du kan inte godkänna ett beslut som du själv har registrerat. En annan arkivansvarig måste godkänna det."
	}
	return "Åtkomst nekad (" + reason + ")."
}

func conflictText(c *archive.ConflictError) string {
	switch c.Reason {
	case "legal-hold":
		return "Inspelningen omfattas av ett bevarandebeslut (legal hold) och kan inte raderas."
	case "already-deleted":
		return "Inspelningen är redan raderad."
	case "decision-state":
		return "Beslutet väntar inte längre på godkännande."
	case "released":
		return "Bevarandebeslutet är redan hävt."
	}
	return "Åtgärden går inte att utföra i inspelningens nuvarande läge (" + c.Reason + ")."
}

func invalidText(e *archive.InvalidError) string {
	switch e.Field {
	case "patient":
		switch {
		case errors.Is(e, pnr.ErrChecksum):
			return "Kontrollsiffran i personnumret stämmer inte. Kontrollera numret."
		case errors.Is(e, pnr.ErrDate):
			return "Personnumret innehåller inget giltigt datum."
		}
		return "Ange ett personnummer eller samordningsnummer med 10 eller 12 siffror, till exempel 19121212-1212."
	case "purpose":
		return "Välj ett syfte."
	case "emergency_reason":
		return "Skälet för nödåtkomst får vara högst 1000 tecken."
	case "case_number":
		return "Ange IVO:s diarienummer."
	case "decided_on":
		return "Ange beslutsdatum som ÅÅÅÅ-MM-DD (inte i framtiden)."
	case "document_sha256":
		return "Kontrollsumman ska vara SHA-256 av beslutsdokumentet: 64 tecken 0–9 och a–f."
	case "recordings":
		return "Ange 1–100 inspelnings-ID (32 tecken 0–9 och a–f), ett per rad, utan dubbletter."
	case "reference":
		return "Ange en referens (ärende- eller beslutsnummer)."
	case "finding":
		return "Avvikelsen finns inte i rapporten."
	case "outcome":
		return "Välj ett utfall."
	case "note":
		return "Anteckningen är för lång."
	case "from", "to":
		return "Ange en tidsperiod: från och till, som ÅÅÅÅ-MM-DD, där från ligger före till."
	case "id":
		return "Inspelnings-ID består av 32 tecken 0–9 och a–f."
	}
	return "Uppgiften " + e.Field + " är inte giltig."
}
