package devpki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

const (
	nurseHSA = "SE2321000016-N001"
	nurseCN  = "Test Nurse"
)

// oidSerialNumber is the X.520 serialNumber attribute, where SITHS puts the
// HSA-ID.
var oidSerialNumber = asn1.ObjectIdentifier{2, 5, 4, 5}

// now has whole seconds, the precision of certificate validity times, so
// validity can be compared exactly.
var now = time.Now().UTC().Truncate(time.Second)

func newCA(t *testing.T, cn string) *CA {
	t.Helper()
	ca, err := NewCA(cn, now)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func certOf(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, rest := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		t.Fatalf("not exactly one CERTIFICATE block: %q", certPEM)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keyPair(t *testing.T, certPEM, keyPEM []byte) tls.Certificate {
	t.Helper()
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

func pool(cas ...*CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Certificate())
	}
	return p
}

func issueServer(t *testing.T, ca *CA) tls.Certificate {
	t.Helper()
	c, k, err := ca.IssueServer([]string{"localhost", "127.0.0.1"}, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return keyPair(t, c, k)
}

func issueClient(t *testing.T, ca *CA, hsaID string, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	c, k, err := ca.IssueClient(nurseCN, hsaID, notBefore, notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair(t, c, k)
}

// serverConfig is the API's TLS setup: TLS 1.3, client certificate
// required and verified against clientCAs.
func serverConfig(cert tls.Certificate, clientCAs *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    clientCAs,
	}
}

func clientConfig(roots *x509.CertPool, certs ...tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		RootCAs:      roots,
		ServerName:   "localhost",
		Certificates: certs,
	}
}

type handshakeResult struct {
	server    tls.ConnectionState // valid when serverErr is nil
	serverErr error
	clientErr error
}

// handshake runs one TLS handshake over a loopback TCP connection. The
// server, once its side succeeds, writes one byte; the client reads it, so
// that a refusal the TLS 1.3 server sends after the client's Finished
// (a client certificate it rejects) shows up as a client error too.
func handshake(t *testing.T, srv, cli *tls.Config) handshakeResult {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type side struct {
		st  tls.ConnectionState
		err error
	}
	done := make(chan side, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- side{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			done <- side{err: err}
			return
		}
		_, err = tc.Write([]byte{'k'})
		done <- side{st: tc.ConnectionState(), err: err}
	}()

	var res handshakeResult
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ln.Addr().String(), cli)
	if err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 1)
		if _, err = io.ReadFull(c, b); err == nil && b[0] != 'k' {
			err = errors.New("unexpected byte from server")
		}
		c.Close()
	}
	res.clientErr = err
	s := <-done
	res.server, res.serverErr = s.st, s.err
	return res
}

func TestMutualTLS13Handshake(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	srv := serverConfig(issueServer(t, ca), pool(ca))
	cli := clientConfig(pool(ca), issueClient(t, ca, nurseHSA, now.Add(-time.Hour), now.Add(time.Hour)))

	res := handshake(t, srv, cli)
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("handshake: server %v, client %v", res.serverErr, res.clientErr)
	}
	st := res.server
	if st.Version != tls.VersionTLS13 {
		t.Errorf("version = %#x, want TLS 1.3 (%#x)", st.Version, tls.VersionTLS13)
	}
	if len(st.PeerCertificates) != 1 {
		t.Fatalf("server saw %d peer certificates, want 1", len(st.PeerCertificates))
	}
	leaf := st.PeerCertificates[0]
	if leaf.Subject.SerialNumber != nurseHSA {
		t.Errorf("Subject.SerialNumber = %q, want %q", leaf.Subject.SerialNumber, nurseHSA)
	}
	if leaf.Subject.CommonName != nurseCN {
		t.Errorf("Subject.CommonName = %q, want %q", leaf.Subject.CommonName, nurseCN)
	}
	var found []string
	for _, n := range leaf.Subject.Names {
		if n.Type.Equal(oidSerialNumber) {
			s, ok := n.Value.(string)
			if !ok {
				t.Fatalf("serialNumber attribute holds %T", n.Value)
			}
			found = append(found, s)
		}
	}
	if want := []string{nurseHSA}; !reflect.DeepEqual(found, want) {
		t.Errorf("serialNumber (2.5.4.5) attributes = %q, want %q", found, want)
	}
	if len(st.VerifiedChains) != 1 || len(st.VerifiedChains[0]) != 2 ||
		!st.VerifiedChains[0][1].Equal(ca.Certificate()) {
		t.Errorf("verified chain does not end at the CA: %d chains", len(st.VerifiedChains))
	}
}

func TestExpiredClientCertificateRefused(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	srv := serverConfig(issueServer(t, ca), pool(ca))
	cli := clientConfig(pool(ca), issueClient(t, ca, nurseHSA, now.Add(-48*time.Hour), now.Add(-24*time.Hour)))

	res := handshake(t, srv, cli)
	var inv x509.CertificateInvalidError
	if !errors.As(res.serverErr, &inv) || inv.Reason != x509.Expired {
		t.Errorf("server error = %v, want x509.CertificateInvalidError with Reason Expired", res.serverErr)
	}
	if res.clientErr == nil {
		t.Error("client completed an exchange with an expired certificate")
	}
}

func TestClientCertificateOfOtherCARefused(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	other := newCA(t, "callvault dev CA") // same name, different key
	srv := serverConfig(issueServer(t, ca), pool(ca))
	cli := clientConfig(pool(ca), issueClient(t, other, nurseHSA, now.Add(-time.Hour), now.Add(time.Hour)))

	res := handshake(t, srv, cli)
	var unknown x509.UnknownAuthorityError
	if !errors.As(res.serverErr, &unknown) {
		t.Errorf("server error = %v, want x509.UnknownAuthorityError", res.serverErr)
	}
	if res.clientErr == nil {
		t.Error("client completed an exchange with another CA's certificate")
	}
}

func TestNoClientCertificateRefused(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	srv := serverConfig(issueServer(t, ca), pool(ca))
	res := handshake(t, srv, clientConfig(pool(ca)))
	if res.serverErr == nil || res.clientErr == nil {
		t.Errorf("handshake without client certificate: server %v, client %v; want both to fail", res.serverErr, res.clientErr)
	}
}

func TestIssueClientWithoutHSAID(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	certPEM, _, err := ca.IssueClient(nurseCN, "", now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := certOf(t, certPEM)
	if c.Subject.SerialNumber != "" {
		t.Errorf("Subject.SerialNumber = %q, want empty", c.Subject.SerialNumber)
	}
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidSerialNumber) {
			t.Errorf("subject has a serialNumber attribute: %v", n.Value)
		}
	}
	if c.Subject.CommonName != nurseCN {
		t.Errorf("CommonName = %q, want %q", c.Subject.CommonName, nurseCN)
	}
	// It is still a valid client certificate of the CA: refusal of it is
	// the directory's job, not the TLS layer's.
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: now}); err != nil {
		t.Errorf("verify: %v", err)
	}
}

func TestCertificateFields(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	cac := ca.Certificate()
	if !cac.IsCA || !cac.BasicConstraintsValid || !cac.MaxPathLenZero || cac.MaxPathLen != 0 {
		t.Errorf("CA basic constraints: IsCA=%v valid=%v MaxPathLenZero=%v MaxPathLen=%d",
			cac.IsCA, cac.BasicConstraintsValid, cac.MaxPathLenZero, cac.MaxPathLen)
	}
	if want := x509.KeyUsageCertSign | x509.KeyUsageCRLSign; cac.KeyUsage != want {
		t.Errorf("CA KeyUsage = %v, want %v", cac.KeyUsage, want)
	}
	if !cac.NotBefore.Equal(now.Add(-time.Hour)) || !cac.NotAfter.Equal(now.AddDate(10, 0, 0)) {
		t.Errorf("CA validity = [%v, %v], want [%v, %v]", cac.NotBefore, cac.NotAfter, now.Add(-time.Hour), now.AddDate(10, 0, 0))
	}
	if cac.Subject.CommonName != "callvault dev CA" {
		t.Errorf("CA CommonName = %q", cac.Subject.CommonName)
	}
	if err := cac.CheckSignatureFrom(cac); err != nil {
		t.Errorf("CA is not self-signed: %v", err)
	}

	nb, na := now.Add(-2*time.Hour), now.Add(72*time.Hour)
	sPEM, _, err := ca.IssueServer([]string{"localhost", "127.0.0.1", "::1", "archive.example"}, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	s := certOf(t, sPEM)
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}; !reflect.DeepEqual(s.ExtKeyUsage, want) {
		t.Errorf("server ExtKeyUsage = %v, want %v", s.ExtKeyUsage, want)
	}
	if want := []string{"localhost", "archive.example"}; !reflect.DeepEqual(s.DNSNames, want) {
		t.Errorf("server DNSNames = %q, want %q", s.DNSNames, want)
	}
	if len(s.IPAddresses) != 2 || !s.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) || !s.IPAddresses[1].Equal(net.ParseIP("::1")) {
		t.Errorf("server IPAddresses = %v, want [127.0.0.1 ::1]", s.IPAddresses)
	}
	if s.Subject.CommonName != "localhost" || s.IsCA {
		t.Errorf("server CommonName = %q, IsCA = %v", s.Subject.CommonName, s.IsCA)
	}
	if !s.NotBefore.Equal(nb) || !s.NotAfter.Equal(na) {
		t.Errorf("server validity = [%v, %v], want [%v, %v]", s.NotBefore, s.NotAfter, nb, na)
	}

	cPEM, _, err := ca.IssueClient(nurseCN, nurseHSA, nb, na)
	if err != nil {
		t.Fatal(err)
	}
	c := certOf(t, cPEM)
	if want := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}; !reflect.DeepEqual(c.ExtKeyUsage, want) {
		t.Errorf("client ExtKeyUsage = %v, want %v", c.ExtKeyUsage, want)
	}
	if len(c.DNSNames) != 0 || len(c.IPAddresses) != 0 || c.IsCA {
		t.Errorf("client certificate has SANs %q %v or IsCA %v", c.DNSNames, c.IPAddresses, c.IsCA)
	}
	if !c.NotBefore.Equal(nb) || !c.NotAfter.Equal(na) {
		t.Errorf("client validity = [%v, %v], want [%v, %v]", c.NotBefore, c.NotAfter, nb, na)
	}
	if s.SerialNumber.Cmp(c.SerialNumber) == 0 || s.SerialNumber.Cmp(cac.SerialNumber) == 0 {
		t.Error("two certificates share a serial number")
	}

	if cac.SerialNumber.Sign() <= 0 || s.SerialNumber.Sign() <= 0 || c.SerialNumber.Sign() <= 0 {
		t.Error("a serial number is not positive (RFC 5280 4.1.2.2)")
	}
	for _, e := range []struct {
		name string
		err  func() error
		want string
	}{
		{"server without hosts", func() error { _, _, err := ca.IssueServer(nil, nb, na); return err }, "devpki: issue server: no hosts"},
		{"server with an empty host", func() error { _, _, err := ca.IssueServer([]string{"localhost", ""}, nb, na); return err }, "devpki: issue server: empty host"},
		{"server validity reversed", func() error { _, _, err := ca.IssueServer([]string{"localhost"}, na, nb); return err }, "devpki: issue server: validity ends before it begins"},
		{"client validity empty", func() error { _, _, err := ca.IssueClient(nurseCN, nurseHSA, nb, nb); return err }, "devpki: issue client: validity ends before it begins"},
	} {
		if err := e.err(); err == nil || err.Error() != e.want {
			t.Errorf("%s: error = %v, want %q", e.name, err, e.want)
		}
	}
}

func TestLoadCARoundTrip(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	loaded, err := LoadCA(ca.CertPEM(), ca.KeyPEM())
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Certificate().Equal(ca.Certificate()) {
		t.Fatal("loaded CA certificate differs")
	}
	if !bytes.Equal(loaded.CertPEM(), ca.CertPEM()) || !bytes.Equal(loaded.KeyPEM(), ca.KeyPEM()) {
		t.Fatal("loaded CA does not write back the same PEM")
	}

	// Certificates the loaded CA issues verify against the original CA
	// certificate and work in a real handshake.
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca.CertPEM()) {
		t.Fatal("CertPEM is not a PEM certificate")
	}
	srv := serverConfig(issueServer(t, loaded), roots)
	cli := clientConfig(roots, issueClient(t, loaded, nurseHSA, now.Add(-time.Hour), now.Add(time.Hour)))
	res := handshake(t, srv, cli)
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("handshake with certificates of the loaded CA: server %v, client %v", res.serverErr, res.clientErr)
	}
	if got := res.server.PeerCertificates[0].Subject.SerialNumber; got != nurseHSA {
		t.Errorf("HSA-ID = %q, want %q", got, nurseHSA)
	}
}

func TestLoadCARefusesBadInput(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	other := newCA(t, "other")
	leafCert, leafKey, err := ca.IssueClient(nurseCN, nurseHSA, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ecKey := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	for _, c := range []struct {
		name      string
		cert, key []byte
		want      string // the error, or its prefix if it ends in ": "
	}{
		{"empty cert", nil, ca.KeyPEM(), "devpki: load ca: no PEM CERTIFICATE block"},
		{"key as cert", ca.KeyPEM(), ca.KeyPEM(), "devpki: load ca: no PEM CERTIFICATE block"},
		{"garbage cert", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}), ca.KeyPEM(), "devpki: load ca: certificate: "},
		{"leaf as CA", leafCert, leafKey, "devpki: load ca: certificate is not a CA"},
		{"empty key", ca.CertPEM(), nil, "devpki: load ca: no PEM PRIVATE KEY block"},
		{"EC key block", ca.CertPEM(), ecKey, "devpki: load ca: no PEM PRIVATE KEY block"},
		{"garbage key", ca.CertPEM(), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("x")}), "devpki: load ca: key: "},
		{"other CA's key", ca.CertPEM(), other.KeyPEM(), "devpki: load ca: key does not belong to the certificate"},
		{"leaf key", ca.CertPEM(), leafKey, "devpki: load ca: key does not belong to the certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			loaded, err := LoadCA(c.cert, c.key)
			if err == nil {
				t.Fatalf("LoadCA succeeded: %v", loaded.Certificate().Subject)
			}
			if strings.HasSuffix(c.want, ": ") {
				if !strings.HasPrefix(err.Error(), c.want) {
					t.Fatalf("LoadCA error = %q, want prefix %q", err, c.want)
				}
			} else if err.Error() != c.want {
				t.Fatalf("LoadCA error = %q, want %q", err, c.want)
			}
		})
	}
}

func TestPKCS12RoundTrip(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	certPEM, keyPEM, err := ca.IssueClient(nurseCN, nurseHSA, now.Add(-time.Hour), now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const password = "correct horse battery staple"
	pfx, err := PKCS12(certPEM, keyPEM, ca.CertPEM(), password)
	if err != nil {
		t.Fatal(err)
	}
	key, leaf, chain, err := pkcs12.DecodeChain(pfx, password)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(certOf(t, certPEM)) {
		t.Error("decoded leaf differs from the issued certificate")
	}
	if len(chain) != 1 || !chain[0].Equal(ca.Certificate()) {
		t.Errorf("decoded CA chain has %d certificates, want exactly the CA", len(chain))
	}
	want := keyPair(t, certPEM, keyPEM).PrivateKey.(*ecdsa.PrivateKey)
	got, ok := key.(*ecdsa.PrivateKey)
	if !ok || !got.Equal(want) {
		t.Errorf("decoded key (%T) differs from the issued key", key)
	}

	if _, _, _, err := pkcs12.DecodeChain(pfx, "wrong password"); !errors.Is(err, pkcs12.ErrIncorrectPassword) {
		t.Errorf("DecodeChain with a wrong password: %v, want ErrIncorrectPassword", err)
	}

	_, otherKey, err := ca.IssueClient(nurseCN, nurseHSA, now, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name              string
		cert, key, caCert []byte
		want              string
	}{
		{"no cert", nil, keyPEM, ca.CertPEM(), "devpki: pkcs12: no PEM CERTIFICATE block"},
		{"no key", certPEM, nil, ca.CertPEM(), "devpki: pkcs12: no PEM PRIVATE KEY block"},
		{"no CA", certPEM, keyPEM, nil, "devpki: pkcs12: ca: no PEM CERTIFICATE block"},
		{"another certificate's key", certPEM, otherKey, ca.CertPEM(), "devpki: pkcs12: key does not belong to the certificate"},
	} {
		if _, err := PKCS12(c.cert, c.key, c.caCert, password); err == nil || err.Error() != c.want {
			t.Errorf("%s: error = %v, want %q", c.name, err, c.want)
		}
	}
}

// A client certificate cannot serve TLS to a verifying Go client (no
// serverAuth usage), and a server certificate cannot authenticate a client
// to the API (no clientAuth usage).
func TestExtKeyUsageSeparatesClientAndServer(t *testing.T) {
	ca := newCA(t, "callvault dev CA")
	clientCert := issueClient(t, ca, nurseHSA, now.Add(-time.Hour), now.Add(time.Hour))
	serverCert := issueServer(t, ca)

	// Client certificate as the server's: a standard verifying client
	// refuses the handshake.
	srv := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{clientCert}}
	res := handshake(t, srv, clientConfig(pool(ca)))
	if res.clientErr == nil {
		t.Fatal("a Go client accepted a client certificate as a server's")
	}
	// Isolate the cause from the name check (a client certificate has no
	// SANs): verify the chain with the default (serverAuth) usage only.
	var verifyErr error
	cli := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection below, which checks everything but the name
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, verifyErr = cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool(ca)})
			return verifyErr
		},
	}
	res = handshake(t, srv, cli)
	var inv x509.CertificateInvalidError
	if res.clientErr == nil || !errors.As(verifyErr, &inv) || inv.Reason != x509.IncompatibleUsage {
		t.Errorf("client certificate as server: client %v, verify %v; want IncompatibleUsage", res.clientErr, verifyErr)
	}
	// The same client setup accepts the real server certificate, so the
	// refusal above is the usage, not the setup.
	verifyErr = errors.New("VerifyConnection not called")
	res = handshake(t, &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{serverCert}}, cli)
	if res.serverErr != nil || res.clientErr != nil || verifyErr != nil {
		t.Errorf("server certificate with the usage check: server %v, client %v, verify %v", res.serverErr, res.clientErr, verifyErr)
	}

	// Server certificate as the client's: the API refuses it.
	res = handshake(t, serverConfig(serverCert, pool(ca)), clientConfig(pool(ca), serverCert))
	if !errors.As(res.serverErr, &inv) || inv.Reason != x509.IncompatibleUsage {
		t.Errorf("server certificate as client: server error %v, want IncompatibleUsage", res.serverErr)
	}
	if res.clientErr == nil {
		t.Error("client with a server certificate completed an exchange")
	}
}
