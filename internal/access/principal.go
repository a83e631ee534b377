// Package access answers "who is calling?" and "may they?": it turns a
// verified client certificate into a Principal through the directory of
// users and systems, and decides requests by the policy of DOMAIN.md.
// It never touches recordings itself; the archive asks it.
package access

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role is what a principal may do, as a set of abilities (DOMAIN.md, "Roles").
type Role string

// The roles.
const (
	RoleCapture   Role = "capture"   // a system that adds recordings for its care provider
	RoleClinician Role = "clinician" // nurse or physician: search and play, with a purpose
	RoleAuditor   Role = "auditor"   // reads the audit log; never plays audio
	RoleAdmin     Role = "admin"     // users, units, keys, sites; never patient data
	RoleWitness   Role = "witness"   // reads the log's checkpoints and tiles (no decrypted content); never audio
	RoleRecords   Role = "records"   // records officer: legal holds, IVO deletion decisions; never audio or patient data
)

// AllRoles lists the roles in a fixed order.
var AllRoles = []Role{RoleCapture, RoleClinician, RoleAuditor, RoleAdmin, RoleWitness, RoleRecords}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range AllRoles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("access: unknown role %q (want one of capture, clinician, auditor, admin, witness)", s)
}

// Principal is an authenticated caller as the directory knows it.
type Principal struct {
	HSAID        string
	CareProvider string
	CareUnit     string
	Roles        []Role
	// CertFingerprint is the hex SHA-256 of the client certificate (DER).
	CertFingerprint string
}

// Has reports whether p holds role r.
func (p *Principal) Has(r Role) bool { return p != nil && slices.Contains(p.Roles, r) }

// Errors of identification.
var (
	// ErrNoIdentity: the certificate carries no HSA-ID in its subject serialNumber.
	ErrNoIdentity = errors.New("access: certificate has no HSA-ID in subject serialNumber")
	// ErrUnknownUser: the HSA-ID is not in the directory, or is disabled.
	ErrUnknownUser = errors.New("access: HSA-ID not registered in the directory")
)

// HSAIDFromCertificate returns the HSA-ID of a SITHS-style certificate: the
// subject serialNumber attribute (OID 2.5.4.5).
func HSAIDFromCertificate(cert *x509.Certificate) (string, error) {
	s := strings.TrimSpace(cert.Subject.SerialNumber)
	if s == "" {
		return "", ErrNoIdentity
	}
	return s, nil
}

// Fingerprint returns the hex SHA-256 of a certificate's DER bytes.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}
