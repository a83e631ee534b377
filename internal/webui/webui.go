// Package webui serves the staff web pages (docs/webui.md): find a
// patient's calls and listen to them, the auditor's log reports, the
// records officer's holds and deletion decisions, and the administrator's
// overview — server-rendered, in Swedish, on the same mutual-TLS listener
// as the API. Every page calls the archive, which decides and audits, as
// the API does; the pages add a session bound to the client certificate
// with an idle timeout, CSRF protection on every state change, a strict
// Content-Security-Policy and no-store caching.
package webui

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"time"

	"callvault/internal/access"
	"callvault/internal/archive"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Names looks up the display names the pages show beside HSA-IDs.
// *access.Directory implements it.
type Names interface {
	List(ctx context.Context) ([]*access.Entry, error)
	Units(ctx context.Context) ([]access.Unit, error)
}

// DefaultIdleTimeout ends a session after this long without a request if
// Config.IdleTimeout is unset.
const DefaultIdleTimeout = 15 * time.Minute

// maxSessionAge ends every session this long after it began, active or not:
// a working day.
const maxSessionAge = 12 * time.Hour

// Config configures the pages.
type Config struct {
	Archive *archive.Service
	// Principal identifies the caller from the request's verified client
	// certificate (the API's authenticator).
	Principal func(*http.Request) (*access.Principal, error)
	Names     Names
	// SessionKey (32 bytes) seals session cookies and audio links. Derive
	// it from the keyring so that every replica shares it.
	SessionKey []byte
	// IdleTimeout ends a session after this long without a request. If
	// unset, DefaultIdleTimeout.
	IdleTimeout time.Duration
	Logger      *slog.Logger
	// Now is the clock; if unset, time.Now.
	Now func() time.Time
}

// Handler serves the pages. Mount it at "/" beside the API's "/v1/".
type Handler struct {
	arc       *archive.Service
	principal func(*http.Request) (*access.Principal, error)
	names     Names
	tok       *sealer
	idle      time.Duration
	log       *slog.Logger
	now       func() time.Time
	pages     map[string]*template.Template
	mux       *http.ServeMux
	root      http.Handler
}

// New returns the pages' handler.
func New(cfg Config) (*Handler, error) {
	tok, err := newSealer(cfg.SessionKey)
	if err != nil {
		return nil, err
	}
	h := &Handler{arc: cfg.Archive, principal: cfg.Principal, names: cfg.Names, tok: tok, idle: cfg.IdleTimeout,
		log: cfg.Logger, now: cfg.Now}
	if h.idle <= 0 {
		h.idle = DefaultIdleTimeout
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.pages, err = parsePages(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	staticFiles := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		staticFiles.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /{$}", h.page(h.home))
	mux.HandleFunc("GET /sok", h.page(h.need(access.RoleClinician, h.searchForm)))
	mux.HandleFunc("POST /sok", h.page(h.search))
	mux.HandleFunc("POST /sok/nodatkomst", h.page(h.emergencyStep))
	mux.HandleFunc("POST /lyssna", h.page(h.listenStep))
	mux.HandleFunc("POST /lyssna/start", h.page(h.listen))
	mux.HandleFunc("GET /ljud/{token}", h.page(h.audio))
	mux.HandleFunc("GET /granskning", h.page(h.need(access.RoleAuditor, h.reviewHome)))
	mux.HandleFunc("POST /granskning/utdrag", h.page(h.extract))
	mux.HandleFunc("POST /granskning/uppfoljning", h.page(h.followUp))
	mux.HandleFunc("POST /granskning/markera", h.page(h.mark))
	mux.HandleFunc("POST /granskning/incident", h.page(h.incident))
	mux.HandleFunc("GET /arkiv", h.page(h.recordsHome))
	mux.HandleFunc("POST /arkiv/beslut", h.page(h.registerDecision))
	mux.HandleFunc("POST /arkiv/godkann", h.page(h.approveDecision))
	mux.HandleFunc("POST /arkiv/spärrar", h.page(h.holds))
	mux.HandleFunc("POST /arkiv/spärrar/ny", h.page(h.setHold))
	mux.HandleFunc("POST /arkiv/spärrar/hav", h.page(h.releaseHold))
	mux.HandleFunc("GET /admin", h.page(h.admin))
	mux.HandleFunc("POST /logga-ut", h.page(h.logout))
	mux.HandleFunc("/", h.page(func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		h.fail(w, r, rc, http.StatusNotFound, "Sidan finns inte.")
	}))
	h.mux = mux
	// Cross-origin state changes are refused by the browser's own
	// Sec-Fetch-Site / Origin headers before the CSRF token is looked at.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(h.page(func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		h.refuse(w, r, rc, "web.form", "origin", "Begäran kom från en annan webbplats och togs inte emot.")
	}))
	h.root = cop.Handler(mux)
	return h, nil
}

// ServeHTTP serves the pages.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.root.ServeHTTP(w, r) }

// reqCtx is what a page handler gets: the archive caller, the session and
// the CSRF token for forms.
type reqCtx struct {
	caller  archive.Caller
	session session
	csrf    string
	// expired is set when the request came with a session that had timed
	// out; the page then says so instead of acting.
	expired bool
}

type pageFunc func(http.ResponseWriter, *http.Request, *reqCtx)

// session is the content of the session cookie. FP binds it to the client
// certificate: a cookie presented over a connection with another
// certificate is not this session.
type session struct {
	ID     string `json:"i"`
	FP     string `json:"f"`
	Issued int64  `json:"t"`
	Last   int64  `json:"l"`
}

const cookieName = "__Host-callvault"

// page wraps a page handler: security headers, authentication, the
// session (new, refreshed or timed out) and, for POST, the CSRF check.
func (h *Handler) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		reqID := newID(8)
		hd := w.Header()
		hd.Set("X-Request-ID", reqID)
		hd.Set("Cache-Control", "no-store")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", pageCSP)
		rc := &reqCtx{caller: archive.Caller{RequestID: reqID, ClientAddr: clientAddr(r)}}
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.PeerCertificates) == 0 {
			http.Error(w, "a verified client certificate is required", http.StatusForbidden)
			return
		}
		fp := access.Fingerprint(r.TLS.PeerCertificates[0])
		p, err := h.principal(r)
		if err != nil {
			reason := "unknown-user"
			if errors.Is(err, access.ErrNoIdentity) {
				reason = "no-hsa-id"
			} else if !errors.Is(err, access.ErrUnknownUser) {
				h.log.ErrorContext(r.Context(), "directory lookup failed", "request", reqID, "err", err)
				h.fail(w, r, rc, http.StatusServiceUnavailable, "Katalogen går inte att nå just nu. Försök igen om en stund.")
				return
			}
			if aerr := h.arc.RefuseIdentity(r.Context(), rc.caller, fp, reason); aerr != nil {
				h.archiveError(w, r, rc, aerr)
				return
			}
			h.fail(w, r, rc, http.StatusForbidden, "Ditt certifikat är inte registrerat i callvault. Kontakta din administratör.")
			return
		}
		rc.caller.Principal = p
		now := h.now()
		var s session
		valid := false
		if c, err := r.Cookie(cookieName); err == nil && h.tok.open("session", c.Value, &s) == nil && s.FP == fp {
			age, idle := now.Sub(time.Unix(s.Issued, 0)), now.Sub(time.Unix(s.Last, 0))
			if age <= maxSessionAge && idle <= h.idle {
				valid = true
			} else {
				rc.expired = true
			}
		}
		if !valid {
			s = session{ID: newID(16), FP: fp, Issued: now.Unix()}
		}
		s.Last = now.Unix()
		rc.session = s
		rc.csrf = h.tok.mac("csrf", s.ID)
		if v, err := h.tok.seal("session", s); err == nil {
			http.SetCookie(w, &http.Cookie{Name: cookieName, Value: v, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
		}
		if rc.expired && r.URL.Path != "/" {
			h.render(w, r, rc, http.StatusUnauthorized, "expired", "Sessionen har gått ut", nil)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			err := r.ParseForm()
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				h.fail(w, r, rc, http.StatusRequestEntityTooLarge, "Formuläret är för stort.")
				return
			}
			if err != nil || !valid ||
				subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(rc.csrf)) != 1 {
				h.refuse(w, r, rc, "web.form", "csrf", "Formuläret kunde inte tas emot (säkerhetskontrollen stämde inte). Ladda om sidan och försök igen.")
				return
			}
		}
		fn(w, r, rc)
	}
}

// pageCSP allows only the pages' own scripts, styles, images and audio:
// no inline script or style, no other origin, no framing.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxForm bounds a form body.
const maxForm = 64 << 10

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	h.render(w, r, rc, http.StatusOK, "loggedout", "Utloggad", nil)
}

// view is what every page template gets.
type view struct {
	Title   string
	User    *access.Principal
	Name    string
	Unit    string
	CSRF    string
	Nav     []navItem
	Data    any
	Error   string
	Expired bool
}

type navItem struct {
	Href, Text string
	Current    bool
}

// nav lists the sections the principal's roles open.
func nav(p *access.Principal, path string) []navItem {
	var out []navItem
	add := func(href, text string) {
		out = append(out, navItem{Href: href, Text: text, Current: path == href})
	}
	add("/", "Start")
	if p.Has(access.RoleClinician) {
		add("/sok", "Sök samtal")
	}
	if p.Has(access.RoleAuditor) {
		add("/granskning", "Logguppföljning")
	}
	if p.Has(access.RoleRecords) {
		add("/arkiv", "Arkiv")
	}
	if p.Has(access.RoleAdmin) {
		add("/admin", "Administration")
	}
	return out
}

// render executes page name into a buffer and sends it with status; a
// template error becomes a plain 500 rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, name, title string, data any) {
	t, ok := h.pages[name]
	if !ok {
		panic("webui: no page " + name)
	}
	v := view{Title: title, CSRF: rc.csrf, Data: data, Expired: rc.expired}
	if p := rc.caller.Principal; p != nil {
		v.User = p
		v.Nav = nav(p, r.URL.Path)
		v.Name, v.Unit = h.displayNames(r.Context(), p)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		h.log.ErrorContext(r.Context(), "page template failed", "page", name, "request", rc.caller.RequestID, "err", err)
		http.Error(w, "internal error; request "+rc.caller.RequestID, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// displayNames returns the principal's display name and care unit name,
// falling back to the HSA-IDs.
func (h *Handler) displayNames(ctx context.Context, p *access.Principal) (string, string) {
	n := h.lookupNames(ctx)
	return n.user(p.HSAID), n.unit(p.CareUnit)
}

// refuse records a refused request in the audit log (as the API does with
// malformed input: every answered request is there), then answers 403
// with msg. field names what was wrong, never its value.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, rc *reqCtx, action, field, msg string) {
	if err := h.arc.RejectInput(r.Context(), rc.caller, action, field); err != nil {
		h.archiveError(w, r, rc, err)
		return
	}
	h.fail(w, r, rc, http.StatusForbidden, msg)
}

// fail renders the error page with msg.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, msg string) {
	h.render(w, r, rc, status, "error", "Det gick inte", msg)
}

// names maps HSA-IDs to display names for one request.
type names struct {
	users map[string]string
	units map[string]string
}

func (n names) user(id string) string {
	if s := n.users[id]; s != "" {
		return s
	}
	return id
}

func (n names) unit(id string) string {
	if s := n.units[id]; s != "" {
		return s
	}
	return id
}

func (h *Handler) lookupNames(ctx context.Context) names {
	n := names{users: map[string]string{}, units: map[string]string{}}
	if h.names == nil {
		return n
	}
	if us, err := h.names.List(ctx); err == nil {
		for _, u := range us {
			n.users[u.HSAID] = u.DisplayName
		}
	}
	if us, err := h.names.Units(ctx); err == nil {
		for _, u := range us {
			n.units[u.HSAID] = u.Name
		}
	}
	return n
}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// archiveError maps an archive error to a page, in Swedish, naming fields
// but never echoing values.
func (h *Handler) archiveError(w http.ResponseWriter, r *http.Request, rc *reqCtx, err error) {
	var inv *archive.InvalidError
	var denied *archive.DeniedError
	var gone *archive.GoneError
	var conflict *archive.ConflictError
	switch {
	case errors.As(err, &gone):
		h.fail(w, r, rc, http.StatusGone, fmt.Sprintf("Inspelningen är raderad (beslut %d, %s). Den kan inte längre spelas upp.",
			gone.DecisionID, gone.DeletedAt.In(stockholm).Format("2006-01-02")))
	case errors.Is(err, archive.ErrLost):
		h.fail(w, r, rc, http.StatusInternalServerError, "Inspelningen är skadad: ingen lagrad kopia klarar kontrollen. Driften har larmats.")
	case errors.As(err, &conflict):
		h.fail(w, r, rc, http.StatusConflict, conflictText(conflict))
	case errors.As(err, &inv):
		h.fail(w, r, rc, http.StatusBadRequest, invalidText(inv))
	case errors.As(err, &denied):
		h.fail(w, r, rc, http.StatusForbidden, deniedText(denied.Reason))
	case errors.Is(err, archive.ErrNotFound):
		h.fail(w, r, rc, http.StatusNotFound, "Det finns ingen sådan inspelning eller inget sådant beslut.")
	case errors.Is(err, archive.ErrAuditUnavailable):
		h.fail(w, r, rc, http.StatusServiceUnavailable, "Loggen kan inte skrivas just nu, så ingenting visas eller ändras. Försök igen om en stund.")
	default:
		h.log.ErrorContext(r.Context(), "page request failed", "request", rc.caller.RequestID, "err", err)
		h.fail(w, r, rc, http.StatusInternalServerError, "Ett internt fel inträffade. Ange ärende "+rc.caller.RequestID+" om du kontaktar supporten.")
	}
}

// need shows a form page only to principals with role. The forms' actions
// are decided (and audited) by the archive whoever sends them; this only
// spares others a form they cannot use.
func (h *Handler) need(role access.Role, fn pageFunc) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
		if !rc.caller.Principal.Has(role) {
			h.fail(w, r, rc, http.StatusForbidden, deniedText(access.ReasonRole))
			return
		}
		fn(w, r, rc)
	}
}

// home: who is logged in and what they can do here.
func (h *Handler) home(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	h.render(w, r, rc, http.StatusOK, "home", "Start", nil)
}

// pageNames are the page templates under templates/, each parsed with
// layout.html.
var pageNames = []string{"home", "error", "expired", "loggedout", "search", "emergency", "listen", "player",
	"review", "followup", "incident", "records", "admin"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"purposeText": purposeText,
		"local":       func(t time.Time) string { return t.In(stockholm).Format("2006-01-02 15:04") },
		"roleText":    roleText,
	}
	base, err := template.New("layout").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range pageNames {
		t, err := base.Clone()
		if err != nil {
			return nil, err
		}
		if out[n], err = t.ParseFS(templateFS, "templates/"+n+".html"); err != nil {
			return nil, fmt.Errorf("webui: page %s: %w", n, err)
		}
	}
	return out, nil
}

func roleText(r access.Role) string {
	switch r {
	case access.RoleClinician:
		return "vårdpersonal"
	case access.RoleAuditor:
		return "logggranskare"
	case access.RoleRecords:
		return "arkivansvarig"
	case access.RoleAdmin:
		return "administratör"
	case access.RoleCapture:
		return "inspelningssystem"
	case access.RoleWitness:
		return "loggvittne"
	}
	return string(r)
}
