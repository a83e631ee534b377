package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// browser is a Go client of the staff pages: one certificate, one cookie
// jar, as a browser keeps them.
type browser struct {
	t   *testing.T
	srv *server
	who string
	c   *http.Client
}

func (s *server) browser(who string) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		s.t.Fatal(err)
	}
	c := s.client(who)
	c.Jar = jar
	return &browser{t: s.t, srv: s, who: who, c: c}
}

// get and post send a request with the browser's cookies; hdr adds
// header pairs.
func (b *browser) get(path string, hdr ...string) response {
	return b.send("GET", path, nil, hdr...)
}

func (b *browser) post(path string, form url.Values, hdr ...string) response {
	return b.send("POST", path, strings.NewReader(form.Encode()), append([]string{"Content-Type", "application/x-www-form-urlencoded"}, hdr...)...)
}

func (b *browser) send(method, path string, body io.Reader, hdr ...string) response {
	b.t.Helper()
	req, err := http.NewRequest(method, b.srv.url(path), body)
	if err != nil {
		b.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s as %s: %v", method, path, b.who, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// csrf returns the form token of the browser's session (from the start page).
func (b *browser) csrf() string {
	b.t.Helper()
	return field(b.t, b.get("/"), "csrf")
}

var hiddenField = regexp.MustCompile(`name="([a-z]+)" value="([^"]*)"`)

// field returns the value of the first hidden input name in r's page.
func field(t *testing.T, r response, name string) string {
	t.Helper()
	for _, m := range hiddenField.FindAllStringSubmatch(string(r.body), -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("no field %s in the page (%d)", name, r.status)
	return ""
}

// countEvents counts the audit events of action by user.
func countEvents(t *testing.T, dataDir, action, user string) int {
	n := 0
	for _, e := range auditEvents(t, dataDir) {
		if e["Action"] == action && e["User"] == user {
			n++
		}
	}
	return n
}

const wantPageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// TestWebUISafety shows the pages' safety rules with a plain client: the
// headers, the session cookie bound to the client certificate, CSRF and
// cross-origin refusals that change nothing, search only by POST, the
// purpose and the emergency confirmation required by the server, audio
// links that work only in their own session, and Range answers.
func TestWebUISafety(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "server.log"))
	nurse, nurseB := srv.browser("nurse"), srv.browser("nurse-b")

	r := nurse.get("/")
	wantStatus(t, "start page", r, 200, "Nurse, unit A (dev)")
	for k, v := range map[string]string{"Content-Security-Policy": wantPageCSP, "Cache-Control": "no-store",
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	cookie := r.header.Get("Set-Cookie")
	for _, want := range []string{"__Host-callvault=", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(cookie, want) {
			t.Errorf("session cookie %q lacks %s", cookie, want)
		}
	}
	token := field(t, r, "csrf")
	search := url.Values{"csrf": {token}, "personnummer": {"191212121212"}, "syfte": {"care"}}
	searches := func() int { return countEvents(t, dataDir, "search", hsaNurseA) }

	// Refused state changes, none of which searches.
	noToken := url.Values{"personnummer": {"191212121212"}, "syfte": {"care"}}
	wantStatus(t, "POST without a CSRF token", nurse.post("/sok", noToken), 403, "säkerhetskontrollen")
	otherToken := url.Values{"csrf": {nurseB.csrf()}, "personnummer": {"191212121212"}, "syfte": {"care"}}
	wantStatus(t, "POST with another session's token", nurse.post("/sok", otherToken), 403, "säkerhetskontrollen")
	wantStatus(t, "cross-site POST", nurse.post("/sok", search, "Sec-Fetch-Site", "cross-site"), 403, "")
	wantStatus(t, "POST from another origin", nurse.post("/sok", search, "Origin", "https://attacker.example"), 403, "")
	// The nurse's cookie and token over nurse-b's certificate: not a session.
	stolen := srv.browser("nurse-b")
	u, _ := url.Parse(srv.url("/"))
	stolen.c.Jar.SetCookies(u, nurse.c.Jar.Cookies(u))
	wantStatus(t, "a session cookie over another certificate", stolen.post("/sok", search), 403, "säkerhetskontrollen")
	// A GET with the personnummer in the URL shows the empty form.
	r = nurse.get("/sok?personnummer=191212121212&syfte=care")
	wantStatus(t, "GET search", r, 200, `id="personnummer" name="personnummer" value=""`)
	// Emergency access without the confirmation.
	emergency := url.Values{"csrf": {token}, "personnummer": {"191212121212"}, "syfte": {"care"}, "nodatkomst": {"1"}, "skal": {"akut"}}
	wantStatus(t, "emergency search unconfirmed", nurse.post("/sok", emergency), 400, "Bekräfta att du begär nödåtkomst")
	big := url.Values{"csrf": {token}, "personnummer": {strings.Repeat("1", 70<<10)}, "syfte": {"care"}}
	wantStatus(t, "an oversized form", nurse.post("/sok", big), 413, "Formuläret är för stort")
	if n := searches(); n != 0 {
		t.Fatalf("%d searches audited after refused requests, want 0", n)
	}

	// A wrong check digit: audited as a refused search, explained.
	bad := url.Values{"csrf": {token}, "personnummer": {"191212121213"}, "syfte": {"care"}}
	wantStatus(t, "wrong check digit", nurse.post("/sok", bad), 400, "Kontrollsiffran i personnumret stämmer inte")
	// A date range that ends before the demo calls finds none of them.
	early := url.Values{"csrf": {token}, "personnummer": {"191212121212"}, "syfte": {"care"}, "fran": {"2020-01-01"}, "till": {"2020-12-31"}}
	wantStatus(t, "search with an early date range", nurse.post("/sok", early), 200, "Samtal (0)")
	r = nurse.post("/sok", search)
	wantStatus(t, "search", r, 200, "Samtal (1)")
	if n := searches(); n != 3 {
		t.Fatalf("%d searches audited, want 3 (the refused one, the early range and this)", n)
	}
	hit := field(t, r, "traff")

	// No purpose, no metadata read and no player.
	wantStatus(t, "listen without purpose", nurse.post("/lyssna/start", url.Values{"csrf": {token}, "traff": {hit}}), 400, "Välj ett syfte")
	if n := countEvents(t, dataDir, "read-metadata", hsaNurseA); n != 0 {
		t.Fatalf("%d metadata reads audited without a purpose, want 0", n)
	}
	// nurse-b cannot use the nurse's hit.
	wantStatus(t, "another session's hit", nurseB.post("/lyssna/start", url.Values{"csrf": {nurseB.csrf()}, "traff": {hit}, "syfte": {"care"}}),
		403, "Sök igen")
	r = nurse.post("/lyssna/start", url.Values{"csrf": {token}, "traff": {hit}, "syfte": {"care"}})
	wantStatus(t, "listen", r, 200, `<audio id="ljud"`)
	src := regexp.MustCompile(`src="(/ljud/[^"]+)"`).FindStringSubmatch(string(r.body))
	if src == nil {
		t.Fatal("no audio link in the player")
	}
	a := nurse.get(src[1], "Range", "bytes=0-99")
	wantStatus(t, "audio range", a, 206, "RIFF")
	if len(a.body) != 100 || a.header.Get("Cache-Control") != "no-store" || a.header.Get("Content-Type") != "audio/wav" {
		t.Errorf("audio range: %d bytes, Cache-Control %q, Content-Type %q; want 100, no-store, audio/wav",
			len(a.body), a.header.Get("Cache-Control"), a.header.Get("Content-Type"))
	}
	wantStatus(t, "the audio link in another session", nurseB.get(src[1], "Range", "bytes=0-99"), 403, "Ljudlänken gäller inte")
	// Every refusal is audited, as refused input: the nurse's two forms
	// without a valid token, two cross-origin posts and the oversized form
	// (413 is not audited: the body was never read); nurse-b's stolen
	// cookie, borrowed hit and borrowed audio link.
	refused := map[string]int{}
	for _, e := range auditEvents(t, dataDir) {
		if e["Outcome"] == "denied" && e["Reason"] == "invalid-input" {
			refused[e["User"].(string)+" "+e["Action"].(string)+" "+e["Detail"].(string)]++
		}
	}
	for k, want := range map[string]int{
		hsaNurseA + " web.form field=csrf": 2, hsaNurseA + " web.form field=origin": 2,
		hsaNurseB + " web.form field=csrf": 1, hsaNurseB + " read-metadata field=hit": 1, hsaNurseB + " play field=link": 1,
	} {
		if refused[k] != want {
			t.Errorf("audited refusals %q: %d, want %d (all: %v)", k, refused[k], want, refused)
		}
	}
	if n := countEvents(t, dataDir, "play", hsaNurseB); n != 1 {
		t.Errorf("nurse-b's play events: %d, want 1 (the refused link)", n)
	}

	// Pages of other roles are refused; the admin view is audited.
	wantStatus(t, "admin page as a nurse", nurse.get("/admin"), 403, "Din roll ger inte behörighet")
	wantStatus(t, "review page as a nurse", nurse.get("/granskning"), 403, "Din roll ger inte behörighet")
	if n := countEvents(t, dataDir, "admin.view", hsaNurseA); n != 1 {
		t.Errorf("the nurse's admin page request audited %d times, want 1 (denied)", n)
	}
}

// TestWebUIIdleTimeout: a session unused for longer than the idle timeout
// acts no more; the page says so and nothing is searched.
func TestWebUIIdleTimeout(t *testing.T) {
	dataDir := t.TempDir()
	srv := startServer(t, dataDir, filepath.Join(t.TempDir(), "server.log"), "--web-idle-timeout", "2s")
	nurse := srv.browser("nurse")
	token := nurse.csrf()
	search := url.Values{"csrf": {token}, "personnummer": {"191212121212"}, "syfte": {"care"}}
	wantStatus(t, "search in time", nurse.post("/sok", search), 200, "Samtal (1)")
	time.Sleep(3 * time.Second)
	wantStatus(t, "search after the idle timeout", nurse.post("/sok", search), 401, "Sessionen har gått ut")
	if n := countEvents(t, dataDir, "search", hsaNurseA); n != 1 {
		t.Errorf("%d searches audited, want 1", n)
	}
	// A fresh start works again.
	search.Set("csrf", nurse.csrf())
	wantStatus(t, "search in a new session", nurse.post("/sok", search), 200, "Samtal (1)")
}
