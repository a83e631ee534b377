// Package devpki is a throwaway certificate authority for `serve --dev` and
// tests. It issues SITHS-like client certificates (the HSA-ID in the
// subject serialNumber, OID 2.5.4.5) and TLS server certificates.
//
// Never use it for production: its keys sit in plain files next to the
// data, and it keeps no revocation list. Only tests and cmd import it.
//
// Every key is ECDSA P-256 and every serial number 128 random bits. Keys are
// PEM-encoded PKCS#8 ("PRIVATE KEY"), certificates PEM "CERTIFICATE".
package devpki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// organization is the subject O of every certificate devpki makes, so a dev
// certificate is recognisable as one.
const organization = "callvault dev"

// CA is a certificate authority: a self-signed ECDSA P-256 certificate and
// its key. It is immutable and safe for concurrent use.
type CA struct {
	cert   *x509.Certificate
	key    crypto.Signer
	keyDER []byte // PKCS#8 of key
}

// NewCA creates a CA named commonName, valid from an hour before now (to
// tolerate clock skew) until ten years after now. It may sign end-entity
// certificates only (path length 0).
func NewCA(commonName string, now time.Time) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devpki: ca key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{organization}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("devpki: ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("devpki: ca certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("devpki: ca key: %w", err)
	}
	return &CA{cert: cert, key: key, keyDER: keyDER}, nil
}

// LoadCA reads a CA written with CertPEM and KeyPEM. It refuses a
// certificate that is not a CA and a key that does not belong to the
// certificate.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("devpki: load ca: %w", err)
	}
	if !cert.IsCA || cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("devpki: load ca: certificate is not a CA")
	}
	key, keyDER, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("devpki: load ca: %w", err)
	}
	if err := matches(cert, key); err != nil {
		return nil, fmt.Errorf("devpki: load ca: %w", err)
	}
	return &CA{cert: cert, key: key, keyDER: keyDER}, nil
}

// Certificate returns the CA certificate. The caller must not modify it.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM returns the CA certificate, PEM-encoded.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
}

// KeyPEM returns the CA's private key as PKCS#8 PEM ("PRIVATE KEY"), in
// plaintext.
func (ca *CA) KeyPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ca.keyDER})
}

// IssueServer issues a TLS server certificate (server auth only) for the DNS
// names and IP literals in hosts, valid from notBefore to notAfter, with a
// fresh key. The subject CommonName is hosts[0].
func (ca *CA) IssueServer(hosts []string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, errors.New("devpki: issue server: no hosts")
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: hosts[0], Organization: []string{organization}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature, // ECDHE with an ECDSA key: signing only
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		switch ip := net.ParseIP(h); {
		case h == "":
			return nil, nil, errors.New("devpki: issue server: empty host")
		case ip != nil:
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		default:
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	certPEM, keyPEM, err = ca.issue(tmpl)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: issue server: %w", err)
	}
	return certPEM, keyPEM, nil
}

// IssueClient issues a TLS client certificate (client auth only) whose
// subject has CommonName commonName and, as SITHS certificates do,
// serialNumber (OID 2.5.4.5) = hsaID, valid from notBefore to notAfter, with
// a fresh key. An empty hsaID gives a certificate without a serialNumber
// attribute (for tests of refusal). notAfter may lie in the past (for tests
// of expiry).
func (ca *CA) IssueClient(commonName, hsaID string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: commonName, SerialNumber: hsaID, Organization: []string{organization}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	certPEM, keyPEM, err = ca.issue(tmpl)
	if err != nil {
		return nil, nil, fmt.Errorf("devpki: issue client: %w", err)
	}
	return certPEM, keyPEM, nil
}

func (ca *CA) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	if !tmpl.NotAfter.After(tmpl.NotBefore) {
		return nil, nil, errors.New("validity ends before it begins")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	if tmpl.SerialNumber, err = newSerial(); err != nil {
		return nil, nil, err
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

// newSerial returns a uniformly random serial number in [1, 2^128).
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		s, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("devpki: serial: %w", err)
		}
		if s.Sign() > 0 { // RFC 5280 4.1.2.2: serial numbers are positive
			return s, nil
		}
	}
}

// PKCS12 bundles a client certificate, its key and the CA certificate for
// import into a browser, encrypted and authenticated with password by
// go-pkcs12's Modern encoder (today PBES2 with PBKDF2-HMAC-SHA-256 and
// AES-256-CBC, MAC HMAC-SHA-256; read by OpenSSL 1.1.1 and later). It
// refuses a key that does not belong to the certificate.
func PKCS12(certPEM, keyPEM, caPEM []byte, password string) ([]byte, error) {
	cert, err := parseCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("devpki: pkcs12: %w", err)
	}
	caCert, err := parseCert(caPEM)
	if err != nil {
		return nil, fmt.Errorf("devpki: pkcs12: ca: %w", err)
	}
	key, _, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("devpki: pkcs12: %w", err)
	}
	if err := matches(cert, key); err != nil {
		return nil, fmt.Errorf("devpki: pkcs12: %w", err)
	}
	out, err := pkcs12.Modern.Encode(key, cert, []*x509.Certificate{caCert}, password)
	if err != nil {
		return nil, fmt.Errorf("devpki: pkcs12: %w", err)
	}
	return out, nil
}

// parseCert parses the first PEM block of b, which must be a CERTIFICATE.
func parseCert(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	return cert, nil
}

// parseKey parses the first PEM block of b, which must be a PKCS#8 PRIVATE
// KEY that can sign.
func parseKey(b []byte) (crypto.Signer, []byte, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, nil, errors.New("no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("key: %T cannot sign", k)
	}
	return signer, block.Bytes, nil
}

// matches reports an error unless key is the private key of cert.
func matches(cert *x509.Certificate, key crypto.Signer) error {
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if !bytes.Equal(pub, cert.RawSubjectPublicKeyInfo) {
		return errors.New("key does not belong to the certificate")
	}
	return nil
}
