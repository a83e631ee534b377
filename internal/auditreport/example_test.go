package auditreport_test

import (
	"fmt"

	"callvault/internal/auditreport"
)

// A reviewer's mark is an audit event whose Detail names the finding and
// the outcome; the free text goes in the event's Note.
func ExampleReviewMarkDetail() {
	d, err := auditreport.ReviewMarkDetail("394b99d584c745ec", auditreport.MarkFollowedUp)
	if err != nil {
		panic(err)
	}
	fmt.Println(d)
	id, outcome, _ := auditreport.ParseReviewMarkDetail(d)
	fmt.Println(id, outcome)
	_, err = auditreport.ReviewMarkDetail("394b99d584c745ec", "done")
	fmt.Println(err)
	// Output:
	// finding=394b99d584c745ec outcome=followed-up
	// 394b99d584c745ec followed-up
	// auditreport: invalid argument: review mark: outcome must be no-action, followed-up or reported
}
