package auditreport

import (
	"fmt"
	"strings"
)

// The outcomes of a review mark.
const (
	// MarkNoAction: the finding was justified; nothing more to do.
	MarkNoAction = "no-action"
	// MarkFollowedUp: the finding was followed up, e.g. with the user or
	// their manager.
	MarkFollowedUp = "followed-up"
	// MarkReported: the finding was reported onwards, e.g. as a personal
	// data breach or to the care provider's security function.
	MarkReported = "reported"
)

// ReviewMarkDetail returns the Detail of an audit.review-mark event that
// marks finding id with outcome: "finding=<id> outcome=<outcome>". It
// returns an error wrapping ErrInvalid if id is not 16 lower-case hex digits
// or outcome is not MarkNoAction, MarkFollowedUp or MarkReported.
func ReviewMarkDetail(id, outcome string) (string, error) {
	if !validFindingID(id) {
		return "", fmt.Errorf("%w: review mark: a finding ID is 16 lower-case hex digits", ErrInvalid)
	}
	if !validMarkOutcome(outcome) {
		return "", fmt.Errorf("%w: review mark: outcome must be %s, %s or %s", ErrInvalid, MarkNoAction, MarkFollowedUp, MarkReported)
	}
	return "finding=" + id + " outcome=" + outcome, nil
}

// ParseReviewMarkDetail is the inverse of ReviewMarkDetail: it accepts
// exactly the strings ReviewMarkDetail returns and otherwise returns an
// error wrapping ErrInvalid.
func ParseReviewMarkDetail(detail string) (id, outcome string, err error) {
	f, o, ok := strings.Cut(detail, " ")
	id, ok1 := strings.CutPrefix(f, "finding=")
	outcome, ok2 := strings.CutPrefix(o, "outcome=")
	if !ok || !ok1 || !ok2 || !validFindingID(id) || !validMarkOutcome(outcome) {
		return "", "", fmt.Errorf("%w: review mark: detail is not \"finding=<id> outcome=<outcome>\"", ErrInvalid)
	}
	return id, outcome, nil
}

func validFindingID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := range len(id) {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func validMarkOutcome(o string) bool {
	return o == MarkNoAction || o == MarkFollowedUp || o == MarkReported
}
